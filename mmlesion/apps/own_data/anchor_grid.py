# Copyright (c) mmlesion contributors. All rights reserved.
"""Anchors on their stride grid: how many of them an RPN trains as positive
for a box, wherever the box lies (:func:`grid_positives`).

The centred best-anchor IoU (:mod:`.anchor_iou`, the anchor search's
measure) assumes an anchor centred on each box; an anchor generator places
them at multiples of its level's stride, so a box between grid points
overlaps the nearest anchor of its size less. An anchor of ``a`` pixels at
stride ``s`` loses about ``s / a`` of its IoU off the grid points: anchors
of two strides reach an RPN's positive IoU of 0.7 only for boxes near a
grid point, anchors of four strides almost anywhere.
"""
from dataclasses import dataclass

import numpy as np

from mmlesion.anchors.anchor_config import AnchorConfig
from mmlesion.anchors.anchor_iou import anchor_shapes

#: Offsets of a box per axis over one cell of the coarsest stride.
OFFSETS = 4


@dataclass(frozen=True)
class GridCoverage:
    """Positive anchors of boxes placed over a grid cell.

    Attributes:
        iou_thr (float): the positive IoU.
        frac_with_positive (float): share of box placements with at least
            one anchor at ``iou_thr`` (the others get only the assigner's
            best-match anchor, if any).
        median_positives (float): median anchors at ``iou_thr`` per box
            placement.
        median_best_iou (float): median best IoU of a box placement.
    """
    iou_thr: float
    frac_with_positive: float
    median_positives: float
    median_best_iou: float


def _iou(box: np.ndarray, grid: np.ndarray,
         area: np.ndarray) -> np.ndarray:
    """IoU of ``box`` with the ``grid`` anchors (columns x1, y1, x2, y2) of
    areas ``area``."""
    inter = np.clip(np.minimum(box[2], grid[2]) - np.maximum(box[0], grid[0]),
                    0, None) * np.clip(
        np.minimum(box[3], grid[3]) - np.maximum(box[1], grid[1]), 0, None)
    return inter / ((box[2] - box[0]) * (box[3] - box[1]) + area - inter)


def grid_positives(box_wh: np.ndarray, anchors: AnchorConfig,
                   iou_thr: float = .7) -> GridCoverage:
    """Positive anchors per box on the anchors' grid (module doc).

    Each box is placed at :data:`OFFSETS` x :data:`OFFSETS` offsets over
    one cell of the coarsest stride; every level's anchors (mmdet's
    ``AnchorGenerator``: centred on the multiples of the stride) near it
    are counted.

    Args:
        box_wh (np.ndarray): ``(N, 2)`` widths and heights (pixels).
        anchors (AnchorConfig): the anchors.
        iou_thr (float): the positive IoU (an RPN's, 0.7).

    Returns:
        GridCoverage: the shares over all placements.
    """
    wh = np.asarray(box_wh, np.float64).reshape(-1, 2)
    if not len(wh):
        raise ValueError('grid_positives: no boxes')
    cell = max(anchors.strides)
    reach = float(wh.max()) + 2 * cell
    grids = []  # every level's anchors (x1, y1, x2, y2) around the origin
    for stride, size in zip(anchors.strides, anchors.sizes):
        shapes = anchor_shapes([size], anchors.ratios, anchors.scales)
        centres = np.arange(-reach // stride - 1, reach // stride + 2
                            ) * stride
        cx, cy = [c.ravel() for c in np.meshgrid(centres, centres)]
        half = np.repeat(shapes[None] / 2, len(cx), 0).reshape(-1, 2)
        xy = np.repeat(np.stack([cx, cy], 1), len(shapes), 0)
        grids.append(np.concatenate([xy - half, xy + half], 1))
    grid = np.concatenate(grids).T.copy()
    steps = (np.arange(OFFSETS) + .5) / OFFSETS * cell
    counts, best = [], []
    for w, h in wh:
        # the anchors a placement of the box can overlap: the others' IoU
        # is 0 at every placement (they count only at an IoU of 0)
        near = grid if iou_thr <= 0 else grid[:, (
            grid[0] < steps[-1] + w / 2) & (grid[2] > steps[0] - w / 2) & (
            grid[1] < steps[-1] + h / 2) & (grid[3] > steps[0] - h / 2)]
        area = (near[2] - near[0]) * (near[3] - near[1])
        for ox in steps:
            for oy in steps:
                iou = _iou(np.array([ox - w / 2, oy - h / 2, ox + w / 2,
                                     oy + h / 2]), near, area)
                counts.append(int((iou >= iou_thr).sum()))
                best.append(float(iou.max(initial=0.)))
    counts = np.asarray(counts)
    return GridCoverage(float(iou_thr), float((counts > 0).mean()),
                        float(np.median(counts)), float(np.median(best)))
