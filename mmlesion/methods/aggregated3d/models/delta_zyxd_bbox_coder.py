# Copyright (c) mmlesion contributors. All rights reserved.
"""Box coder for cubes ``(z, y, x, d)`` (3D Aggregated Faster R-CNN,
Sec. III-B)."""
import math
from typing import Sequence

import torch
from torch import Tensor

from mmdet.models.task_modules.coders import BaseBBoxCoder
from mmdet.registry import TASK_UTILS
from mmlesion.structures import bbox3d_to_zyxd, zyxd_to_bbox3d


@TASK_UTILS.register_module()
class DeltaZYXDBBoxCoder(BaseBBoxCoder):
    """Faster R-CNN deltas for cubes: ``((gz - az) / ad, (gy - ay) / ad,
    (gx - ax) / ad, log(gd / ad))``, normalised by ``means`` / ``stds``.

    Boxes go in and come out as ``[x1, y1, z1, x2, y2, z2]``; a box's
    diameter is the mean of its extents (``bbox3d_to_zyxd``), so decoded
    boxes are cubes, as the paper's ``{z, y, x, d}`` encoding implies.

    Args:
        means (Sequence[float]): delta means. Defaults to 0.
        stds (Sequence[float]): delta stds. Defaults to 1.
        max_log_ratio (float): clamp of the decoded ``log(d / ad)``.
            Defaults to ``log(1000 / 16)`` as mmdet's coders.
    """

    encode_size = 4

    def __init__(self,
                 means: Sequence[float] = (0., 0., 0., 0.),
                 stds: Sequence[float] = (1., 1., 1., 1.),
                 max_log_ratio: float = abs(math.log(16. / 1000)),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if len(means) != 4 or len(stds) != 4:
            raise ValueError('DeltaZYXDBBoxCoder: means and stds need 4 '
                             'values (z, y, x, d)')
        self.means = tuple(float(m) for m in means)
        self.stds = tuple(float(s) for s in stds)
        self.max_log_ratio = float(max_log_ratio)

    def encode(self, bboxes: Tensor, gt_bboxes: Tensor) -> Tensor:
        """Deltas that turn ``bboxes`` (anchors) into ``gt_bboxes``.

        Args:
            bboxes (Tensor): (N, 6) anchors.
            gt_bboxes (Tensor): (N, 6) targets.

        Returns:
            Tensor: (N, 4) deltas.
        """
        if bboxes.shape != gt_bboxes.shape or bboxes.dim() != 2 or \
                bboxes.size(-1) != 6:
            raise ValueError(f'encode needs two (N, 6) tensors, got '
                             f'{tuple(bboxes.shape)} and '
                             f'{tuple(gt_bboxes.shape)}')
        a = bbox3d_to_zyxd(bboxes.float())
        g = bbox3d_to_zyxd(gt_bboxes.float())
        ad = a[:, 3:4]
        deltas = torch.cat(
            [(g[:, :3] - a[:, :3]) / ad,
             torch.log(g[:, 3:4] / ad)], dim=1)
        means = deltas.new_tensor(self.means)
        stds = deltas.new_tensor(self.stds)
        return (deltas - means) / stds

    def decode(self, bboxes: Tensor, pred_bboxes: Tensor) -> Tensor:
        """Apply deltas to anchors.

        Args:
            bboxes (Tensor): (N, 6) anchors.
            pred_bboxes (Tensor): (N, 4) deltas.

        Returns:
            Tensor: (N, 6) decoded cubes.
        """
        if bboxes.size(-1) != 6 or pred_bboxes.size(-1) != 4 or \
                bboxes.shape[:-1] != pred_bboxes.shape[:-1]:
            raise ValueError(f'decode needs (N, 6) anchors and (N, 4) '
                             f'deltas, got {tuple(bboxes.shape)} and '
                             f'{tuple(pred_bboxes.shape)}')
        means = pred_bboxes.new_tensor(self.means)
        stds = pred_bboxes.new_tensor(self.stds)
        deltas = pred_bboxes * stds + means
        a = bbox3d_to_zyxd(bboxes)
        ad = a[..., 3:4]
        ctr = a[..., :3] + deltas[..., :3] * ad
        d = ad * deltas[..., 3:4].clamp(
            min=-self.max_log_ratio, max=self.max_log_ratio).exp()
        return zyxd_to_bbox3d(torch.cat([ctr, d], dim=-1))
