# Copyright (c) mmlesion contributors. All rights reserved.
"""Anchor shapes and best-anchor IoU for the anchor search.

Centred width/height IoU of boxes against anchor shapes, the objectives
of :mod:`mmlesion.anchors.de_anchor_optimizer` and a chunked batched form
for many candidates at once (conventions: see that module)."""
from typing import List, Sequence, Tuple, Union

import numpy as np


#: Objectives understood by :func:`objective_from_iou`.
OBJECTIVES: Tuple[str, ...] = ('iou', 'ce', 'focal')

_EPS = 1e-12
# elements of one (candidates, scales, 2, 2, boxes) array per chunk
_CHUNK_ELEMENTS = 1 << 17

ArrayLike = Union[np.ndarray, Sequence]


def ratios_from_pairs(ratio_values: Sequence[float]) -> List[float]:
    """Expand the free ratio values into the full, ascending ratio list.

    Args:
        ratio_values (Sequence[float]): values ``r_k >= 1`` (e.g. the two
            searched ratios); each gives the pair ``r_k`` and ``1 / r_k``.

    Returns:
        list[float]: ``[1 / r_max, ..., 1.0, ..., r_max]``, i.e.
        ``2 * len(ratio_values) + 1`` ratios (height / width).
    """
    values = sorted(float(r) for r in ratio_values)
    return [1.0 / r for r in reversed(values)] + [1.0] + values


def anchor_shapes(sizes: Sequence[float], ratios: Sequence[float],
                  scales: Sequence[float]) -> np.ndarray:
    """Widths and heights of all base anchors of all pyramid sizes.

    Same formula and order as
    ``AnchorGenerator.gen_single_level_base_anchors`` (``scale_major=True``).

    Args:
        sizes (Sequence[float]): anchor size per level (mmdet
            ``base_sizes``).
        ratios (Sequence[float]): height / width ratios.
        scales (Sequence[float]): multipliers of the size.

    Returns:
        np.ndarray: ``(len(sizes) * len(ratios) * len(scales), 2)`` float64
        array of ``(w, h)``.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    h_ratios = np.sqrt(np.asarray(ratios, dtype=np.float64))
    scales = np.asarray(scales, dtype=np.float64)
    ws = sizes[:, None, None] * (1 / h_ratios)[None, :, None] * \
        scales[None, None, :]
    hs = sizes[:, None, None] * h_ratios[None, :, None] * \
        scales[None, None, :]
    return np.stack([ws.reshape(-1), hs.reshape(-1)], axis=-1)


def centered_iou(box_wh: ArrayLike, anchor_wh: ArrayLike) -> np.ndarray:
    """IoU of boxes and anchors sharing the same centre, all pairs at once.

    Args:
        box_wh (ArrayLike): ``(N, 2)`` widths and heights of the boxes.
        anchor_wh (ArrayLike): ``(A, 2)`` or batched ``(S, A, 2)`` widths and
            heights of the anchors.

    Returns:
        np.ndarray: ``(N, A)`` or ``(S, N, A)`` IoU.
    """
    box_wh = np.asarray(box_wh, dtype=np.float64)
    anchor_wh = np.asarray(anchor_wh, dtype=np.float64)
    bw = box_wh[:, 0, None]  # (N, 1)
    bh = box_wh[:, 1, None]
    aw = anchor_wh[..., None, :, 0]  # (..., 1, A)
    ah = anchor_wh[..., None, :, 1]
    inter = np.minimum(bw, aw) * np.minimum(bh, ah)
    union = bw * bh + aw * ah - inter
    return inter / np.maximum(union, _EPS)


def best_anchor_iou(box_wh: ArrayLike, anchor_wh: ArrayLike) -> np.ndarray:
    """IoU of every box with its best anchor (over all levels and shapes).

    Args:
        box_wh (ArrayLike): ``(N, 2)`` widths and heights of the boxes.
        anchor_wh (ArrayLike): ``(A, 2)`` or ``(S, A, 2)`` anchor shapes.

    Returns:
        np.ndarray: ``(N,)`` or ``(S, N)``.
    """
    return centered_iou(box_wh, anchor_wh).max(axis=-1)


def objective_from_iou(best_iou: np.ndarray,
                       objective: str = 'focal') -> np.ndarray:
    """Reduce best-anchor IoUs to the objective to minimise.

    Args:
        best_iou (np.ndarray): ``(..., N)`` best-anchor IoU per box.
        objective (str): ``'iou'`` (``1 - mean``), ``'ce'``
            (``mean(-log u)``) or ``'focal'`` (``mean(-(1-u)^2 log u)``);
            see the module docstring.

    Returns:
        np.ndarray: the objective, reduced over the last axis.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f'Unknown objective {objective!r}; expected one of '
                         f'{OBJECTIVES}')
    u = np.clip(best_iou, _EPS, 1.0)
    if objective == 'iou':
        return 1.0 - u.mean(axis=-1)
    if objective == 'ce':
        return (-np.log(u)).mean(axis=-1)
    return (-(1.0 - u)**2 * np.log(u)).mean(axis=-1)


