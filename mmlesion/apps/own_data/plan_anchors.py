# Copyright (c) mmlesion contributors. All rights reserved.
"""The planned pixel spacing, pyramid levels and anchors of a 2.5D plan,
against the lesions in pixels (:func:`plan_spacing`, :func:`plan_anchors`).

Spacing: the small lesions (:data:`SMALL_PCT`-th percentile of the training
boxes' longer side) span at least :data:`MIN_SMALL_PX` pixels, four cells
of the finest stride: an anchor of their size then overlaps them at the
RPN's positive IoU (0.7) wherever they lie on the stride-4 grid (an anchor
of two strides reaches it only for a box centred on a grid point, so a
small lesion gets one positive anchor or none and the RPN learns to call
everything background). The slices are resampled finer where the data are
coarser, never coarser than the data unless the small lesions would span
more than :data:`MAX_SMALL_PX`.

Levels: the 2.5D detectors' FPN has levels of strides 4..64 and every
level gets the same scales; a level is kept when an anchor of
:data:`MIN_SCALE` strides (the smallest that its grid places well: IoU >=
0.7 with a box of its size off the grid points) is not larger than the
largest lesion plus :data:`MARGIN`; the finest level is always kept. The
anchor scales are then searched (differential evolution, Zlocha et al.)
within the lesion sizes: not below :data:`MIN_SCALE` strides nor the
smallest lesion less the margin, the coarsest level's not above the
largest lesion plus the margin. The anchors' coverage is printed twice:
the best IoU of an anchor centred on each box (the search's measure), and
on the stride grid (:func:`~.anchor_grid.grid_positives`: the boxes at
offsets over a cell, the anchors an RPN trains as positives).
"""
import math
from dataclasses import dataclass
from typing import List, NamedTuple, Tuple

import numpy as np

from mmlesion.anchors.anchor_config import AnchorConfig
from mmlesion.anchors.anchor_coverage import anchor_coverage
from mmlesion.anchors.de_anchor_optimizer import DEAnchorOptimizer

from .anchor_grid import GridCoverage, grid_positives
from .plan_choice import Choice

#: The small lesions: this percentile of the boxes' longer side (mm).
SMALL_PCT = 5
#: The small lesions span at least this many pixels (4 cells of stride 4).
MIN_SMALL_PX = 16.
#: Coarser than the data only where the small lesions span more than this.
MAX_SMALL_PX = 32.
#: Finest planned spacing (mm / px).
MIN_SPACING_MM = .3
#: The base configs' FPN strides (P2-P6).
BASE_STRIDES = (4, 8, 16, 32, 64)
#: Anchors per level and ratios of the base configs' RPN.
NUM_SCALES = 5
#: A level's anchors of fewer strides are placed badly on its grid.
MIN_SCALE = 4.
#: Anchors within the lesion sizes divided / multiplied by this.
MARGIN = 1.5
#: The positive IoU of the centred coverage printed (RetinaNet's).
IOU_THR = .5
#: The RPN's positive IoU (the base configs' MaxIoUAssigner).
RPN_POS_IOU = .7


class PlannedSpacing(NamedTuple):
    """The pixel spacing (mm) :func:`plan_spacing` chose and why."""
    spacing: float
    why: str


def plan_spacing(longer_mm: np.ndarray, data_mm: float,
                 source: str = 'longer side of the training boxes'
                 ) -> PlannedSpacing:
    """The pixel spacing (mm) for lesions of longer sides ``longer_mm``
    (``source`` says what they are) in scans of median in-plane spacing
    ``data_mm``, and why (module doc)."""
    small = float(np.percentile(longer_mm, SMALL_PCT))
    fine = small / MIN_SMALL_PX
    coarse = small / MAX_SMALL_PX
    # to 0.01 mm, rounded the way that keeps the bound (16 px stays >= 16)
    if data_mm > fine:
        spacing = max(MIN_SPACING_MM, math.floor(fine * 100 + 1e-9) / 100)
        how = 'resampled finer than'
    elif data_mm < coarse:
        spacing = math.ceil(coarse * 100 - 1e-9) / 100
        how = 'coarser than'
    else:
        spacing, how = round(data_mm, 2), 'at'
    return PlannedSpacing(spacing, (
        f'{how} the median in-plane spacing {data_mm:g} mm so that the '
        f'{SMALL_PCT}th pct lesion ({small:.1f} mm, {source}) spans {small / spacing:.1f} px (>= '
        f'{MIN_SMALL_PX:g}: 4 cells of the finest stride 4, so that '
        f'anchors overlap them at the RPN\'s IoU {RPN_POS_IOU:g} off the grid'
        f' points; <= '
        f'{MAX_SMALL_PX:g}; not finer than {MIN_SPACING_MM:g} mm); lesions '
        f'{np.min(longer_mm) / spacing:.1f}-{np.max(longer_mm) / spacing:.1f}'
        f' px, median {np.median(longer_mm) / spacing:.1f} px'))


