# Copyright (c) mmlesion contributors. All rights reserved.
"""mmdet's ``SingleRoIExtractor`` with its mmcv ``RoIAlign`` layers run on
channels-last features in torch (:func:`.roi_align_rows.roi_align_rows`):
every level's RoIs in one ``embedding_bag``, forward and backward.

On a CPU, mmcv's RoIAlign reads and (in its backward) writes a channel at a
time on one thread; here each bilinear sample is a contiguous row of
channels. The pooled features equal mmcv's up to the order of float sums
(about 1e-6 relative), and so do their gradients. On another device the
layers run as mmdet runs them.
"""
from typing import Optional, Tuple

import torch
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from torch import Tensor

from .roi_align_rows import (PooledRoIs, RoIAlignSettings, pool_levels,
                             pools_here)


@MODELS.register_module()
class RowsRoIExtractor(SingleRoIExtractor):
    """A ``SingleRoIExtractor`` (same arguments, same levels, same output)
    whose RoIAlign runs on channels-last feature rows on the CPU.

    Its ``roi_layer`` must be mmcv's ``RoIAlign`` with average pooling, as
    mmdet's two-stage configs set it.

    Raises:
        ValueError: another RoI layer, or max pooling.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for layer in self.roi_layers:
            if not pools_here(layer):
                raise ValueError(
                    f'RowsRoIExtractor: roi_layer {layer!r} is not mmcv\'s '
                    "RoIAlign with pool_mode='avg': use SingleRoIExtractor")
        self.settings = [RoIAlignSettings.of(layer)
                         for layer in self.roi_layers]

    def forward(self,
                feats: Tuple[Tensor],
                rois: Tensor,
                roi_scale_factor: Optional[float] = None) -> Tensor:
        """The RoIs' pooled features, (n, C, out_h, out_w), as
        ``SingleRoIExtractor.forward`` gives them (levels by
        ``map_roi_levels``; ``roi_scale_factor`` with several levels)."""
        if feats[0].device.type != 'cpu':
            return super().forward(feats, rois, roi_scale_factor)
        rois = rois.type_as(feats[0])
        num_levels = len(feats)
        if num_levels == 1:
            picks = [torch.arange(len(rois))]
        else:
            levels = self.map_roi_levels(rois, num_levels)
            if roi_scale_factor is not None:
                rois = self.roi_rescale(rois, roi_scale_factor)
            picks = [(levels == i).nonzero(as_tuple=False).squeeze(1)
                     for i in range(num_levels)]
        pooled = pool_levels(feats, [rois[p] for p in picks], self.settings)
        out = PooledRoIs(pooled.pooled,
                         torch.cat(picks)[pooled.order]).in_given_order()
        # every level in the graph, as mmdet keeps it (DDP)
        for feat, pick in zip(feats, picks):
            if not len(pick):
                out = out + feat.sum() * 0.
        out_h, out_w = self.roi_layers[0].output_size
        return out.view(len(rois), out_h, out_w,
                        feats[0].shape[1]).permute(0, 3, 1, 2)
