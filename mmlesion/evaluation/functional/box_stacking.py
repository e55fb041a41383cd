# Copyright (c) mmlesion contributors. All rights reserved.
"""Stacking per-slice 2D boxes into 3D findings (PROTOCOLS.md §2).

LENS (Sec. IV-B, its 3D evaluation) and the 2.5D detectors run on a volume
produce 2D boxes slice by slice; a 3D finding is a chain of boxes on
consecutive slices whose IoU with the previous box of the chain exceeds a
threshold (0.5 in the paper). Its x, y extent is the score-weighted mean of
its 2D boxes, its z extent the slices it spans.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps


def _greedy_match(iou: np.ndarray, iou_thr: float) -> List[tuple]:
    """Pairs (row, col) of a one-to-one greedy matching by IoU > thr.

    The highest IoU is matched first, then its row and column leave the
    competition; ties go to the lower row, then the lower column.
    """
    iou = np.where(iou > iou_thr, iou, -1.)
    pairs = []
    for _ in range(min(iou.shape)):
        flat = int(np.argmax(iou))
        row, col = divmod(flat, iou.shape[1])
        if iou[row, col] < 0:
            break
        pairs.append((row, col))
        iou[row, :] = -1.
        iou[:, col] = -1.
    return pairs


def stack_slice_boxes(slice_indices: Sequence[int],
                      boxes: Sequence[np.ndarray],
                      scores: Sequence[np.ndarray],
                      iou_thr: float = 0.5,
                      max_gap: int = 0,
                      score_thr: float = 0.,
                      min_slices: int = 1,
                      score_mode: str = 'max',
                      slice_half_extent: float = 0.5) -> List[Dict]:
    """Link 2D boxes on consecutive slices into 3D findings.

    Slices are processed in increasing ``z``. A chain (track) is extended
    on slice ``z`` by the box whose IoU with the chain's **last** box is
    the highest above ``iou_thr`` (strictly greater, PROTOCOLS §2), one box
    per chain and one chain per box (greedy, highest IoU first, computed
    with mmdet's :func:`bbox_overlaps` for all chain/box pairs of a slice
    at once). A chain whose last box is more than ``max_gap + 1`` slices
    behind is closed; a box that extends no chain starts a new one. So two
    lesions on the same slices stay two chains, a lesion missed on one
    slice splits into two chains unless ``max_gap >= 1``, and a box that
    drifts (IoU <= thr with its predecessor) starts a new chain.

    The finding's box: x1, y1, x2, y2 are the score-weighted means of its
    2D boxes (the plain mean when all scores are 0); ``z1 = z_first -
    slice_half_extent``, ``z2 = z_last + slice_half_extent`` (with the
    default 0.5, slice ``k`` covers ``[k - 0.5, k + 0.5]``: continuous voxel
    coordinates as SimpleITK's, voxel centres at integers). Its score is
    the largest 2D score (``score_mode='max'``, the default: a finding is
    as certain as its most certain slice; PROTOCOLS §2 does not say) or
    their mean (``'mean'``).

    Args:
        slice_indices (Sequence[int]): the slice index ``z`` of each entry
            of ``boxes`` (any order; several entries may share a slice).
        boxes (Sequence[np.ndarray]): per entry an (n, 4) array
            ``[x1, y1, x2, y2]``.
        scores (Sequence[np.ndarray]): per entry an (n,) array.
        iou_thr (float): link when IoU > iou_thr. Defaults to 0.5.
        max_gap (int): slices without a matching box that a chain may
            bridge. Defaults to 0 (consecutive slices only).
        score_thr (float): 2D boxes with a lower score are dropped first.
        min_slices (int): drop findings spanning fewer slices (counting
            from the first to the last, gaps included). Defaults to 1.
        score_mode (str): ``'max'`` or ``'mean'``.
        slice_half_extent (float): half the z extent of one slice.

    Returns:
        list[dict]: findings sorted by decreasing score, each with
        ``bbox_3d`` ([x1, y1, z1, x2, y2, z2], floats), ``score``,
        ``slice_range`` ((z_first, z_last), ints), ``key_slice`` (the slice
        of its highest-scoring 2D box) and ``boxes_2d`` (list of
        ``(z, [x1, y1, x2, y2], score)`` in increasing z).

    Raises:
        ValueError: inputs of different lengths or bad shapes (naming the
            entry), or a bad option.
    """
    if not len(slice_indices) == len(boxes) == len(scores):
        raise ValueError(
            f'stack_slice_boxes: {len(slice_indices)} slice indices, '
            f'{len(boxes)} box arrays and {len(scores)} score arrays; they '
            'must be of the same length')
    if score_mode not in ('max', 'mean'):
        raise ValueError(f"score_mode must be 'max' or 'mean', got "
                         f'{score_mode!r}')
    if max_gap < 0 or min_slices < 1:
        raise ValueError(f'max_gap must be >= 0 and min_slices >= 1, got '
                         f'{max_gap} and {min_slices}')
    per_slice: Dict[int, tuple] = {}
    for i, (z, b, s) in enumerate(zip(slice_indices, boxes, scores)):
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4) if np.size(
            b) else np.zeros((0, 4))
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        if len(b) != len(s):
            raise ValueError(f'stack_slice_boxes: entry {i} (slice {z}) has '
                             f'{len(b)} boxes but {len(s)} scores')
        if not np.isfinite(b).all() or not np.isfinite(s).all():
            raise ValueError(f'stack_slice_boxes: entry {i} (slice {z}) '
                             'has non-finite boxes or scores')
        keep = s >= score_thr
        z = int(z)
        if z in per_slice:
            b = np.concatenate([per_slice[z][0], b[keep]])
            s = np.concatenate([per_slice[z][1], s[keep]])
            per_slice[z] = (b, s)
        else:
            per_slice[z] = (b[keep], s[keep])

    finished: List[List[tuple]] = []
    active: List[List[tuple]] = []  # each: list of (z, box, score)
    for z in sorted(per_slice):
        b, s = per_slice[z]
        # close the chains that can no longer be extended
        still = []
        for track in active:
            (finished if z - track[-1][0] > max_gap + 1 else still).append(
                track)
        active = still
        used = np.zeros(len(b), dtype=bool)
        if active and len(b):
            last = torch.from_numpy(np.stack([t[-1][1] for t in active]))
            iou = bbox_overlaps(last, torch.from_numpy(b)).numpy()
            for row, col in _greedy_match(iou, iou_thr):
                active[row].append((z, b[col], float(s[col])))
                used[col] = True
        for col in np.flatnonzero(~used):
            active.append([(z, b[col], float(s[col]))])
    finished.extend(active)

    findings = []
    for track in finished:
        z_first, z_last = track[0][0], track[-1][0]
        if z_last - z_first + 1 < min_slices:
            continue
        tb = np.stack([t[1] for t in track])
        ts = np.array([t[2] for t in track])
        weights = ts if ts.sum() > 0 else np.ones_like(ts)
        xy = (tb * weights[:, None]).sum(0) / weights.sum()
        score = float(ts.max() if score_mode == 'max' else ts.mean())
        findings.append(
            dict(
                bbox_3d=[
                    float(xy[0]), float(xy[1]),
                    z_first - slice_half_extent,
                    float(xy[2]), float(xy[3]),
                    z_last + slice_half_extent
                ],
                score=score,
                slice_range=(int(z_first), int(z_last)),
                key_slice=int(track[int(np.argmax(ts))][0]),
                boxes_2d=[(int(t[0]), [float(v) for v in t[1]], t[2])
                          for t in track]))
    findings.sort(key=lambda f: -f['score'])
    return findings


def findings_to_arrays(findings: Sequence[Dict],
                       num: Optional[int] = None) -> tuple:
    """``bbox_3d`` and ``score`` of findings as arrays.

    Args:
        findings (Sequence[dict]): from :func:`stack_slice_boxes`.
        num (int, optional): keep the first ``num``.

    Returns:
        tuple: (N, 6) float32 boxes and (N,) float32 scores.
    """
    findings = list(findings)[:num]
    boxes = np.array([f['bbox_3d'] for f in findings],
                     dtype=np.float32).reshape(-1, 6)
    scores = np.array([f['score'] for f in findings], dtype=np.float32)
    return boxes, scores