@dataclass
class AnchorPlan:
    """The planned levels and anchors (:func:`plan_anchors`)."""
    anchors: AnchorConfig
    coverage: dict
    grid: GridCoverage
    choices: List[Choice]


def _levels(lo: float, hi: float) -> Tuple[List[int], Tuple[float, float]]:
    """Kept strides and the scale bounds (module doc)."""
    strides = [s for k, s in enumerate(BASE_STRIDES)
               if k == 0 or MIN_SCALE * s <= hi * MARGIN]
    low = max(MIN_SCALE, lo / MARGIN / strides[0])
    while len(strides) > 1 and hi * MARGIN / strides[-1] <= low * 1.5:
        strides.pop()
    high = max(hi * MARGIN / strides[-1], low * 1.5)
    return strides, (round(low, 3), round(high, 3))


def plan_anchors(wh_px: np.ndarray, seed: int = 0) -> AnchorPlan:
    """Pyramid levels and anchors for training boxes of widths / heights
    ``wh_px`` (pixels at the planned spacing), module doc.

    Returns:
        AnchorPlan: the anchors, their coverage of the boxes
        (:func:`~.anchor_coverage.anchor_coverage`, centred, and
        :func:`~.anchor_grid.grid_positives`, on the grid) and the choices
        ``num_levels`` and ``anchor_generator``.
    """
    wh = np.asarray(wh_px, np.float64).reshape(-1, 2)
    side = np.sqrt(wh.prod(1))
    lo, hi = float(side.min()), float(side.max())
    strides, bounds = _levels(lo, hi)
    result = DEAnchorOptimizer(
        sizes=strides, strides=strides, ratio_bounds=[(1., 4.)],
        num_scales=NUM_SCALES, scale_bounds=bounds, seed=seed,
        log_interval=0, maxiter=300).optimize(wh)
    anchors = result.anchors
    cover = anchor_coverage(wh, {'plan': anchors}, IOU_THR)['plan']
    grid = grid_positives(wh, anchors, RPN_POS_IOU)
    shapes = anchors.shapes()
    size = np.sqrt(shapes.prod(1))
    dropped = BASE_STRIDES[len(strides):]
    levels = Choice('num_levels', len(strides), (
        f'FPN levels of strides {", ".join(map(str, strides))} kept'
        + (f' (strides {", ".join(map(str, dropped))} dropped: their '
           f'anchors of >= {MIN_SCALE:g} strides, >= '
           f'{MIN_SCALE * dropped[0]:g} px, exceed the largest lesion '
           f'{hi:.1f} px x {MARGIN:g})'
           if dropped else '')
        + f'; lesions {lo:.1f}-{hi:.1f} px (square root of box area)'))
    gen = anchors.to_generator_cfg()
    gen = dict(gen, ratios=[round(r, 4) for r in gen['ratios']],
               scales=[round(s, 4) for s in gen['scales']])
    generator = Choice('anchor_generator', gen, (
        f'differential evolution on {len(wh)} training boxes, scales within '
        f'{bounds[0]:g}-{bounds[1]:g} strides (anchors of at least '
        f'{MIN_SCALE:g} strides and the smallest lesion / {MARGIN:g}, up to '
        f'the largest x {MARGIN:g}): anchors '
        f'{size.min():.1f}-{size.max():.1f} px for lesions {lo:.1f}-'
        f'{hi:.1f} px, mean best IoU {cover["mean_iou"]:.3f}, '
        f'{cover["frac_iou_ge_thr"]:.0%} of the boxes with an anchor at IoU '
        f'>= {IOU_THR:g} (centred); on the stride grid (boxes anywhere in a '
        f'cell) {grid.frac_with_positive:.0%} of them with an anchor at the '
        f"RPN's positive IoU {RPN_POS_IOU:g}, median "
        f'{grid.median_positives:g} such anchors a box'))
    return AnchorPlan(anchors, cover, grid, [levels, generator])
