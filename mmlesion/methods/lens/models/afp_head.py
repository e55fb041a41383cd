# Copyright (c) mmlesion contributors. All rights reserved.
"""Anchor-free proposal network (AFP) of LENS (Yan et al., TMI 2020,
"Learning from Multiple Datasets with Heterogeneous and Partial Labels for
Universal Lesion Detection in CT", Sec. IV-B)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmcv.ops import batched_nms
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS
from mmdet.structures.bbox import distance2bbox
from mmdet.utils import (ConfigType, InstanceList, OptConfigType,
                         OptInstanceList, OptMultiConfig, reduce_mean)
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

INF = 1e8


@MODELS.register_module()
class AFPHead(BaseDenseHead):
    r"""Anchor-free proposal network of LENS (Sec. IV-B), an RPN head.

    Two branches predict, at every feature-map pixel, a *centerness* logit
    (is the pixel in the centre region of a lesion) and four distances to
    that lesion's box borders; each is "two convolutional layers and a ReLU
    layer" (a 3x3 conv, ReLU, a 1x1 output conv).

    Targets, for a box :math:`B = (x, y, w, h)`: centre region
    :math:`(x, y, r_c w, r_c h)` has centerness target 1 and the only box
    loss (L1); the ignore region :math:`(x, y, r_i w, r_i h)` around it has
    no centerness loss; everywhere else the target is 0. An *uncertain*
    lesion (mmdet's ignored instances, LENS Sec. V-C) has only the ignore
    region. Centre regions win over ignore regions of other lesions; a pixel
    in two centre regions regresses the smaller box. The centerness loss is
    a sigmoid focal loss averaged over the positives; the box loss L1
    (``loss_weight=0.1``, :math:`\lambda_1` of Eq. 1).

    Choices where the paper is silent: distances are regressed in units of
    the level's stride (as FCOS's ``norm_on_bbox``); a lesion whose centre
    region holds no pixel centre gets the pixel nearest to its centre; with
    several levels a lesion goes to the level whose ``regress_ranges``
    entry contains ``max(w, h)`` (LENS uses one, ``strides=(4,)``);
    proposals are the top ``nms_pre`` pixels per level, decoded, NMS'd over
    all levels together (RPN's test config keys). ``train_cfg`` is accepted
    and not used.

    Args:
        num_classes (int): must be 1 (proposals are class agnostic).
        in_channels (int): channels of the input feature maps.
        feat_channels (int): channels of the hidden conv of each branch.
        strides (Sequence[int]): strides of the levels used.
        regress_ranges (Sequence[tuple], optional): per level, the range of
            ``max(w, h)`` of its lesions. Defaults to all sizes for one
            level, ``(0, 8 * s_0), (8 * s_0, 8 * s_1), ...`` for several.
        center_ratio (float): :math:`r_c`. Defaults to 0.2.
        ignore_ratio (float): :math:`r_i`. Defaults to 0.5.
        loss_centerness (dict): focal loss config.
        loss_bbox (dict): L1 loss config (loss_weight is :math:`\lambda_1`).
        conv_cfg, norm_cfg (dict, optional): for the hidden convs.
        train_cfg, test_cfg (dict, optional): see above.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self,
                 num_classes: int = 1,
                 in_channels: int = 256,
                 feat_channels: int = 256,
                 strides: Sequence[int] = (4, ),
                 regress_ranges: Optional[Sequence[Tuple[float,
                                                         float]]] = None,
                 center_ratio: float = 0.2,
                 ignore_ratio: float = 0.5,
                 loss_centerness: ConfigType = dict(
                     type='FocalLoss',
                     use_sigmoid=True,
                     gamma=2.0,
                     alpha=0.25,
                     loss_weight=1.0),
                 loss_bbox: ConfigType = dict(type='L1Loss', loss_weight=0.1),
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = dict(
                     type='Normal',
                     layer='Conv2d',
                     std=0.01,
                     override=dict(
                         type='Normal',
                         name='conv_centerness',
                         std=0.01,
                         bias_prob=0.01))) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes != 1:
            raise ValueError(
                f'AFPHead proposes class-agnostic boxes: num_classes must be '
                f'1, got {num_classes}')
        if not 0 < center_ratio < ignore_ratio <= 1:
            raise ValueError(
                'AFPHead needs 0 < center_ratio < ignore_ratio <= 1, got '
                f'center_ratio={center_ratio}, ignore_ratio={ignore_ratio}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.strides = tuple(int(s) for s in strides)
        self.num_levels = len(self.strides)
        if regress_ranges is None:
            if self.num_levels == 1:
                regress_ranges = ((0., INF), )
            else:
                bounds = [0.] + [8. * s for s in self.strides[:-1]] + [INF]
                regress_ranges = tuple(
                    (bounds[i], bounds[i + 1]) for i in range(self.num_levels))
        if len(regress_ranges) != self.num_levels:
            raise ValueError(
                f'AFPHead: {len(regress_ranges)} regress_ranges for '
                f'{self.num_levels} strides {self.strides}')
        self.regress_ranges = tuple(tuple(r) for r in regress_ranges)
        self.center_ratio = center_ratio
        self.ignore_ratio = ignore_ratio
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.prior_generator = MlvlPointGenerator(self.strides, offset=0.5)
        self.loss_centerness = MODELS.build(loss_centerness)
        self.loss_bbox = MODELS.build(loss_bbox)

        def branch(out_channels: int, name: str) -> None:
            setattr(
                self, f'{name}_conv',
                ConvModule(
                    in_channels,
                    feat_channels,
                    3,
                    padding=1,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                    act_cfg=dict(type='ReLU')))
            setattr(self, f'conv_{name}',
                    nn.Conv2d(feat_channels, out_channels, 1))

        branch(1, 'centerness')
        branch(4, 'reg')

    def forward(self, x: Tuple[Tensor, ...]) -> Tuple[List[Tensor], ...]:
        """Predict on the first ``len(strides)`` feature maps.

        Args:
            x (tuple[Tensor]): (N, C, H, W) feature maps, finest first.

        Returns:
            tuple: centerness logits (N, 1, H, W) per level, and box
            distances (N, 4, H, W) per level in units of the stride
            (non-negative).
        """
        if len(x) < self.num_levels:
            raise ValueError(
                f'AFPHead with strides {self.strides} needs '
                f'{self.num_levels} feature maps, got {len(x)}')
        return multi_apply(self.forward_single, x[:self.num_levels])

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """One level: (centerness logits, stride-normalised distances)."""
        ctr = self.conv_centerness(self.centerness_conv(x))
        reg = self.conv_reg(self.reg_conv(x)).relu()
        return ctr, reg

    @staticmethod
    def _scaled_boxes(bboxes: Tensor, ratio: float) -> Tensor:
        """Boxes with the same centre and ``ratio`` times the size."""
        ctr = (bboxes[:, :2] + bboxes[:, 2:]) / 2
        half = (bboxes[:, 2:] - bboxes[:, :2]) * (ratio / 2)
        return torch.cat([ctr - half, ctr + half], dim=1)

    @staticmethod
    def _inside(points: Tensor, boxes: Tensor) -> Tensor:
        """(P, G) bool: point p strictly inside box g."""
        px, py = points[:, 0:1], points[:, 1:2]
        return ((px > boxes[None, :, 0]) & (px < boxes[None, :, 2]) &
                (py > boxes[None, :, 1]) & (py < boxes[None, :, 3]))

    def get_targets_single_level(
            self, points: Tensor, stride: int, regress_range: Tuple[float,
                                                                    float],
            gt_bboxes: Tensor, ignore_bboxes: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """AFP targets of one image on one level.

        Args:
            points (Tensor): (P, 2) pixel centres (x, y) in image pixels.
            stride (int): the level's stride.
            regress_range (tuple): range of ``max(w, h)`` for this level.
            gt_bboxes (Tensor): (G, 4) lesion boxes x1y1x2y2.
            ignore_bboxes (Tensor): (K, 4) uncertain lesion boxes.

        Returns:
            tuple: ``labels`` (P,) long, 0 = centre region (positive),
            1 = background; ``label_weights`` (P,) float, 0 in ignore
            regions; ``bbox_targets`` (P, 4) distances (l, t, r, b) in units
            of ``stride`` (valid where positive); ``pos_mask`` (P,) bool.
        """
        num_points = points.size(0)
        labels = points.new_ones(num_points, dtype=torch.long)
        weights = points.new_ones(num_points)
        bbox_targets = points.new_zeros(num_points, 4)
        pos_mask = points.new_zeros(num_points, dtype=torch.bool)

        if ignore_bboxes.numel():
            ign = self._inside(points,
                               self._scaled_boxes(ignore_bboxes,
                                                  self.ignore_ratio))
            weights[ign.any(dim=1)] = 0.
        if gt_bboxes.numel() == 0:
            return labels, weights, bbox_targets, pos_mask

        wh = gt_bboxes[:, 2:] - gt_bboxes[:, :2]
        size = wh.max(dim=1).values
        on_level = (size >= regress_range[0]) & (size < regress_range[1])
        if not on_level.any():
            return labels, weights, bbox_targets, pos_mask
        gts = gt_bboxes[on_level]
        ign = self._inside(points, self._scaled_boxes(gts, self.ignore_ratio))
        weights[ign.any(dim=1)] = 0.
        ctn = self._inside(points, self._scaled_boxes(gts, self.center_ratio))
        # A lesion whose centre region holds no pixel centre: the pixel
        # nearest to its centre becomes its positive.
        empty = ~ctn.any(dim=0)
        if empty.any():
            centres = (gts[empty, :2] + gts[empty, 2:]) / 2
            nearest = torch.cdist(centres, points).argmin(dim=1)
            ctn[nearest, empty.nonzero(as_tuple=True)[0]] = True
        areas = (gts[:, 2] - gts[:, 0]) * (gts[:, 3] - gts[:, 1])
        area_map = areas[None, :].expand(num_points, -1).clone()
        area_map[~ctn] = INF
        min_area, gt_idx = area_map.min(dim=1)
        pos_mask = min_area < INF
        labels[pos_mask] = 0
        weights[pos_mask] = 1.
        matched = gts[gt_idx[pos_mask]]
        pts = points[pos_mask]
        dist = torch.stack([
            pts[:, 0] - matched[:, 0], pts[:, 1] - matched[:, 1],
            matched[:, 2] - pts[:, 0], matched[:, 3] - pts[:, 1]
        ],
                           dim=1)
        bbox_targets[pos_mask] = dist.clamp(min=0) / stride
        return labels, weights, bbox_targets, pos_mask

    def get_targets(self, points: List[Tensor],
                    batch_gt_instances: InstanceList,
                    batch_gt_instances_ignore: OptInstanceList) -> tuple:
        """Targets of the batch, flattened over images and levels (image
        major, then level, then pixel in row-major order)."""
        out = [[], [], [], []]
        for i, gt in enumerate(batch_gt_instances):
            ignore = batch_gt_instances_ignore[i] \
                if batch_gt_instances_ignore is not None else None
            ign_boxes = ignore.bboxes if ignore is not None and len(
                ignore) else gt.bboxes.new_zeros(0, 4)
            for lvl, pts in enumerate(points):
                res = self.get_targets_single_level(pts, self.strides[lvl],
                                                    self.regress_ranges[lvl],
                                                    gt.bboxes, ign_boxes)
                for o, r in zip(out, res):
                    o.append(r)
        return tuple(torch.cat(o) for o in out)

    @staticmethod
    def _flatten(maps: List[Tensor]) -> Tensor:
        """(N, C, H, W) per level -> (N * sum(H * W), C), image major."""
        n, c = maps[0].shape[:2]
        return torch.cat(
            [m.permute(0, 2, 3, 1).reshape(n, -1, c) for m in maps],
            dim=1).reshape(-1, c)

    def loss_by_feat(
            self,
            centernesses: List[Tensor],
            bbox_preds: List[Tensor],
            batch_gt_instances: InstanceList,
            batch_img_metas: List[dict],
            batch_gt_instances_ignore: OptInstanceList = None
    ) -> Dict[str, Tensor]:
        """Centerness focal loss and L1 size loss (Eq. 1, first two terms).

        Returns:
            dict: ``loss_centerness`` and ``loss_size`` (mmdet's two-stage
            detectors prefix them with ``rpn_``).
        """
        featmap_sizes = [c.shape[-2:] for c in centernesses]
        device = centernesses[0].device
        # float32 points whatever the features' dtype: under AMP the
        # targets (pixel distances up to the image size) keep their precision
        points = self.prior_generator.grid_priors(
            featmap_sizes, dtype=torch.float32, device=device)
        labels, weights, bbox_targets, pos_mask = self.get_targets(
            points, batch_gt_instances, batch_gt_instances_ignore)
        ctr = self._flatten(centernesses)
        reg = self._flatten(bbox_preds)
        num_pos = reduce_mean(
            torch.tensor(
                float(pos_mask.sum()), dtype=torch.float,
                device=device)).clamp(min=1.)
        loss_ctr = self.loss_centerness(
            ctr, labels, weights, avg_factor=num_pos)
        if pos_mask.any():
            loss_size = self.loss_bbox(
                reg[pos_mask], bbox_targets[pos_mask], avg_factor=num_pos * 4)
        else:
            loss_size = reg.sum() * 0.
        return dict(loss_centerness=loss_ctr, loss_size=loss_size)

    def predict_by_feat(self,
                        centernesses: List[Tensor],
                        bbox_preds: List[Tensor],
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: OptConfigType = None,
                        rescale: bool = False,
                        with_nms: bool = True,
                        **kwargs) -> InstanceList:
        """Decode proposals.

        Args:
            centernesses, bbox_preds (list[Tensor]): outputs of
                :meth:`forward`.
            batch_img_metas (list[dict]): need ``img_shape`` (and
                ``scale_factor`` when ``rescale``).
            cfg (dict, optional): ``nms_pre``, ``max_per_img``, ``nms``,
                ``min_bbox_size``; defaults to ``test_cfg``.
            rescale (bool): map the boxes back to the original image.
            with_nms (bool): apply NMS.

        Returns:
            list[InstanceData]: per image ``bboxes`` (n, 4), ``scores``
            (n,) (sigmoid centerness) and ``labels`` (n,) zeros.
        """
        cfg = ConfigDict(cfg if cfg is not None else (self.test_cfg or {}))
        nms_pre = cfg.get('nms_pre', 1000)
        max_per_img = cfg.get('max_per_img', 1000)
        min_size = cfg.get('min_bbox_size', 0)
        nms_cfg = cfg.get('nms', dict(type='nms', iou_threshold=0.7))
        featmap_sizes = [c.shape[-2:] for c in centernesses]
        points = self.prior_generator.grid_priors(
            featmap_sizes,
            dtype=torch.float32,  # as in loss_by_feat (AMP)
            device=centernesses[0].device)
        results = []
        for img_id, meta in enumerate(batch_img_metas):
            mlvl_boxes, mlvl_scores = [], []
            for lvl, pts in enumerate(points):
                scores = centernesses[lvl][img_id].reshape(-1).sigmoid()
                dist = bbox_preds[lvl][img_id].permute(1, 2, 0).reshape(-1, 4)
                if 0 < nms_pre < scores.numel():
                    scores, keep = scores.topk(nms_pre)
                    dist, pts = dist[keep], pts[keep]
                boxes = distance2bbox(
                    pts, dist * self.strides[lvl], max_shape=meta['img_shape'])
                mlvl_boxes.append(boxes)
                mlvl_scores.append(scores)
            boxes = torch.cat(mlvl_boxes)
            scores = torch.cat(mlvl_scores)
            if rescale and 'scale_factor' in meta:
                boxes = boxes / boxes.new_tensor(
                    meta['scale_factor']).repeat(2)
            if min_size >= 0:
                wh = boxes[:, 2:] - boxes[:, :2]
                valid = (wh[:, 0] > min_size) & (wh[:, 1] > min_size)
                boxes, scores = boxes[valid], scores[valid]
            if with_nms and boxes.numel():
                dets, keep = batched_nms(boxes, scores,
                                         scores.new_zeros(scores.shape),
                                         nms_cfg)
                boxes, scores = dets[:, :4], dets[:, 4]
            else:
                scores, order = scores.sort(descending=True)
                boxes = boxes[order]
            res = InstanceData()
            res.bboxes = boxes[:max_per_img]
            res.scores = scores[:max_per_img]
            res.labels = scores.new_zeros(
                res.scores.shape, dtype=torch.long)
            results.append(res)
        return results
