# Copyright (c) mmlesion contributors. All rights reserved.
"""Per-level 3D RPN heads of the 3D Aggregated Faster R-CNN (Sec. III-B)."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.config import ConfigDict
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import ConfigType, InstanceList, OptConfigType, \
    OptInstanceList, OptMultiConfig
from mmlesion.structures import bbox3d_to_zyxd, bbox_overlaps_3d
from mmlesion.utils.host_copy import flatten
from .dense_block_3d import NORM3D, Bottleneck3D


def _unravel(index: Tensor, shape: Sequence[int]) -> Tuple[Tensor, ...]:
    """``torch.unravel_index(index, shape)`` for a non-negative (n,) long
    ``index`` below the product of ``shape``, without its checks (they cost
    more than the arithmetic): the same coordinates."""
    coords = []
    for size in reversed(shape[1:]):
        coords.append(index % size)
        index = index // size
    coords.append(index)
    return tuple(reversed(coords))


def nms_3d_first(bboxes: Tensor, scores: Tensor, iou_thr: float,
                 max_num: int = -1, block: int = 64) -> Tensor:
    """The first ``max_num`` indices of :func:`~mmlesion.structures.nms_3d`
    (``nms_3d(bboxes, scores, iou_thr)[1][:max_num]``, all for
    ``max_num < 0``), the same boxes in the same order, computed lazily.

    The boxes, sorted by score (stable), go in blocks of ``block``: a
    block's boxes are tested against the boxes kept so far, then greedily
    among themselves on one host copy of their overlaps, and the walk stops
    once ``max_num`` boxes are kept (a proposal head keeps 50 of 900).

    Args:
        bboxes (Tensor): (N, 6) boxes.
        scores (Tensor): (N,) scores.
        iou_thr (float): boxes overlapping a kept box by more than this are
            suppressed.
        max_num (int): boxes kept at most (< 0: all).
        block (int): boxes per block (64: a block's IoU stays under
            torch's parallel grain, on the calling thread of a CPU).

    Returns:
        Tensor: (k,) long indices into ``bboxes``, by score descending.
    """
    if scores.shape != bboxes.shape[:1] or bboxes.dim() != 2 or \
            bboxes.size(-1) != 6:
        raise ValueError(f'nms_3d_first needs (N, 6) boxes and (N,) '
                         f'scores, got {tuple(bboxes.shape)} and '
                         f'{tuple(scores.shape)}')
    n = len(scores)
    limit = n if max_num < 0 else min(int(max_num), n)
    if limit == 0:
        return scores.new_zeros((0, ), dtype=torch.long)
    order = torch.sort(scores, descending=True, stable=True)[1]
    boxes = bboxes[order]
    keep: List[int] = []
    kept = boxes[:0]
    for start in range(0, n, block):
        blk = boxes[start:start + block]
        over = bbox_overlaps_3d(blk, blk) > iou_thr
        if len(kept):
            hit = (bbox_overlaps_3d(kept, blk) > iou_thr).any(0)
            over = torch.cat([hit[None], over])
        else:
            over = torch.cat([over.new_zeros((1, len(blk))), over])
        over = over.cpu().numpy()
        suppressed = over[0].copy()
        new = []
        for j in range(len(blk)):
            if suppressed[j]:
                continue
            new.append(j)
            if len(keep) + len(new) == limit:
                break
            suppressed |= over[j + 1]
        keep.extend(start + j for j in new)
        if len(keep) == limit:
            break
        kept = torch.cat([kept, blk[new]])
    return order[torch.as_tensor(keep, dtype=torch.long,
                                 device=order.device)]


@MODELS.register_module()
class AggregatedRPNHead3D(BaseModule):
    r"""3D RPN with one head per pyramid level, not shared (Sec. III-B).

    Each level's head is Table I's "Detector": two bottlenecks and a
    ``1x1x1`` conv (after BN-ReLU) predicting, per cube anchor, one
    objectness logit and four deltas ``(dz, dy, dx, dd)``. Targets come
    from any mmdet assigner given a 3D overlap calculator (IoU+ 0.5 / IoU-
    0.02 in Sec. IV-B); regression is smooth L1 on positives;
    classification is ``AdaptiveFocalLoss`` (Eq. 3) or ``OHEMBinaryLoss``
    (Table II) over the anchors of the whole batch at once (Eq. 3 counts
    :math:`N_{TN}` over the batch).

    Args:
        in_channels (int): pyramid channels (32).
        num_levels (int): pyramid levels (3).
        num_bottlenecks (int): bottlenecks per head (2 in Table I).
        anchor_generator (dict): ``CubeAnchorGenerator3D`` config.
        bbox_coder (dict): coder config.
        loss_cls (dict): classification loss config.
        loss_bbox (dict): regression loss config.
        train_cfg (dict, optional): ``assigner`` (the only key read:
            every anchor is assigned, as mmdet's ``allowed_border=-1``).
        test_cfg (dict, optional): proposal settings, see
            :meth:`predict_by_feat`.
        norm_cfg (dict, optional): norm layer.
        prior_prob (float): initial objectness probability. Defaults to
            0.5, not RetinaNet's 0.01 (see ``AdaptiveFocalLoss``).
        init_cfg (dict, optional): initialisation.
    """

    def __init__(self,
                 in_channels: int = 32,
                 num_levels: int = 3,
                 num_bottlenecks: int = 2,
                 anchor_generator: ConfigType = dict(
                     type='CubeAnchorGenerator3D',
                     strides=[4, 8, 16],
                     sizes=[[4, 6], [8, 12], [16, 24]]),
                 bbox_coder: ConfigType = dict(type='DeltaZYXDBBoxCoder'),
                 loss_cls: ConfigType = dict(type='AdaptiveFocalLoss'),
                 loss_bbox: ConfigType = dict(
                     type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 prior_prob: float = 0.5,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.prior_prob = float(prior_prob)
        self.prior_generator = TASK_UTILS.build(anchor_generator)
        if self.prior_generator.num_levels != num_levels:
            raise ValueError(
                f'AggregatedRPNHead3D: {num_levels} levels but the anchor '
                f'generator has {self.prior_generator.num_levels}')
        self.num_levels = num_levels
        self.strides = self.prior_generator.strides
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if train_cfg is not None:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
        norm_cfg = norm_cfg or NORM3D
        self.heads = nn.ModuleList()
        for num_anchors in self.prior_generator.num_base_priors:
            layers = [
                Bottleneck3D(in_channels, norm_cfg=norm_cfg)
                for _ in range(num_bottlenecks)
            ]
            # BN-ReLU-Conv1x1x1 with a bias (the prediction layer)
            layers.extend([
                build_norm_layer(norm_cfg, in_channels)[1],
                nn.ReLU(inplace=True),
                nn.Conv3d(in_channels, num_anchors * 5, 1)
            ])
            self.heads.append(nn.Sequential(*layers))

    def init_weights(self) -> None:
        """Default init, then the objectness bias at ``prior_prob`` (0.5:
        zero bias, see the class doc)."""
        super().init_weights()
        bias = -math.log((1 - self.prior_prob) / self.prior_prob)
        for head in self.heads:
            conv = head[-1]
            with torch.no_grad():
                conv.bias.view(-1, 5)[:, 0].fill_(bias)

    def forward(self, feats: Sequence[Tensor]) -> Tuple[List[Tensor], ...]:
        """Run each level's own head.

        Args:
            feats (Sequence[Tensor]): (B, C, D, H, W) per level.

        Returns:
            tuple[list[Tensor], list[Tensor]]: per level, logits
            (B, D, H, W, A) and deltas (B, D, H, W, A, 4).
        """
        if len(feats) != self.num_levels:
            raise ValueError(f'{len(feats)} feature maps for '
                             f'{self.num_levels} RPN heads')
        cls_scores, bbox_preds = [], []
        for feat, head in zip(feats, self.heads):
            out = head(feat)
            b, _, d, h, w = out.shape
            out = out.view(b, -1, 5, d, h, w).permute(0, 3, 4, 5, 1, 2)
            cls_scores.append(out[..., 0])
            bbox_preds.append(out[..., 1:])
        return cls_scores, bbox_preds

    def get_anchors(self, cls_scores: Sequence[Tensor]) -> List[Tensor]:
        """Anchors of every level for these outputs."""
        sizes = [tuple(s.shape[1:4]) for s in cls_scores]
        # float32 whatever the outputs' dtype: float16 anchors (AMP) would
        # round voxel coordinates
        return self.prior_generator.grid_priors(
            sizes, device=cls_scores[0].device, dtype=torch.float32)

    def get_targets(self, anchors: Tensor,
                    batch_gt_instances: InstanceList,
                    batch_gt_instances_ignore: OptInstanceList = None
                    ) -> Tuple[Tensor, Tensor, Tensor]:
        """Assign every anchor of every image.

        Args:
            anchors (Tensor): (N, 6) anchors of all levels.
            batch_gt_instances (list[InstanceData]): ``bboxes`` (k, 6).
            batch_gt_instances_ignore (list[InstanceData], optional):
                ignored boxes.

        Returns:
            tuple[Tensor]: labels (B, N) in {0, 1}, label weights (B, N) (0
            for ignored anchors), regression targets (B, N, 4).
        """
        labels, weights, targets = [], [], []
        for i, gt in enumerate(batch_gt_instances):
            ignore = None if batch_gt_instances_ignore is None else \
                batch_gt_instances_ignore[i]
            if len(gt) == 0 and (ignore is None or len(ignore) == 0):
                lab = anchors.new_zeros(len(anchors), dtype=torch.long)
                wgt = anchors.new_ones(len(anchors))
                tgt = anchors.new_zeros(len(anchors), 4)
            else:
                gt = InstanceData(bboxes=gt.bboxes,
                                  labels=gt.bboxes.new_zeros(
                                      len(gt), dtype=torch.long))
                res = self.assigner.assign(InstanceData(priors=anchors), gt,
                                           ignore)
                pos = res.gt_inds > 0
                lab = pos.long()
                wgt = (res.gt_inds >= 0).to(anchors.dtype)
                tgt = anchors.new_zeros(len(anchors), 4)
                if pos.any():
                    tgt[pos] = self.bbox_coder.encode(
                        anchors[pos], gt.bboxes[res.gt_inds[pos] - 1])
            labels.append(lab)
            weights.append(wgt)
            targets.append(tgt)
        return torch.stack(labels), torch.stack(weights), torch.stack(targets)

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_gt_instances_ignore: OptInstanceList = None
                     ) -> Dict[str, Tensor]:
        """RPN losses.

        Args:
            cls_scores (list[Tensor]): (B, D, H, W, A) per level.
            bbox_preds (list[Tensor]): (B, D, H, W, A, 4) per level.
            batch_gt_instances (list[InstanceData]): ground truth.
            batch_gt_instances_ignore (list[InstanceData], optional):
                ignored boxes.

        Returns:
            dict[str, Tensor]: ``loss_rpn_cls``, ``loss_rpn_bbox``.
        """
        anchors = torch.cat(self.get_anchors(cls_scores))
        batch = cls_scores[0].size(0)
        logits = torch.cat([s.reshape(batch, -1) for s in cls_scores], 1)
        deltas = torch.cat([p.reshape(batch, -1, 4) for p in bbox_preds], 1)
        labels, weights, targets = self.get_targets(
            anchors, batch_gt_instances, batch_gt_instances_ignore)
        loss_cls = self.loss_cls(logits.reshape(-1), labels.reshape(-1),
                                 weight=weights.reshape(-1))
        pos = labels.reshape(-1) > 0
        num_pos = max(int(pos.sum()), 1)
        loss_bbox = self.loss_bbox(
            deltas.reshape(-1, 4)[pos], targets.reshape(-1, 4)[pos],
            avg_factor=num_pos) if pos.any() else deltas.sum() * 0
        return dict(loss_rpn_cls=loss_cls, loss_rpn_bbox=loss_bbox)

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        cfg: Optional[ConfigDict] = None) -> InstanceList:
        """Decode proposals of every image.

        Args:
            cls_scores (list[Tensor]): (B, D, H, W, A) per level.
            bbox_preds (list[Tensor]): (B, D, H, W, A, 4) per level.
            cfg (dict, optional): ``nms_pre`` (top anchors per level, 1000),
                ``score_thr`` (on the sigmoid, 0), ``iou_thr`` (3D NMS,
                0.1), ``max_per_img`` (100; -1: every box NMS keeps).
                Defaults to ``test_cfg``.

        Returns:
            list[InstanceData]: per image ``bboxes`` (n, 6) in input voxels,
            ``scores`` (sigmoid), ``logits`` and ``level_ids`` (the level
            each proposal came from: its reference level for the FPRN).
        """
        cfg = ConfigDict(cfg if cfg is not None else (self.test_cfg or {}))
        nms_pre = cfg.get('nms_pre', 1000)
        score_thr = cfg.get('score_thr', 0.)
        iou_thr = cfg.get('iou_thr', 0.1)
        max_per_img = cfg.get('max_per_img', 100)
        anchors = self._cached_anchors(cls_scores)
        results = []
        for i in range(cls_scores[0].size(0)):
            sel_anchors, sel_deltas, logits, levels = [], [], [], []
            for lvl, (score, pred) in enumerate(zip(cls_scores, bbox_preds)):
                s = flatten(score[i])  # on the calling thread (host_copy)
                if 0 < nms_pre < s.numel():
                    s, idx = s.topk(nms_pre)
                    # the top anchors' deltas, without copying all of the
                    # (strided) prediction
                    p = pred[i][_unravel(idx, score.shape[1:])]
                    a = anchors[lvl][idx]
                else:
                    p, a = pred[i].reshape(-1, 4), anchors[lvl]
                sel_anchors.append(a)
                sel_deltas.append(p)
                logits.append(s)
                levels.append(torch.full_like(s, lvl, dtype=torch.long))
            boxes = self.bbox_coder.decode(torch.cat(sel_anchors),
                                           torch.cat(sel_deltas))
            logits, levels = torch.cat(logits), torch.cat(levels)
            scores = logits.sigmoid()
            keep = scores > score_thr
            boxes, logits, levels, scores = (boxes[keep], logits[keep],
                                             levels[keep], scores[keep])
            inds = nms_3d_first(boxes, scores, iou_thr, max_per_img)
            results.append(
                InstanceData(
                    bboxes=boxes[inds],
                    scores=scores[inds],
                    logits=logits[inds],
                    level_ids=levels[inds],
                    labels=levels.new_zeros(len(inds))))
        return results

    def _cached_anchors(self, cls_scores: Sequence[Tensor]) -> List[Tensor]:
        """:meth:`get_anchors`, remembered per feature-map sizes and device
        (a sliding-window pass asks for the same anchors in every window).
        Read-only."""
        key = (tuple(tuple(s.shape[1:4]) for s in cls_scores),
               str(cls_scores[0].device))
        cache = self.__dict__.setdefault('_anchor_cache', {})
        if key not in cache:
            if len(cache) >= 4:
                cache.pop(next(iter(cache)))
            cache[key] = self.get_anchors(cls_scores)
        return cache[key]

    def nearest_level(self, bboxes: Tensor) -> Tensor:
        """Level whose anchor diameters are nearest (in log scale) to each
        box's diameter: the reference level of a box that did not come from
        a head (e.g. a ground-truth box used as a training proposal).

        Args:
            bboxes (Tensor): (n, 6).

        Returns:
            Tensor: (n,) level indices.
        """
        diam = bbox3d_to_zyxd(bboxes)[:, 3].clamp(min=1e-3).log()
        sizes = [(torch.tensor(s, device=bboxes.device)).log()
                 for s in self.prior_generator.sizes]
        dist = torch.stack([(diam[:, None] - s[None]).abs().min(1)[0]
                            for s in sizes], dim=1)
        return dist.argmin(1)