def boxes_to_wh(bboxes: ArrayLike, min_size: float = 1e-3) -> np.ndarray:
    """Convert ``(N, 4)`` ``x1, y1, x2, y2`` boxes to ``(N, 2)`` sizes.

    Args:
        bboxes (ArrayLike): boxes, ``w = x2 - x1`` (mmdet convention).
        min_size (float): boxes narrower or lower than this raise.

    Returns:
        np.ndarray: ``(N, 2)`` float64 ``(w, h)``.
    """
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    wh = bboxes[:, 2:] - bboxes[:, :2]
    bad = np.flatnonzero(~np.all(np.isfinite(wh) & (wh >= min_size), axis=1))
    if bad.size:
        raise ValueError(
            f'{bad.size} box(es) with a non-finite or < {min_size} px side, '
            f'e.g. index {bad[0]}: {bboxes[bad[0]].tolist()}')
    return wh


def best_anchor_iou_batched(box_wh: ArrayLike, sizes: ArrayLike,
                            ratios: ArrayLike,
                            scales: ArrayLike) -> np.ndarray:
    """Best-anchor IoU of every box for many anchor sets at once (exact).

    Equals ``best_anchor_iou(box_wh, anchor_shapes(sizes, ratios[s],
    scales[s]))`` for every candidate ``s``, but evaluates only 4 anchors
    per box and scale: the centred IoU of an anchor shape scaled by ``t`` is
    unimodal in ``t`` with its peak at equal areas, so the best pyramid size
    is one of the two around ``sqrt(box area) / scale``; at a fixed area it
    is unimodal in the ratio with its peak at the box's ``h / w``, so the
    best ratio is one of the two around it.

    Args:
        box_wh (ArrayLike): ``(N, 2)`` box widths and heights.
        sizes (ArrayLike): ``(L,)`` anchor sizes of the pyramid.
        ratios (ArrayLike): ``(S, R)`` height / width ratios per candidate.
        scales (ArrayLike): ``(S, K)`` scales per candidate.

    Returns:
        np.ndarray: ``(S, N)`` float64.
    """
    box_wh = np.asarray(box_wh, dtype=np.float64).reshape(-1, 2)
    sizes = np.sort(np.asarray(sizes, dtype=np.float64).reshape(-1))
    log_r = np.sort(np.log(np.atleast_2d(np.asarray(ratios, np.float64))), 1)
    scales = np.atleast_2d(np.asarray(scales, dtype=np.float64))
    num_cand, num_scales = scales.shape
    if log_r.shape[0] != num_cand:
        raise ValueError(f'{log_r.shape[0]} ratio rows but {num_cand} scale '
                         'rows')
    n = box_wh.shape[0]
    w, h = box_wh[:, 0], box_wh[:, 1]
    area = w * h
    log_g = 0.5 * np.log(area)
    log_rho = np.log(h / w)
    num_levels, num_ratios = sizes.size, log_r.shape[1]
    # the two pyramid sizes around the equal-area size, (S, K, 2, N)
    idx = np.searchsorted(
        np.log(sizes), log_g[None, None, :] - np.log(scales)[:, :, None])
    side = np.empty((num_cand, num_scales, 2, n))
    side[:, :, 0] = sizes[np.maximum(idx - 1, 0)]
    side[:, :, 1] = sizes[np.minimum(idx, num_levels - 1)]
    side *= scales[:, :, None, None]
    # the two ratios around the box ratio, as sqrt(ratio), (S, 2, N)
    h_ratio = np.exp(0.5 * log_r)
    pos = (log_r[:, :, None] < log_rho[None, None, :]).sum(axis=1)  # (S, N)
    sel = np.stack([
        np.take_along_axis(h_ratio, np.maximum(pos - 1, 0), axis=1),
        np.take_along_axis(h_ratio, np.minimum(pos, num_ratios - 1), axis=1)
    ],
                   axis=1)
    aw = side[:, :, :, None, :] / sel[:, None, None, :, :]  # (S, K, 2, 2, N)
    ah = side[:, :, :, None, :] * sel[:, None, None, :, :]
    np.minimum(aw, w, out=aw)
    np.minimum(ah, h, out=ah)
    inter = np.multiply(aw, ah, out=aw)
    side *= side
    side += area
    union = side[:, :, :, None, :] - inter
    np.maximum(union, _EPS, out=union)
    inter /= union
    return inter.reshape(num_cand, -1, n).max(axis=1)
