# Copyright (c) mmlesion contributors. All rights reserved.
"""3D boxes: ``[x1, y1, z1, x2, y2, z2]`` in continuous voxel coordinates.

This is the project-wide 3D box convention (``x2 = x1 + extent``, as mmdet's
2D boxes, voxel ``i`` spanning ``[i, i + 1)``). mmcv.ops has no 3D IoU or
3D NMS, so both are written here once, in torch, for every 3D model.
"""
from typing import Tuple

import torch
from torch import Tensor

from mmdet.registry import TASK_UTILS


def _check_boxes(boxes: Tensor, name: str) -> None:
    if boxes.dim() != 2 or boxes.size(-1) != 6:
        raise ValueError(f'{name} must be (N, 6) [x1, y1, z1, x2, y2, z2] '
                         f'boxes, got shape {tuple(boxes.shape)}')


def bbox_overlaps_3d(bboxes1: Tensor,
                     bboxes2: Tensor,
                     mode: str = 'iou',
                     eps: float = 1e-6) -> Tensor:
    """Pairwise 3D IoU (or IoF: intersection over ``bboxes1``'s volume).

    Args:
        bboxes1 (Tensor): (N, 6) boxes.
        bboxes2 (Tensor): (M, 6) boxes.
        mode (str): ``'iou'`` or ``'iof'``.
        eps (float): guards against empty unions.

    Returns:
        Tensor: (N, M) overlaps.
    """
    if mode not in ('iou', 'iof'):
        raise ValueError(f"mode must be 'iou' or 'iof', got {mode!r}")
    _check_boxes(bboxes1, 'bboxes1')
    _check_boxes(bboxes2, 'bboxes2')
    lt = torch.maximum(bboxes1[:, None, :3], bboxes2[None, :, :3])
    rb = torch.minimum(bboxes1[:, None, 3:], bboxes2[None, :, 3:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    vol1 = (bboxes1[:, 3:] - bboxes1[:, :3]).clamp(min=0).prod(-1)
    vol2 = (bboxes2[:, 3:] - bboxes2[:, :3]).clamp(min=0).prod(-1)
    if mode == 'iou':
        union = vol1[:, None] + vol2[None, :] - inter
    else:
        union = vol1[:, None].expand_as(inter)
    return inter / union.clamp(min=eps)


@TASK_UTILS.register_module()
class BboxOverlaps3D:
    """3D IoU calculator for mmdet's assigners (e.g. ``MaxIoUAssigner``).

    ``MaxIoUAssigner(iou_calculator=dict(type='BboxOverlaps3D'))`` assigns
    3D anchors with mmdet's own logic (thresholds, low-quality matches,
    ignore regions). Trailing score columns (7 columns) are dropped.
    """

    def __call__(self,
                 bboxes1: Tensor,
                 bboxes2: Tensor,
                 mode: str = 'iou',
                 is_aligned: bool = False) -> Tensor:
        """(N, M) overlaps of (N, 6 or 7) and (M, 6 or 7) boxes (pairwise
        only: ``is_aligned`` must be False)."""
        if is_aligned:
            raise NotImplementedError('BboxOverlaps3D computes pairwise '
                                      'overlaps only')
        if bboxes1.size(-1) == 7:
            bboxes1 = bboxes1[..., :6]
        if bboxes2.size(-1) == 7:
            bboxes2 = bboxes2[..., :6]
        return bbox_overlaps_3d(bboxes1, bboxes2, mode)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'


def zyxd_to_bbox3d(zyxd: Tensor) -> Tensor:
    """Cubes ``(z, y, x, d)`` (centre, side) -> ``[x1, y1, z1, x2, y2, z2]``.

    Args:
        zyxd (Tensor): (..., 4).

    Returns:
        Tensor: (..., 6).
    """
    z, y, x, d = zyxd.unbind(-1)
    h = d / 2
    return torch.stack([x - h, y - h, z - h, x + h, y + h, z + h], dim=-1)


def bbox3d_to_zyxd(bboxes: Tensor) -> Tensor:
    """``[x1, y1, z1, x2, y2, z2]`` -> ``(z, y, x, d)``.

    The diameter is the mean of the three extents (the side for a cube, which
    is what LUNA16 and the paper's DeepLesion conversion produce).

    Args:
        bboxes (Tensor): (..., 6).

    Returns:
        Tensor: (..., 4).
    """
    ctr = (bboxes[..., :3] + bboxes[..., 3:]) / 2
    d = (bboxes[..., 3:] - bboxes[..., :3]).mean(-1)
    return torch.stack([ctr[..., 2], ctr[..., 1], ctr[..., 0], d], dim=-1)


def nms_3d(bboxes: Tensor, scores: Tensor,
           iou_thr: float) -> Tuple[Tensor, Tensor]:
    """Greedy 3D non-maximum suppression, as ``mmcv.ops.nms`` in 2D (ties
    in score keep the input order, on every run and device).

    Args:
        bboxes (Tensor): (N, 6) boxes.
        scores (Tensor): (N,) scores.
        iou_thr (float): boxes overlapping a kept box by more than this are
            suppressed.

    Returns:
        tuple[Tensor, Tensor]: kept boxes with their score as a 7th column
        (sorted by score, descending) and their indices into ``bboxes``.
    """
    _check_boxes(bboxes, 'bboxes')
    if scores.shape != bboxes.shape[:1]:
        raise ValueError(f'scores must be ({bboxes.size(0)},), got '
                         f'{tuple(scores.shape)}')
    if bboxes.numel() == 0:
        return bboxes.new_zeros((0, 7)), scores.new_zeros((0, ),
                                                          dtype=torch.long)
    order = torch.sort(scores, descending=True, stable=True)[1]
    boxes = bboxes[order]
    ious = bbox_overlaps_3d(boxes, boxes)
    suppressed = torch.zeros(len(order), dtype=torch.bool,
                             device=bboxes.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= ious[i] > iou_thr
    keep_t = torch.as_tensor(keep, dtype=torch.long, device=bboxes.device)
    inds = order[keep_t]
    return torch.cat([bboxes[inds], scores[inds, None]], dim=1), inds
