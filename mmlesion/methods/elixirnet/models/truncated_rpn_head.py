# Copyright (c) mmlesion contributors. All rights reserved.
"""TruncatedRPN of ElixirNet (Jiang et al., AAAI 2020, "TruncatedRPN")."""
import copy
import math
from typing import List, NamedTuple, Tuple, Union

import torch
import torch.nn as nn
from mmdet.models.dense_heads import RPNHead
from mmdet.models.utils import images_to_levels, multi_apply
from mmdet.registry import MODELS
from mmdet.structures.bbox import cat_boxes
from mmdet.utils import InstanceList, OptConfigType, OptInstanceList
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor


class TruncatedTargets(NamedTuple):
    """New label weights of a truncated RPN and how many sampled anchors
    were dropped (to be removed from the loss's ``avg_factor``)."""
    label_weights: List[Tensor]
    num_dropped: int


@MODELS.register_module()
class TruncatedRPNHead(RPNHead):
    r"""RPN head that truncates anchors where a lesion is unlikely (TRPN).

    Implements Eq. (1) of ElixirNet, section "TruncatedRPN":

    .. math::
        TRPN = F([p(I(i, j)) \cdot I(i, j)]_{p(I(i, j)) > \epsilon} | k)

    A 1x1 convolution and a sigmoid predict, from the RPN input ``I`` of
    every level, a location-confidence map ``p`` (shared by a location's
    ``k`` anchors). The feature is multiplied by ``p`` before the RPN
    convolutions, and only the anchors of locations with ``p >= threshold``
    may become proposals, in training as at test time. The threshold is the
    mean of ``p`` per image and level (the paper's) or a fixed float;
    ``>=`` keeps every anchor of a constant map.

    Besides the product ``p * I`` (the paper's only path), ``p`` is trained,
    unless ``loss_loc=None``, by an auxiliary location loss whose targets
    are the RPN's own anchor assignment (as Guided Anchoring); positive and
    negative locations each carry half of it, so it starts at ``ln 2``
    whatever the image size (a sum normalised by the positives made SGD
    diverge). ``conv_loc``'s bias starts at ``logit(loc_prior)``: a 0.01
    prior would starve the RPN. With ``truncate_in_loss`` the sampled
    *negative* anchors of truncated locations leave the RPN losses
    (positives never do). ``loss_by_feat`` also returns
    ``trpn_keep_ratio`` (logged, not a loss). With
    ``weight_features=False``, ``truncate_thr=0.0`` and ``loss_loc=None``
    the head is numerically the plain :class:`RPNHead`.

    Args:
        in_channels (int): Channels of the input feature maps.
        truncate_thr (str | float): ``'mean'`` or a fixed value in [0, 1].
            Defaults to ``'mean'``.
        weight_features (bool): Multiply the input feature by ``p`` (Eq. 1).
            Defaults to True.
        truncate_in_loss (bool): Drop the negative anchors of truncated
            locations from the RPN losses. Defaults to True.
        loss_loc (dict, optional): Auxiliary supervision of ``p`` (label 0
            = lesion location), a sigmoid classification loss taking
            per-sample weights. Defaults to a sigmoid ``CrossEntropyLoss``;
            None disables it.
        loc_prior (float): initial value of ``p`` everywhere, in (0, 1).
            Defaults to 0.5.
        **kwargs: Everything :class:`mmdet.models.RPNHead` accepts.
    """

    def __init__(self,
                 in_channels: int,
                 truncate_thr: Union[str, float] = 'mean',
                 weight_features: bool = True,
                 truncate_in_loss: bool = True,
                 loss_loc: OptConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=True,
                     loss_weight=1.0),
                 loc_prior: float = 0.5,
                 **kwargs) -> None:
        if isinstance(truncate_thr, str):
            if truncate_thr != 'mean':
                raise ValueError(
                    "TruncatedRPNHead: truncate_thr must be 'mean' or a "
                    f'float in [0, 1], got {truncate_thr!r}')
        elif not 0.0 <= float(truncate_thr) <= 1.0:
            raise ValueError('TruncatedRPNHead: a float truncate_thr must lie '
                             f'in [0, 1] (sigmoid range), got {truncate_thr}')
        if not 0.0 < float(loc_prior) < 1.0:
            raise ValueError('TruncatedRPNHead: loc_prior must lie in (0, 1), '
                             f'got {loc_prior}')
        self.truncate_thr = truncate_thr
        self.loc_prior = float(loc_prior)
        self.weight_features = weight_features
        self.truncate_in_loss = truncate_in_loss
        super().__init__(in_channels=in_channels, **kwargs)
        self.loss_loc = MODELS.build(loss_loc) if loss_loc else None

    def _init_layers(self) -> None:
        """Build the RPN layers and the 1x1 location-confidence conv."""
        super()._init_layers()
        # Weights: RPNHead's default init (Normal, std 0.01); the bias is
        # set to logit(loc_prior) in init_weights.
        self.conv_loc = nn.Conv2d(self.in_channels, 1, 1)

    def init_weights(self) -> None:
        """Initialise as RPNHead, then start ``p`` at ``loc_prior``."""
        super().init_weights()
        prior = self.loc_prior
        nn.init.constant_(self.conv_loc.bias, math.log(prior / (1 - prior)))

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Forward one level.

        Args:
            x (Tensor): RPN input feature ``I`` of shape (N, C, H, W).

        Returns:
            tuple[Tensor, Tensor, Tensor]: objectness scores
            (N, A * cls_out_channels, H, W), box deltas (N, A * 4, H, W) and
            location logits (N, 1, H, W); ``p = sigmoid(logits)``.
        """
        loc_pred = self.conv_loc(x)
        if self.weight_features:
            x = x * loc_pred.sigmoid()
        rpn_cls_score, rpn_bbox_pred = super().forward_single(x)
        return rpn_cls_score, rpn_bbox_pred, loc_pred

    def location_keep_mask(self, loc_pred: Tensor) -> Tensor:
        """Locations that survive truncation.

        Args:
            loc_pred (Tensor): location logits (..., H, W) of one level,
                e.g. (N, 1, H, W) for a batch or (1, H, W) for one image.

        Returns:
            Tensor: bool mask of the same shape, ``p >= threshold`` where the
            ``'mean'`` threshold is taken over H and W of each map.
        """
        prob = loc_pred.detach().sigmoid()
        if self.truncate_thr == 'mean':
            thr = prob.mean(dim=(-2, -1), keepdim=True)
        else:
            thr = float(self.truncate_thr)
        return prob >= thr

    def _anchor_keep_mask(self, loc_pred: Tensor) -> Tensor:
        """(H * W * A,) keep mask of one image's (1, H, W) location logits,
        in the order of ``prior_generator.grid_priors``."""
        keep = self.location_keep_mask(loc_pred).reshape(-1)
        return keep.repeat_interleave(self.num_base_priors)

    def truncate_targets(self, labels_list: List[Tensor],
                         label_weights_list: List[Tensor],
                         keep_maps: List[Tensor]) -> TruncatedTargets:
        """Drop the sampled negatives of truncated locations from the loss.

        Args:
            labels_list (list[Tensor]): per level (N, H * W * A) anchor
                labels from :meth:`get_targets` (``num_classes`` =
                background).
            label_weights_list (list[Tensor]): per level (N, H * W * A)
                label weights from :meth:`get_targets`.
            keep_maps (list[Tensor]): per level (N, 1, H, W) bool masks from
                :meth:`location_keep_mask`.

        Returns:
            tuple[list[Tensor], int]: the new label weights (0 for sampled
            negative anchors at truncated locations, unchanged elsewhere;
            positives are never dropped) and how many sampled anchors were
            dropped (to be removed from the loss's ``avg_factor``).
        """
        new_weights = []
        num_dropped = 0
        for labels, weights, keep in zip(labels_list, label_weights_list,
                                         keep_maps):
            anchor_keep = keep.reshape(keep.size(0), -1).repeat_interleave(
                self.num_base_priors, dim=1)
            sampled = weights > 0
            is_pos = (labels < self.num_classes) & sampled
            drop = sampled & ~is_pos & ~anchor_keep
            num_dropped += int(drop.sum())
            new_weights.append(weights * (~drop).to(weights.dtype))
        return TruncatedTargets(new_weights, num_dropped)

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     loc_preds: List[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None) \
            -> dict:
        """:meth:`mmdet.models.AnchorHead.loss_by_feat` with the sampled
        targets truncated (see the class docstring) and the location loss.

        Args:
            cls_scores (list[Tensor]): per level (N, A * C, H, W).
            bbox_preds (list[Tensor]): per level (N, A * 4, H, W).
            loc_preds (list[Tensor]): per level (N, 1, H, W) logits of p.
            batch_gt_instances (list[InstanceData]): ground truth per image.
            batch_img_metas (list[dict]): image meta information.
            batch_gt_instances_ignore (list[InstanceData], optional): boxes
                to ignore.

        Returns:
            dict[str, Tensor | list[Tensor]]: ``loss_rpn_cls``,
            ``loss_rpn_bbox`` (per level), ``loss_rpn_loc`` (per level, when
            ``loss_loc`` is set) and ``trpn_keep_ratio`` (fraction of kept
            locations, for logging only; not a loss).
        """
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        assert len(featmap_sizes) == self.prior_generator.num_levels
        assert len(loc_preds) == len(cls_scores)
        device = cls_scores[0].device

        anchor_list, valid_flag_list = self.get_anchors(
            featmap_sizes, batch_img_metas, device=device)
        (labels_list, label_weights_list, bbox_targets_list,
         bbox_weights_list, avg_factor) = self.get_targets(
             anchor_list,
             valid_flag_list,
             batch_gt_instances,
             batch_img_metas,
             batch_gt_instances_ignore=batch_gt_instances_ignore)

        keep_maps = [self.location_keep_mask(lp) for lp in loc_preds]
        num_kept = sum(k.sum() for k in keep_maps)
        num_locs = sum(k.numel() for k in keep_maps)

        if self.truncate_in_loss:
            label_weights_list, num_dropped = self.truncate_targets(
                labels_list, label_weights_list, keep_maps)
            avg_factor = max(avg_factor - num_dropped, 1)

        num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
        concat_anchor_list = [cat_boxes(anchors) for anchors in anchor_list]
        all_anchor_list = images_to_levels(concat_anchor_list,
                                           num_level_anchors)
        losses_cls, losses_bbox = multi_apply(
            self.loss_by_feat_single,
            cls_scores,
            bbox_preds,
            all_anchor_list,
            labels_list,
            label_weights_list,
            bbox_targets_list,
            bbox_weights_list,
            avg_factor=avg_factor)
        losses = dict(loss_rpn_cls=losses_cls, loss_rpn_bbox=losses_bbox)

        if self.loss_loc is not None:
            losses['loss_rpn_loc'] = self.loss_by_loc(loc_preds, labels_list,
                                                      label_weights_list)
        losses['trpn_keep_ratio'] = (num_kept.float() / num_locs).detach()
        return losses

    def loss_by_loc(self, loc_preds: List[Tensor], labels_list: List[Tensor],
                    label_weights_list: List[Tensor]) -> List[Tensor]:
        """Class-balanced location loss, one term per level.

        Args:
            loc_preds (list[Tensor]): per level (N, 1, H, W) logits of p.
            labels_list (list[Tensor]): per level (N, H * W * A) anchor
                labels from :meth:`get_targets`.
            label_weights_list (list[Tensor]): per level (N, H * W * A)
                anchor label weights.

        Returns:
            list[Tensor]: per level losses whose sum is the balanced mean
            (positive and negative locations of the batch weigh half each).
        """
        loc_labels = []
        for lvl, loc_pred in enumerate(loc_preds):
            n, _, h, w = loc_pred.shape
            is_pos = (labels_list[lvl] < self.num_classes) & (
                label_weights_list[lvl] > 0)
            pos_loc = is_pos.reshape(n, h * w, -1).any(dim=-1)
            # label 0 = foreground (lesion location), 1 = background,
            # mmdet's convention for sigmoid classification losses.
            loc_labels.append((~pos_loc).long().reshape(-1))
        num_pos = sum(int((lab == 0).sum()) for lab in loc_labels)
        num_neg = sum(int((lab == 1).sum()) for lab in loc_labels)
        pos_w = 0.5 / num_pos if num_pos else 0.0
        neg_w = (0.5 if num_pos else 1.0) / max(num_neg, 1)
        losses = []
        for loc_pred, lab in zip(loc_preds, loc_labels):
            weight = torch.where(lab == 0, pos_w, neg_w).to(loc_pred.dtype)
            losses.append(
                self.loss_loc(
                    loc_pred.permute(0, 2, 3, 1).reshape(-1, 1),
                    lab,
                    weight,
                    avg_factor=1.0))
        return losses

    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: List[Tensor],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg: ConfigDict,
                                rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        """:meth:`mmdet.models.RPNHead._predict_by_feat_single` with the
        truncation applied to every level *before* the ``nms_pre`` top-k, so
        that truncated anchors can neither become proposals nor take a slot.

        Args:
            score_factor_list (list[Tensor]): per level (1, H, W) location
                logits (they do not rescale the scores).
            cls_score_list, bbox_pred_list, mlvl_priors, img_meta, cfg,
                rescale, with_nms: as for ``RPNHead``.

        Returns:
            InstanceData: ``bboxes``, ``scores``, ``labels`` of the
            proposals.
        """
        if score_factor_list[0] is None:
            raise ValueError(
                'TruncatedRPNHead._predict_by_feat_single needs the location '
                'maps; call predict_by_feat(cls_scores, bbox_preds, '
                'loc_preds, ...) with the three outputs of forward().')
        cfg = self.test_cfg if cfg is None else cfg
        cfg = copy.deepcopy(cfg)
        img_shape = img_meta['img_shape']
        nms_pre = cfg.get('nms_pre', -1)
        reg_dim = self.bbox_coder.encode_size

        mlvl_bbox_preds, mlvl_valid_priors = [], []
        mlvl_scores, level_ids = [], []
        for level_idx, (cls_score, bbox_pred, loc_pred, priors) in \
                enumerate(zip(cls_score_list, bbox_pred_list,
                              score_factor_list, mlvl_priors)):
            assert cls_score.size()[-2:] == bbox_pred.size()[-2:] \
                == loc_pred.size()[-2:]
            keep = self._anchor_keep_mask(loc_pred)
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, reg_dim)
            cls_score = cls_score.permute(1, 2,
                                          0).reshape(-1, self.cls_out_channels)
            if self.use_sigmoid_cls:
                scores = cls_score.sigmoid()
            else:
                scores = cls_score.softmax(-1)[:, :-1]
            scores = scores.reshape(-1)

            scores = scores[keep]
            bbox_pred = bbox_pred[keep]
            priors = priors[keep]
            if 0 < nms_pre < scores.shape[0]:
                ranked_scores, rank_inds = scores.sort(descending=True)
                topk_inds = rank_inds[:nms_pre]
                scores = ranked_scores[:nms_pre]
                bbox_pred = bbox_pred[topk_inds, :]
                priors = priors[topk_inds]

            mlvl_bbox_preds.append(bbox_pred)
            mlvl_valid_priors.append(priors)
            mlvl_scores.append(scores)
            level_ids.append(
                scores.new_full((scores.size(0), ),
                                level_idx,
                                dtype=torch.long))

        bbox_pred = torch.cat(mlvl_bbox_preds)
        priors = cat_boxes(mlvl_valid_priors)
        bboxes = self.bbox_coder.decode(priors, bbox_pred, max_shape=img_shape)

        results = InstanceData()
        results.bboxes = bboxes
        results.scores = torch.cat(mlvl_scores)
        results.level_ids = torch.cat(level_ids)
        return self._bbox_post_process(
            results=results, cfg=cfg, rescale=rescale, img_meta=img_meta)
