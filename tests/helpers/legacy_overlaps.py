# Copyright (c) mmlesion contributors. All rights reserved.
"""All-pairs and aligned overlaps with the legacy "+1 pixel" convention,
built on :mod:`mmlesion.evaluation.functional.overlaps` (the box sizes and
the pair arithmetic the FROC walks use), to hold that arithmetic to the
3DCE / MULAN reference code and to mmdet's ``bbox_overlaps``."""
import numpy as np

from mmlesion.evaluation.functional.overlaps import (OVERLAP_MODES,
                                                     _as_boxes,
                                                     _pair_overlaps,
                                                     legacy_box_sizes)


def _check_mode(mode: str) -> None:
    if mode not in OVERLAP_MODES:
        raise ValueError(
            f'overlap mode must be one of {OVERLAP_MODES}, got {mode!r}')


def aligned_legacy_overlaps(bboxes1: np.ndarray,
                            bboxes2: np.ndarray,
                            mode: str = 'iou',
                            ndim: int = 2) -> np.ndarray:
    """``overlap(bboxes1[i], bboxes2[i])`` for every ``i`` in one vectorised
    pass, in float64, with the arithmetic of the reference ``IOU`` /
    ``IOBB`` functions of the 3DCE / MULAN code (legacy +1 pixel sizes).

    Args:
        bboxes1 (np.ndarray): ``(P, 4)`` boxes ``x1, y1, x2, y2``; in
            ``'iobb'`` mode these are the detections (the denominator).
        bboxes2 (np.ndarray): ``(P, 4)`` boxes (the ground truths).
        mode (str): ``'iou'`` (intersection over union) or ``'iobb'``
            (intersection over the area of ``bboxes1``). Defaults to
            ``'iou'``.
        ndim (int): 2 for ``(P, 4)`` boxes, 3 for ``(P, 6)`` boxes
            ``x1, y1, z1, x2, y2, z2``. Defaults to 2.

    Returns:
        np.ndarray: ``(P,)`` float64 overlaps.
    """
    _check_mode(mode)
    b1 = _as_boxes(bboxes1, 'bboxes1', ndim)
    b2 = _as_boxes(bboxes2, 'bboxes2', ndim)
    if b1.shape != b2.shape:
        raise ValueError('aligned overlaps need the same number of boxes, got '
                         f'{b1.shape[0]} and {b2.shape[0]}')
    return _pair_overlaps(b1.T, b2.T, legacy_box_sizes(b1, ndim),
                          legacy_box_sizes(b2, ndim), mode)


def legacy_bbox_overlaps(bboxes1: np.ndarray,
                         bboxes2: np.ndarray,
                         mode: str = 'iou',
                         ndim: int = 2) -> np.ndarray:
    """All-pairs overlaps with the legacy +1 pixel convention.

    Args:
        bboxes1 (np.ndarray): ``(N, 4)`` boxes ``x1, y1, x2, y2`` (the
            detections in ``'iobb'`` mode).
        bboxes2 (np.ndarray): ``(M, 4)`` boxes (the ground truths).
        mode (str): ``'iou'`` or ``'iobb'`` (intersection over the area of
            each box of ``bboxes1``). Defaults to ``'iou'``.
        ndim (int): 2, or 3 for ``x1, y1, z1, x2, y2, z2`` boxes.

    Returns:
        np.ndarray: ``(N, M)`` float64 overlaps; ``(N, 0)`` / ``(0, M)`` when
        either side is empty.
    """
    _check_mode(mode)
    b1 = _as_boxes(bboxes1, 'bboxes1', ndim)
    b2 = _as_boxes(bboxes2, 'bboxes2', ndim)
    n, m = b1.shape[0], b2.shape[0]
    if n * m == 0:
        return np.zeros((n, m), dtype=np.float64)
    rows = np.repeat(b1, m, axis=0)
    cols = np.tile(b2, (n, 1))
    return aligned_legacy_overlaps(rows, cols, mode, ndim).reshape(n, m)
