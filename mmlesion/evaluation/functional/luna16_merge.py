# Copyright (c) mmlesion contributors. All rights reserved.
"""Merge two models' LUNA16 candidates: the "Merged (Intersection)" and
"Merged (Union)" rows of Table III of the 3D Aggregated Faster R-CNN paper.

The paper averages "the overlapped proposals"; "non-overlapped proposals
... are retained (union) or discarded (intersection)". The candidates format
has centres only, so here two candidates of the same scan overlap when their
centres are closer than ``max_distance_mm``, matched one to one, nearest
pairs first (ties to the lower row numbers). A matched pair becomes one
candidate at the mean of the two centres and probabilities.
"""
from typing import NamedTuple

import numpy as np

from ...utils.tool_defaults import tool_defaults
from .luna16 import LUNA16Candidates, same_scan_pairs

MERGE_MODES = tuple(tool_defaults(__file__)['MERGE_MODES'])
#: The defaults ``merge_luna16_candidates.py --help`` shows
#: (``tool_defaults.json``).
_SHOWN = tool_defaults(__file__)['merge_candidates']


class MergedCandidates(NamedTuple):
    """Result of :func:`merge_candidates`.

    Attributes:
        candidates (LUNA16Candidates): the merged pairs in ``a``'s row
            order, then, for a union, ``a``'s and ``b``'s unmatched marks.
        num_pairs (int): matched (overlapped) pairs.
        unmatched_a (int): marks of ``a`` without a partner.
        unmatched_b (int): marks of ``b`` without a partner.
    """
    candidates: LUNA16Candidates
    num_pairs: int
    unmatched_a: int
    unmatched_b: int


def merge_candidates(a: LUNA16Candidates,
                     b: LUNA16Candidates,
                     mode: str = _SHOWN['mode'],
                     max_distance_mm: float = _SHOWN['max_distance_mm']
                     ) -> MergedCandidates:
    """Intersect or unite two candidate sets (see the module doc).

    Args:
        a (LUNA16Candidates): model A's marks.
        b (LUNA16Candidates): model B's marks.
        mode (str): ``'intersection'`` (matched pairs only) or ``'union'``
            (plus every unmatched mark of either set, unchanged).
        max_distance_mm (float): two marks overlap when their centres are
            closer than this (strictly). Defaults to 5 mm, the LUNA16 hit
            radius of a 10 mm nodule.

    Returns:
        MergedCandidates: the merged marks and the counts.
    """
    if mode not in MERGE_MODES:
        raise ValueError(f'mode must be one of {MERGE_MODES}, got {mode!r}')
    if not np.isfinite(max_distance_mm) or max_distance_mm <= 0:
        raise ValueError(f'max_distance_mm must be a positive number, got '
                         f'{max_distance_mm}')
    uids = {u: i for i, u in enumerate(
        dict.fromkeys(list(a.seriesuids) + list(b.seriesuids)))}
    a_scan = np.array([uids[u] for u in a.seriesuids], dtype=np.int64)
    b_scan = np.array([uids[u] for u in b.seriesuids], dtype=np.int64)
    ia, ib = same_scan_pairs(a_scan, b_scan)
    dist = np.linalg.norm(a.xyz[ia] - b.xyz[ib], axis=1)
    close = dist < max_distance_mm
    ia, ib, dist = ia[close], ib[close], dist[close]
    order = np.lexsort((ib, ia, dist))  # nearest first, then row order
    used_a = np.zeros(len(a.seriesuids), dtype=bool)
    used_b = np.zeros(len(b.seriesuids), dtype=bool)
    pairs = []
    for i, j in zip(ia[order], ib[order]):
        if not used_a[i] and not used_b[j]:
            used_a[i] = used_b[j] = True
            pairs.append((i, j))
    pairs.sort()
    pa = np.array([i for i, _ in pairs], dtype=np.int64)
    pb = np.array([j for _, j in pairs], dtype=np.int64)
    parts = [LUNA16Candidates(a.seriesuids[pa],
                              (a.xyz[pa] + b.xyz[pb]) / 2,
                              (a.probability[pa] + b.probability[pb]) / 2)]
    if mode == 'union':
        for c, used in ((a, used_a), (b, used_b)):
            rest = np.flatnonzero(~used)
            parts.append(LUNA16Candidates(c.seriesuids[rest], c.xyz[rest],
                                          c.probability[rest]))
    merged = LUNA16Candidates(
        np.concatenate([p.seriesuids for p in parts]).astype(object),
        np.concatenate([p.xyz.reshape(-1, 3) for p in parts]),
        np.concatenate([p.probability for p in parts]))
    return MergedCandidates(merged, len(pairs), int((~used_a).sum()),
                            int((~used_b).sum()))
