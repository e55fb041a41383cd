# Copyright (c) mmlesion contributors. All rights reserved.
"""mmdet's CenterNet head ("Objects as Points", Zhou et al. 2019) as the
proposal network of a two-stage detector (LENS Table II, Yan et al., TMI
2020)."""
from typing import List, Optional

from mmdet.models.dense_heads import CenterNetHead
from mmdet.registry import MODELS
from mmdet.utils import InstanceList
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor


@MODELS.register_module()
class CenterNetProposalHead(CenterNetHead):
    """:class:`~mmdet.models.dense_heads.CenterNetHead` (heatmap focal loss,
    size and offset L1 losses; training unchanged) that proposes boxes the
    way a two-stage detector asks an RPN for them.

    Per image: the ``cfg.nms_pre`` best local maxima of the heatmap,
    decoded as CenterNet decodes them, then ``cfg.min_bbox_size`` (as
    mmdet's RPN), ``cfg.nms`` and the ``cfg.max_per_img`` best: the
    proposal settings of a LENS config.

    Args:
        local_maximum_kernel (int): the max-pooling window of the peaks.
        **kwargs: :class:`~mmdet.models.dense_heads.CenterNetHead`'s.

    Example:
        >>> import torch
        >>> head = CenterNetProposalHead(in_channels=8, feat_channels=8,
        ...                              num_classes=1)
        >>> x = (torch.rand(1, 8, 16, 16), )
        >>> cfg = ConfigDict(nms_pre=50, max_per_img=10,
        ...                  nms=dict(type='nms', iou_threshold=0.7))
        >>> (props, ) = head.predict_by_feat(*head(x), batch_img_metas=[
        ...     dict(batch_input_shape=(64, 64), img_shape=(64, 64))],
        ...     cfg=cfg)
        >>> len(props) <= 10
        True
    """

    def __init__(self, *args, local_maximum_kernel: int = 3,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.local_maximum_kernel = int(local_maximum_kernel)

    def predict_by_feat(self,
                        center_heatmap_preds: List[Tensor],
                        wh_preds: List[Tensor],
                        offset_preds: List[Tensor],
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[ConfigDict] = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Proposals of a batch (one feature level, as CenterNet).

        Args:
            center_heatmap_preds, wh_preds, offset_preds (list[Tensor]):
                the head's outputs, one level each.
            batch_img_metas (list[dict]): the images' metainfo.
            cfg (ConfigDict, optional): ``nms_pre`` (peaks kept),
                ``min_bbox_size``, ``nms``, ``max_per_img``; the head's
                ``test_cfg`` if None.
            rescale (bool): boxes in the original image's coordinates.
            with_nms (bool): apply ``cfg.nms`` and ``max_per_img``.

        Returns:
            list[InstanceData]: ``bboxes``, ``scores``, ``labels`` per
            image, best first.

        Raises:
            ValueError: more than one feature level.
        """
        if not len(center_heatmap_preds) == len(wh_preds) == len(
                offset_preds) == 1:
            raise ValueError(
                'CenterNetProposalHead predicts from one feature level (as '
                f'CenterNet), got {len(center_heatmap_preds)}: give it one '
                "map, e.g. neck=dict(type='LevelSelectFPN', "
                'out_indices=(0, ))')
        cfg = ConfigDict(cfg if cfg is not None else self.test_cfg)
        # at most every location of the map (a small image has fewer)
        k = min(int(cfg.get('nms_pre', 100)),
                center_heatmap_preds[0][0].numel())
        out = []
        for i, meta in enumerate(batch_img_metas):
            bboxes, labels = self._decode_heatmap(
                center_heatmap_preds[0][i:i + 1], wh_preds[0][i:i + 1],
                offset_preds[0][i:i + 1], meta['batch_input_shape'],
                k=k, kernel=self.local_maximum_kernel)
            bboxes, labels = bboxes.view(-1, 5), labels.view(-1)
            if 'border' in meta:
                bboxes[:, :4] -= bboxes.new_tensor(
                    meta['border'])[[2, 0, 2, 0]]
            if rescale and 'scale_factor' in meta:
                bboxes[:, :4] /= bboxes.new_tensor(
                    meta['scale_factor']).repeat(2)
            min_size = cfg.get('min_bbox_size', -1)
            if min_size >= 0:  # as mmdet's RPN: no empty or inverted box
                keep = ((bboxes[:, 2] - bboxes[:, 0]) > min_size) & (
                    (bboxes[:, 3] - bboxes[:, 1]) > min_size)
                bboxes, labels = bboxes[keep], labels[keep]
            if with_nms:
                bboxes, labels = self._bboxes_nms(bboxes, labels, cfg)
            res = InstanceData()
            res.bboxes = bboxes[:, :4]
            res.scores = bboxes[:, 4]
            res.labels = labels
            out.append(res)
        return out
