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
*detected* box, the first argument; ElixirNet's "IoBB"). The FROC walks
(:mod:`.froc`) take the pieces here; the tests' all-pairs and aligned
overlaps (``tests/helpers/legacy_overlaps.py``) hold them to the reference
code and to mmdet.

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
