# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 matching: the 100-mark cap and the hit test of marks against
nodules and excluded findings (docs/protocols.md §3, package doc)."""
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .io import LUNA16Candidates, LUNA16Findings


#: Marks kept per scan by the official script.
MAX_MARKS_PER_SCAN = 100
#: Diameter (mm) used for any diameter < 0.
UNKNOWN_DIAMETER_MM = 10.0

#: Outcome codes of :attr:`LUNA16Match.outcome`.
MARK_TP = 1
MARK_IRRELEVANT = 0
MARK_FP = -1


def scan_indices(uids: np.ndarray,
                 seriesuids: Sequence[str],
                 source: str = 'candidates',
                 unknown: str = 'error') -> np.ndarray:
    """Index of each row's scan in ``seriesuids`` (``-1`` when not listed).

    Args:
        uids (np.ndarray): ``(N,)`` series UIDs of the rows.
        seriesuids (Sequence[str]): the evaluated scans.
        source (str): name of the rows' file, for the error message.
        unknown (str): ``'error'`` raises ``ValueError`` on the first UID not
            in ``seriesuids``; ``'ignore'`` gives ``-1``.

    Returns:
        np.ndarray: ``(N,)`` int64 indices.
    """
    if unknown not in ('error', 'ignore'):
        raise ValueError(f"unknown must be 'error' or 'ignore', got "
                         f'{unknown!r}')
    lookup = {uid: i for i, uid in enumerate(seriesuids)}
    out = np.fromiter((lookup.get(u, -1) for u in uids),
                      dtype=np.int64,
                      count=len(uids))
    if unknown == 'error' and (out < 0).any():
        row = int(np.flatnonzero(out < 0)[0])
        raise ValueError(
            f'{source}, data row {row + 1}: seriesuid {uids[row]} is not in '
            f'the seriesuids list ({len(seriesuids)} scans)')
    return out


def cap_marks(scan_inds: np.ndarray,
              probability: np.ndarray,
              max_marks: int = MAX_MARKS_PER_SCAN) -> np.ndarray:
    """Mask of the marks kept by the official per-scan cap.

    A scan with more than ``max_marks`` marks keeps those whose probability
    is strictly greater than its ``(max_marks + 1)``-th largest; ties at the
    cut are all dropped. ``max_marks <= 0`` keeps everything.

    Args:
        scan_inds (np.ndarray): ``(N,)`` scan index of each mark (``< 0``:
            not evaluated, never kept).
        probability (np.ndarray): ``(N,)`` probabilities.
        max_marks (int): the cap. Defaults to 100.

    Returns:
        np.ndarray: ``(N,)`` bool.
    """
    scan_inds = np.asarray(scan_inds, dtype=np.int64)
    probability = np.asarray(probability, dtype=np.float64)
    keep = scan_inds >= 0
    if max_marks <= 0 or not keep.any():
        return keep
    num_scans = int(scan_inds.max()) + 1
    counts = np.bincount(scan_inds[keep], minlength=num_scans)
    over = np.flatnonzero(counts > max_marks)
    if len(over) == 0:
        return keep
    # sort by scan, then by descending probability
    order = np.lexsort((-probability, scan_inds))
    starts = np.searchsorted(scan_inds[order], over)
    thr = np.full(num_scans, -np.inf)
    thr[over] = probability[order[starts + max_marks]]
    capped = keep & (counts[np.maximum(scan_inds, 0)] > max_marks)
    keep[capped] = probability[capped] > thr[scan_inds[capped]]
    return keep


def same_scan_pairs(a_scan: np.ndarray,
                    b_scan: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """All ``(i, j)`` with ``a_scan[i] == b_scan[j] >= 0``, vectorised.

    Args:
        a_scan (np.ndarray): ``(A,)`` scan index per element of ``a``.
        b_scan (np.ndarray): ``(B,)`` scan index per element of ``b``.

    Returns:
        tuple[np.ndarray, np.ndarray]: int64 index arrays into ``a`` and
        ``b`` (``a`` order, then ``b`` order by scan).
    """
    a_scan = np.asarray(a_scan, dtype=np.int64)
    b_scan = np.asarray(b_scan, dtype=np.int64)
    if len(a_scan) == 0 or len(b_scan) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    num = int(max(a_scan.max(), b_scan.max())) + 1
    b_valid = b_scan >= 0
    b_order = np.flatnonzero(b_valid)[np.argsort(
        b_scan[b_valid], kind='stable')]
    b_counts = np.bincount(b_scan[b_valid], minlength=num)
    b_starts = np.cumsum(b_counts) - b_counts
    per_a = np.where(a_scan >= 0, b_counts[np.maximum(a_scan, 0)], 0)
    ia = np.repeat(np.arange(len(a_scan)), per_a)
    offs = np.arange(len(ia)) - np.repeat(np.cumsum(per_a) - per_a, per_a)
    ib = b_order[b_starts[a_scan[ia]] + offs]
    return ia, ib


def _hits(cand_xyz: np.ndarray, ci: np.ndarray, find_xyz: np.ndarray,
          fi: np.ndarray, diameter_mm: np.ndarray) -> np.ndarray:
    """Strict hit test of the official script on (candidate, finding)
    pairs."""
    diam = np.where(diameter_mm < 0.0, UNKNOWN_DIAMETER_MM, diameter_mm)
    radius_sq = np.square(diam / 2.0)
    d = find_xyz[fi] - cand_xyz[ci]
    dist_sq = (d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]) + d[:, 2] * d[:, 2]
    return dist_sq < radius_sq[fi]


class LUNA16Match(NamedTuple):
    """Outcome of the official matching, per mark and per nodule.

    Attributes:
        num_scans (int): number of evaluated scans (the FP denominator).
        kept (np.ndarray): ``(C,)`` bool, marks kept by the cap (over the
            input candidates; marks of unlisted scans are not kept).
        cand_scan (np.ndarray): ``(C,)`` scan index per input mark (-1:
            unlisted).
        probability (np.ndarray): ``(C,)`` mark probabilities.
        outcome (np.ndarray): ``(C,)`` int8 :data:`MARK_TP` (hits an included
            nodule), :data:`MARK_IRRELEVANT` (hits only excluded findings),
            :data:`MARK_FP`; meaningful where ``kept``.
        nodule_scan (np.ndarray): ``(G,)`` scan index per included nodule.
        nodule_prob (np.ndarray): ``(G,)`` largest probability of the marks
            hitting it; ``-inf`` when missed.
        nodule_hits (np.ndarray): ``(G,)`` number of kept marks hitting it.
    """
    num_scans: int
    kept: np.ndarray
    cand_scan: np.ndarray
    probability: np.ndarray
    outcome: np.ndarray
    nodule_scan: np.ndarray
    nodule_prob: np.ndarray
    nodule_hits: np.ndarray

    @property
    def detected(self) -> np.ndarray:
        """``(G,)`` bool, nodules hit by at least one kept mark."""
        return self.nodule_hits > 0

    @property
    def is_fp(self) -> np.ndarray:
        """``(C,)`` bool, kept marks that are FP entries."""
        return self.kept & (self.outcome == MARK_FP)

    def entries(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ROC entries: one per detected nodule, one per FP mark.

        Returns:
            tuple: ``labels`` (float64 1/0), ``probs`` and ``scans`` arrays.
        """
        det = self.detected
        fp = self.is_fp
        labels = np.concatenate([np.ones(int(det.sum())),
                                 np.zeros(int(fp.sum()))])
        probs = np.concatenate([self.nodule_prob[det], self.probability[fp]])
        scans = np.concatenate([self.nodule_scan[det], self.cand_scan[fp]])
        return labels, probs, scans

    def per_scan_counts(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(nodules, detected, fps)`` per scan, int64 ``(num_scans,)``."""
        n = self.num_scans
        nod = np.bincount(self.nodule_scan, minlength=n)
        det = np.bincount(self.nodule_scan[self.detected], minlength=n)
        fps = np.bincount(self.cand_scan[self.is_fp], minlength=n)
        return nod, det, fps


class MatchSettings(NamedTuple):
    """How :func:`match_luna16` caps and checks the marks.

    Attributes:
        max_marks (int): per-scan cap. Defaults to 100.
        unknown (str): candidates of unlisted scans: ``'error'`` (default)
            or ``'ignore'`` (the official script's behaviour).
        source (str): name of the candidates (e.g. their file) for error
            messages.
    """
    max_marks: int = MAX_MARKS_PER_SCAN
    unknown: str = 'error'
    source: str = 'candidates'


def match_luna16(candidates: LUNA16Candidates,
                 annotations: LUNA16Findings,
                 excluded: Optional[LUNA16Findings],
                 seriesuids: Sequence[str],
                 settings: MatchSettings = MatchSettings()) -> LUNA16Match:
    """Cap the marks and match them to nodules and excluded findings.

    Args:
        candidates (LUNA16Candidates): the CAD marks.
        annotations (LUNA16Findings): the included nodules.
        excluded (LUNA16Findings, optional): findings whose marks are
            ignored (``annotations_excluded.csv``).
        seriesuids (Sequence[str]): the evaluated scans.
        settings (MatchSettings): the cap, unlisted scans, the source name.

    Returns:
        LUNA16Match: per-mark outcomes and per-nodule results.
    """
    seriesuids = list(seriesuids)
    cand_scan = scan_indices(candidates.seriesuids, seriesuids,
                             settings.source, settings.unknown)
    prob = np.asarray(candidates.probability, dtype=np.float64)
    cxyz = np.asarray(candidates.xyz, dtype=np.float64).reshape(-1, 3)
    kept = cap_marks(cand_scan, prob, settings.max_marks)
    kept_scan = np.where(kept, cand_scan, -1)

    nod_scan = scan_indices(annotations.seriesuids, seriesuids,
                            'annotations', 'ignore')
    nod_keep = nod_scan >= 0
    nod_scan = nod_scan[nod_keep]
    nod_xyz = np.asarray(annotations.xyz, np.float64)[nod_keep]
    nod_diam = np.asarray(annotations.diameter_mm, np.float64)[nod_keep]

    outcome = np.full(len(prob), MARK_FP, dtype=np.int8)
    nodule_prob = np.full(len(nod_scan), -np.inf)
    nodule_hits = np.zeros(len(nod_scan), dtype=np.int64)

    if excluded is not None and len(excluded.seriesuids):
        exc_scan = scan_indices(excluded.seriesuids, seriesuids, 'excluded',
                                'ignore')
        ci, fi = same_scan_pairs(kept_scan, exc_scan)
        hit = _hits(cxyz, ci, np.asarray(excluded.xyz, np.float64), fi,
                    np.asarray(excluded.diameter_mm, np.float64))
        outcome[ci[hit]] = MARK_IRRELEVANT

    ci, fi = same_scan_pairs(kept_scan, nod_scan)
    hit = _hits(cxyz, ci, nod_xyz, fi, nod_diam)
    ci, fi = ci[hit], fi[hit]
    outcome[ci] = MARK_TP
    np.maximum.at(nodule_prob, fi, prob[ci])
    np.add.at(nodule_hits, fi, 1)
    return LUNA16Match(
        num_scans=len(seriesuids),
        kept=kept,
        cand_scan=cand_scan,
        probability=prob,
        outcome=outcome,
        nodule_scan=nod_scan,
        nodule_prob=nodule_prob,
        nodule_hits=nodule_hits)
