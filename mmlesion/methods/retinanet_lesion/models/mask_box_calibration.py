# Copyright (c) mmlesion contributors. All rights reserved.
"""Score calibration with the coherence of segmentation and detection.

Improved RetinaNet (Zlocha et al. 2019, Sec. 2.2) rescales each detection's
probability with the IoU between "a bounding-box around the predicted
segmentation mask and the directly regressed box": ``p~ = p * (1 + IoU)``.
The paper does not say how the box around the mask is drawn: here the
thresholded map is split into connected components and a detection uses
the tight box of the component that overlaps it best, which keeps two
neighbouring lesions apart.
"""
from typing import Tuple

import cv2
import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor


def mask_component_boxes(mask: Tensor,
                         connectivity: int = 8,
                         min_area: int = 1) -> Tensor:
    """Boxes around the connected components of a binary mask.

    Args:
        mask (Tensor): binary mask (H, W), bool or {0, 1}.
        connectivity (int): 4 or 8 (pixel neighbourhood). Defaults to 8.
        min_area (int): components with fewer pixels are dropped.
            Defaults to 1.

    Returns:
        Tensor: (K, 4) float boxes ``[x1, y1, x2, y2]`` in pixel-edge
        coordinates (a component covering columns 3..5 gives x1=3, x2=6), on
        the device of ``mask``.
    """
    if mask.dim() != 2:
        raise ValueError('mask_component_boxes expects a 2D (H, W) mask, got '
                         f'shape {tuple(mask.shape)}')
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity}')
    mask_np = np.ascontiguousarray(mask.detach().to('cpu',
                                                    torch.uint8).numpy())
    if not mask_np.any():
        return mask.new_zeros((0, 4), dtype=torch.float32)
    num, _, stats, _ = cv2.connectedComponentsWithStats(
        mask_np, connectivity=connectivity)
    stats = stats[1:num]  # row 0 is the background
    stats = stats[stats[:, cv2.CC_STAT_AREA] >= min_area]
    x1 = stats[:, cv2.CC_STAT_LEFT]
    y1 = stats[:, cv2.CC_STAT_TOP]
    x2 = x1 + stats[:, cv2.CC_STAT_WIDTH]
    y2 = y1 + stats[:, cv2.CC_STAT_HEIGHT]
    boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
    return torch.from_numpy(boxes).to(mask.device)


def calibrate_scores(scores: Tensor, bboxes: Tensor,
                     mask_boxes: Tensor) -> Tuple[Tensor, Tensor]:
    """Calibrate detection scores: ``p * (1 + IoU(mask box, regressed box))``.

    Args:
        scores (Tensor): (N,) detection probabilities ``p``.
        bboxes (Tensor): (N, 4) regressed boxes ``[x1, y1, x2, y2]``.
        mask_boxes (Tensor): (K, 4) boxes around the predicted mask
            components, in the same coordinates as ``bboxes``.

    Returns:
        tuple[Tensor, Tensor]: calibrated scores (N,) in ``[p, 2p]`` and the
        IoU (N,) of each detection with its best-overlapping mask box (0 when
        there is none).
    """
    if scores.dim() != 1 or bboxes.dim() != 2 or bboxes.shape[-1] != 4 \
            or bboxes.shape[0] != scores.shape[0]:
        raise ValueError('calibrate_scores expects scores (N,) and bboxes '
                         f'(N, 4), got {tuple(scores.shape)} and '
                         f'{tuple(bboxes.shape)}')
    if mask_boxes.dim() != 2 or mask_boxes.shape[-1] != 4:
        raise ValueError('calibrate_scores expects mask_boxes (K, 4), got '
                         f'{tuple(mask_boxes.shape)}')
    if bboxes.shape[0] == 0 or mask_boxes.shape[0] == 0:
        ious = scores.new_zeros(scores.shape)
    else:
        overlaps = bbox_overlaps(
            bboxes.float(), mask_boxes.to(bboxes.device).float(), mode='iou')
        ious = overlaps.max(dim=1).values.clamp(
            min=0., max=1.).to(scores.dtype)
    return scores * (1. + ious), ious


def calibrate_with_mask(scores: Tensor,
                        bboxes: Tensor,
                        mask_prob: Tensor,
                        mask_thr: float = 0.5,
                        connectivity: int = 8,
                        min_area: int = 1) -> Tuple[Tensor, Tensor]:
    """Threshold a probability map, box its components and calibrate.

    Args:
        scores (Tensor): (N,) detection probabilities.
        bboxes (Tensor): (N, 4) regressed boxes, in the pixel coordinates of
            ``mask_prob``.
        mask_prob (Tensor): (H, W) predicted lesion probability map.
        mask_thr (float): probability threshold of the mask. Defaults to 0.5.
        connectivity (int): 4 or 8. Defaults to 8.
        min_area (int): smallest component kept, in pixels. Defaults to 1.

    Returns:
        tuple[Tensor, Tensor]: calibrated scores and IoUs, as in
        :func:`calibrate_scores`.
    """
    mask_boxes = mask_component_boxes(
        mask_prob >= mask_thr, connectivity=connectivity, min_area=min_area)
    return calibrate_scores(scores, bboxes, mask_boxes)
