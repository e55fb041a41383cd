# Copyright (c) mmlesion contributors. All rights reserved.
"""Box overlaps with the legacy "+1 pixel" convention of DeepLesion FROC.

The DeepLesion 2D evaluation (docs/protocols.md §1; the 3DCE / MULAN code)
measures box sizes with the legacy pixel convention ``width = x2 - x1 + 1`` and
``height = y2 - y1 + 1``, with the same operations as its ``IOU`` function.
Everything is computed in float64 here (float32 network outputs are promoted
exactly), so the result does not depend on the dtype of the inputs.

The same functions take 3D boxes ``x1, y1, z1, x2, y2, z2`` with ``ndim=3``
(volumes ``(x2 - x1 + 1) * (y2 - y1 + 1) * (z2 - z1 + 1)``, the ``IOX``
function of the LENS evaluation code, docs/protocols.md §2).

Modes: ``'iou'``, or ``'iobb'`` (intersection over the area of the
*detected* box, the first argument; ElixirNet's "IoBB").

``mmdet.evaluation.functional.bbox_overlaps`` with
``use_legacy_coordinate=True`` has the same formula but computes in float32,
which changes results exactly at the threshold (a detection ``[0, 0, 9, 9]``
and a ground truth ``[0, 0, 19 + 1e-9, 9]``: IoU just below 0.5 in float64,
a false positive in the reference code, exactly 0.5 in float32), clamps
the denominator with an ``eps`` and loops over rows in Python.
"""
import numpy as np

OVERLAP_MODES = ('iou', 'iobb')


BOX_COLUMNS = {2: 'x1, y1, x2, y2', 3: 'x1, y1, z1, x2, y2, z2'}


def _as_boxes(boxes: np.ndarray, name: str, ndim: int = 2) -> np.ndarray:
    """Return ``boxes`` as a float64 ``(N, 2 * ndim)`` array, checking its
    shape."""
    if ndim not in BOX_COLUMNS:
        raise ValueError(f'ndim must be 2 or 3, got {ndim}')
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 2 * ndim)
    if arr.ndim != 2 or arr.shape[1] != 2 * ndim:
        raise ValueError(f'{name} must have shape (N, {2 * ndim}) in '
                         f'{BOX_COLUMNS[ndim]} order, got shape {arr.shape}')
    return arr


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


def legacy_box_sizes(bboxes: np.ndarray, ndim: int = 2) -> np.ndarray:
    """Areas ``(x2 - x1 + 1) * (y2 - y1 + 1)`` of ``(N, 4)`` boxes, or
    volumes ``(x2 - x1 + 1) * (y2 - y1 + 1) * (z2 - z1 + 1)`` of ``(N, 6)``
    boxes (``ndim=3``)."""
    b = _as_boxes(bboxes, 'bboxes', ndim)
    size = b[:, ndim] - b[:, 0] + 1.
    for d in range(1, ndim):
        size = size * (b[:, ndim + d] - b[:, d] + 1.)
    return size


def _pair_overlaps(cols1: np.ndarray, cols2: np.ndarray, area1: np.ndarray,
                   area2: np.ndarray, mode: str) -> np.ndarray:
    """Overlaps of aligned pairs given as ``(4, P)`` or ``(6, P)`` coordinate
    rows, operation by operation as the reference ``IOU`` / ``IOX``
    (intersection ``max(min(x2) - max(x1) + 1, 0) * ...``, over ``area1 +
    area2 - inters`` for IoU or ``area1`` for IoBB)."""
    ndim = cols1.shape[0] // 2
    inters = None
    for d in range(ndim):
        ext = np.minimum(cols1[ndim + d], cols2[ndim + d])
        ext -= np.maximum(cols1[d], cols2[d])
        ext += 1.
        np.maximum(ext, 0., out=ext)
        inters = ext if inters is None else inters * ext
    if mode == 'iobb':
        return np.divide(inters, area1)
    union = np.add(area1, area2)
    union -= inters
    return np.divide(inters, union, out=union)


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
