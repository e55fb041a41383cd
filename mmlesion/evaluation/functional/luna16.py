# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 FROC, CPM, bootstrap band and TNP (PROTOCOLS.md §3).

Plain, vectorised functions over the official CSV formats that give the
numbers of the official ``noduleCADEvaluationLUNA16.py`` (Setio et al., "the
LUNA16 challenge", Medical Image Analysis 42, 2017; used by the 3D Aggregated
Faster R-CNN paper, §IV-A). Its semantics, including the corners that change
numbers:

1. **Scans** are the rows of ``seriesuids.csv``; nodules and excluded
   findings of other scans are ignored. Candidates of scans that are not
   listed are an error by default (the official script ignores them
   silently; ``unknown='ignore'`` does the same).
2. **At most 100 marks per scan.** A scan with more than ``max_marks``
   candidates keeps those whose probability is *strictly greater* than the
   ``(max_marks + 1)``-th largest, so marks tied at the cut are all dropped
   (a scan may keep fewer than 100).
3. **Hit test** (strict): squared distance ``((dx² + dy²) + dz²) < r²``
   with ``r = diameter / 2``; any diameter ``< 0`` (``-1`` = unknown in
   ``annotations_excluded.csv``) is 10 mm, for nodules and excluded findings.
4. A mark hitting an included nodule is never an FP. Every included nodule
   hit by at least one mark is one TP entry whose probability is the largest
   of those marks; the other marks hitting it are dropped. **One mark hitting
   two nodules is a TP for both** (two entries with its probability).
5. A mark hitting only excluded findings is dropped (irrelevant). Every other
   kept mark is an FP entry.
6. A missed nodule counts in the number of lesions, not in the ROC.
7. The curve is ``sklearn.metrics.roc_curve`` over the TP and FP entries
   (default ``drop_intermediate=True``); FPs per scan = ``fpr x FP entries /
   scans`` (all zero when there is no FP) and sensitivity = ``tpr x detected
   / nodules``. CPM = mean of ``np.interp`` of that curve at 1/8, 1/4, 1/2,
   1, 2, 4 and 8 FPs per scan.
8. **Bootstrap**: scans are resampled with replacement ``num_resamples``
   times (the FP denominator stays the number of scans); each curve is
   interpolated (``np.interp``) on ``np.linspace(0.125, 8, 10000)`` and
   stored as float32; at each point the values are sorted and the band is
   ``sorted[floor(pz n)]`` .. ``sorted[floor((1 - pz) n)]`` with ``pz = (1 -
   confidence) / 2``, the mean ``np.average`` of the sorted values.
   Resample ``i`` draws its scan indices from
   ``np.random.RandomState(seed).randint(num_scans, size=(n, num_scans))[i]``,
   the stream the official script consumes after ``np.random.seed(seed)``.

Decisions where the official script crashes or returns NaN (documented):
no TP entry at all gives sensitivity 0 (the official ``tpr`` is NaN); no
nodule at all gives NaN sensitivities; no entry at all gives the single
point (0, 0). The bootstrap computes each resample's curve as weighted
cumulative counts over one global score order (no ``roc_curve`` call per
resample): the points are those of ``roc_curve`` with
``drop_intermediate=False``; dropped collinear points do not change the
linear interpolation except for rounding (~1e-16, then float32).

**TNP** (true negative patients, 3D Aggregated Faster R-CNN §IV-G): the
probability threshold is the highest at which the sensitivity reaches
``tnp_sensitivity`` (0.95), read on the undropped curve; a scan without any
included nodule is a true negative when none of its FP marks has a
probability ``>=`` that threshold (marks on excluded findings do not count,
as in the FROC). TNP = true negatives / scans without nodules; ``None`` when
the sensitivity is never reached.
"""
import csv
import math
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from mmlesion.utils.csv_checks import MAX_WORLD_MM, check_csv_complete

#: FPs per scan of the LUNA16 FROC score (CPM).
LUNA16_FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
#: Marks kept per scan by the official script.
MAX_MARKS_PER_SCAN = 100
#: Diameter (mm) used for any diameter < 0.
UNKNOWN_DIAMETER_MM = 10.0
#: Range and size of the bootstrap interpolation grid.
BOOTSTRAP_FP_RANGE = (0.125, 8.0)
BOOTSTRAP_NUM_POINTS = 10000

#: Outcome codes of :attr:`LUNA16Match.outcome`.
MARK_TP = 1
MARK_IRRELEVANT = 0
MARK_FP = -1

_FINDING_COLUMNS = ('seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm')
_CANDIDATE_COLUMNS = ('seriesuid', 'coordX', 'coordY', 'coordZ',
                      'probability')


def _json_float(value: float) -> Optional[float]:
    """float for JSON; NaN (undefined) becomes None."""
    value = float(value)
    return None if math.isnan(value) else value


def rate_key(rate: float) -> str:
    """JSON key of an FP rate: ``0.125 -> '0.125'``, ``1.0 -> '1'``."""
    return f'{float(rate):g}'


class LUNA16Findings(NamedTuple):
    """Rows of ``annotations.csv`` or ``annotations_excluded.csv``.

    Attributes:
        seriesuids (np.ndarray): ``(N,)`` object array of series UIDs.
        xyz (np.ndarray): ``(N, 3)`` float64 world centres (mm).
        diameter_mm (np.ndarray): ``(N,)`` float64 diameters as written
            (``-1`` = unknown).
    """
    seriesuids: np.ndarray
    xyz: np.ndarray
    diameter_mm: np.ndarray


class LUNA16Candidates(NamedTuple):
    """Rows of a candidates (CAD marks) CSV.

    Attributes:
        seriesuids (np.ndarray): ``(N,)`` object array of series UIDs.
        xyz (np.ndarray): ``(N, 3)`` float64 world positions (mm).
        probability (np.ndarray): ``(N,)`` float64 probabilities.
    """
    seriesuids: np.ndarray
    xyz: np.ndarray
    probability: np.ndarray


def _read_table(path: str, columns: Sequence[str], what: str
                ) -> Tuple[np.ndarray, np.ndarray]:
    """Read a LUNA16 CSV with a header; return uids and the float columns.

    Raises ``ValueError`` naming the file, the line and the field of the
    first bad value (missing column, empty UID, non-numeric or non-finite
    number, wrong number of fields).
    """
    try:
        handle = open(path, newline='')
    except OSError as err:
        raise FileNotFoundError(f'cannot open the {what} CSV {path}: {err}')
    with handle:
        check_csv_complete(path)
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ValueError(f'{path}: empty file, expected a header '
                             f'{",".join(columns)}')
        header = [h.strip() for h in header]
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(
                f'{path} line 1: the header {header} lacks the column(s) '
                f'{missing} of the {what} format ({",".join(columns)})')
        idx = [header.index(c) for c in columns]
        uids: List[str] = []
        values: List[List[float]] = []
        for row in reader:
            line = reader.line_num
            if not row or all(not f.strip() for f in row):
                continue
            if len(row) != len(header):
                raise ValueError(
                    f'{path} line {line}: {len(row)} fields, the header has '
                    f'{len(header)}')
            uid = row[idx[0]].strip()
            if not uid:
                raise ValueError(f'{path} line {line}: field '
                                 f"'{columns[0]}' is empty")
            vals = []
            for name, j in zip(columns[1:], idx[1:]):
                try:
                    val = float(row[j])
                except ValueError:
                    raise ValueError(
                        f"{path} line {line}: field '{name}' is not a "
                        f'number: {row[j]!r}') from None
                if not math.isfinite(val) or (name.startswith('coord') and
                                              abs(val) > MAX_WORLD_MM):
                    raise ValueError(f"{path} line {line}: field '{name}' "
                                     f'is not finite or absurd (over '
                                     f'{MAX_WORLD_MM:g} mm): {row[j]!r}')
                vals.append(val)
            uids.append(uid)
            values.append(vals)
    arr = np.asarray(values, dtype=np.float64).reshape(-1, len(columns) - 1)
    return np.asarray(uids, dtype=object), arr


def read_findings_csv(path: str) -> LUNA16Findings:
    """Read ``annotations.csv`` or ``annotations_excluded.csv``.

    Args:
        path (str): CSV with the header ``seriesuid,coordX,coordY,coordZ,
            diameter_mm`` (extra columns are ignored).

    Returns:
        LUNA16Findings: the rows in file order.
    """
    uids, vals = _read_table(path, _FINDING_COLUMNS, 'annotations')
    return LUNA16Findings(uids, vals[:, :3].copy(), vals[:, 3].copy())


def read_candidates_csv(path: str) -> LUNA16Candidates:
    """Read a candidates CSV (``seriesuid,coordX,coordY,coordZ,
    probability``).

    Args:
        path (str): the CSV file.

    Returns:
        LUNA16Candidates: the rows in file order.
    """
    uids, vals = _read_table(path, _CANDIDATE_COLUMNS, 'candidates')
    return LUNA16Candidates(uids, vals[:, :3].copy(), vals[:, 3].copy())


def read_seriesuids_csv(path: str) -> List[str]:
    """Read ``seriesuids.csv`` (one UID per line, first column, no header).

    Raises ``ValueError`` on an empty UID or a UID listed twice.
    """
    uids: List[str] = []
    seen: Dict[str, int] = {}
    with open(path, newline='') as handle:
        check_csv_complete(path)
        reader = csv.reader(handle)
        for row in reader:
            if not row or all(not f.strip() for f in row):
                continue
            uid = row[0].strip()
            if not uid:
                raise ValueError(f'{path} line {reader.line_num}: empty '
                                 'seriesuid')
            if uid in seen:
                raise ValueError(
                    f'{path} line {reader.line_num}: seriesuid {uid} is '
                    f'listed twice (first on line {seen[uid]})')
            seen[uid] = reader.line_num
            uids.append(uid)
    if not uids:
        raise ValueError(f'{path}: no seriesuid')
    return uids


def write_candidates_csv(path: str,
                         seriesuids: Sequence[str],
                         xyz: np.ndarray,
                         probability: np.ndarray,
                         diameter_mm: Optional[np.ndarray] = None) -> None:
    """Write candidates in the official CSV format.

    Numbers are written with ``repr`` so that reading the file back gives
    the same float64 values (the evaluation is then bit-identical).

    Args:
        path (str): output CSV.
        seriesuids (Sequence[str]): ``(N,)`` series UID per mark.
        xyz (np.ndarray): ``(N, 3)`` world positions (mm).
        probability (np.ndarray): ``(N,)`` probabilities.
        diameter_mm (np.ndarray, optional): ``(N,)`` estimated diameters,
            written as an extra ``diameter_mm`` column (the official script
            reads columns by name and ignores it).
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    probability = np.asarray(probability, dtype=np.float64).reshape(-1)
    extra = ([] if diameter_mm is None else
             [np.asarray(diameter_mm, dtype=np.float64).reshape(-1)])
    with open(path, 'w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(_CANDIDATE_COLUMNS +
                        (('diameter_mm', ) if extra else ()))
        for row in zip(seriesuids, *xyz.T, probability, *extra):
            writer.writerow([row[0]] + [repr(float(v)) for v in row[1:]])


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


def match_luna16(candidates: LUNA16Candidates,
                 annotations: LUNA16Findings,
                 excluded: Optional[LUNA16Findings],
                 seriesuids: Sequence[str],
                 max_marks: int = MAX_MARKS_PER_SCAN,
                 unknown: str = 'error',
                 source: str = 'candidates') -> LUNA16Match:
    """Cap the marks and match them to nodules and excluded findings.

    Args:
        candidates (LUNA16Candidates): the CAD marks.
        annotations (LUNA16Findings): the included nodules.
        excluded (LUNA16Findings, optional): findings whose marks are
            ignored (``annotations_excluded.csv``).
        seriesuids (Sequence[str]): the evaluated scans.
        max_marks (int): per-scan cap. Defaults to 100.
        unknown (str): candidates of unlisted scans: ``'error'`` (default) or
            ``'ignore'`` (the official script's behaviour).
        source (str): name of the candidates (e.g. their file) for error
            messages.

    Returns:
        LUNA16Match: per-mark outcomes and per-nodule results.
    """
    seriesuids = list(seriesuids)
    cand_scan = scan_indices(candidates.seriesuids, seriesuids, source,
                             unknown)
    prob = np.asarray(candidates.probability, dtype=np.float64)
    cxyz = np.asarray(candidates.xyz, dtype=np.float64).reshape(-1, 3)
    kept = cap_marks(cand_scan, prob, max_marks)
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


def luna16_froc_curve(labels: np.ndarray,
                      probs: np.ndarray,
                      num_lesions: int,
                      num_scans: int,
                      drop_intermediate: bool = True
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FROC of the official script through ``sklearn.metrics.roc_curve``.

    Args:
        labels (np.ndarray): ``(E,)`` 1 for a detected nodule, 0 for an FP.
        probs (np.ndarray): ``(E,)`` entry probabilities.
        num_lesions (int): all included nodules (detected or not).
        num_scans (int): number of scans.
        drop_intermediate (bool): passed to ``roc_curve``. Defaults to True
            (the official call).

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: FPs per scan,
        sensitivity and thresholds (``roc_curve``'s, starting at ``inf``).
    """
    from sklearn.metrics import roc_curve

    labels = np.asarray(labels, dtype=np.float64)
    num_detected = float(labels.sum())
    num_fp = len(labels) - num_detected
    if len(labels) == 0:
        fps, tpr, thr = np.zeros(1), np.zeros(1), np.full(1, np.inf)
    else:
        with warnings.catch_warnings():
            # no FP (or no TP) entry: handled below like the official script
            warnings.simplefilter('ignore')
            fpr, tpr, thr = roc_curve(
                labels, probs, drop_intermediate=drop_intermediate)
        if num_fp == 0:
            fps = np.zeros(len(fpr))
        else:
            fps = fpr * num_fp / num_scans
        if num_detected == 0:
            tpr = np.zeros(len(tpr))  # official: NaN
    if num_lesions == 0:
        sens = np.full(len(fps), np.nan)
    else:
        sens = (tpr * num_detected) / float(num_lesions)
    return fps, sens, thr


def sensitivity_at(fps: np.ndarray,
                   sens: np.ndarray,
                   rates: Sequence[float] = LUNA16_FP_RATES) -> np.ndarray:
    """``np.interp`` of the FROC at the given FPs per scan."""
    return np.interp(np.asarray(rates, dtype=np.float64), fps, sens)


def bootstrap_indices(num_scans: int, num_resamples: int,
                      seed: int) -> np.ndarray:
    """Scan indices of each bootstrap resample, ``(R, num_scans)``.

    Row ``i`` equals the ``i``-th ``np.random.randint(num_scans,
    size=num_scans)`` after ``np.random.seed(seed)``.
    """
    return np.random.RandomState(seed).randint(
        num_scans, size=(num_resamples, num_scans))


class LUNA16Bootstrap(NamedTuple):
    """Bootstrap band of the FROC.

    Attributes:
        fps (np.ndarray): ``(P,)`` the grid (``linspace(0.125, 8, P)``).
        mean (np.ndarray): ``(P,)`` float32 mean sensitivity.
        lower (np.ndarray): ``(P,)`` float32 lower bound.
        upper (np.ndarray): ``(P,)`` float32 upper bound.
        cpm (np.ndarray): ``(R,)`` CPM of each resample (float64).
        sens_at (np.ndarray): ``(R, 7)`` sensitivities of each resample at
            the CPM rates.
        num_resamples (int): R.
        seed (int): the seed.
        confidence (float): the band's confidence.
    """
    fps: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    cpm: np.ndarray
    sens_at: np.ndarray
    num_resamples: int
    seed: int
    confidence: float

    def band_indices(self) -> Tuple[int, int]:
        """Positions of the bounds in the sorted resamples (official)."""
        pz = (1.0 - self.confidence) / 2.0
        n = self.num_resamples
        return math.floor(pz * n), min(math.floor((1.0 - pz) * n), n - 1)

    def cpm_interval(self) -> Tuple[float, float]:
        """Lower and upper bound of the CPM over the resamples (the same
        order statistics as the band; an mmlesion addition)."""
        lo, hi = self.band_indices()
        vals = np.sort(self.cpm)
        return float(vals[lo]), float(vals[hi])


def bootstrap_froc(match: LUNA16Match,
                   num_resamples: int = 1000,
                   seed: int = 0,
                   confidence: float = 0.95,
                   num_points: int = BOOTSTRAP_NUM_POINTS,
                   rates: Sequence[float] = LUNA16_FP_RATES,
                   chunk: int = 32,
                   progress: bool = False) -> LUNA16Bootstrap:
    """The official bootstrap band over scans, vectorised.

    Each resample's curve is the weighted cumulative TP / FP count over one
    global descending score order (weights = how often each scan was
    drawn), read at the last entry of every run of equal scores: exactly the
    points of ``roc_curve(drop_intermediate=False)`` on the resampled
    entries, with the official scaling. See the module docstring.

    Args:
        match (LUNA16Match): from :func:`match_luna16`.
        num_resamples (int): number of resamples. Defaults to 1000.
        seed (int): seed of the resampling. Defaults to 0.
        confidence (float): in (0, 1). Defaults to 0.95.
        num_points (int): grid size on [0.125, 8]. Defaults to 10000.
        rates (Sequence[float]): rates of the per-resample CPM.
        chunk (int): resamples processed at once (memory vs speed).
        progress (bool): show mmengine's progress bar. Defaults to False.

    Returns:
        LUNA16Bootstrap: the band and the per-resample CPMs.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f'confidence must be in (0, 1), got {confidence}')
    if num_resamples < 1:
        raise ValueError(f'num_resamples must be >= 1, got {num_resamples}')
    n = match.num_scans
    labels, probs, scans = match.entries()
    nod, det, fps_per_scan = match.per_scan_counts()
    order = np.argsort(-probs, kind='stable')
    s_sorted = scans[order]
    y_sorted = labels[order].astype(bool)
    p_sorted = probs[order]
    ends = np.append(np.flatnonzero(np.diff(p_sorted) != 0),
                     len(p_sorted) - 1) if len(p_sorted) else np.zeros(
                         0, np.int64)
    grid = np.linspace(BOOTSTRAP_FP_RANGE[0], BOOTSTRAP_FP_RANGE[1],
                       num_points)
    rates = np.asarray(rates, dtype=np.float64)
    idx = bootstrap_indices(n, num_resamples, seed)
    interp = np.empty((num_resamples, num_points), dtype=np.float32)
    cpms = np.empty(num_resamples)
    sens_at_r = np.empty((num_resamples, len(rates)))
    pos_scans, neg_scans = s_sorted[y_sorted], s_sorted[~y_sorted]
    # cumulative counts at each entry, split by label
    pos_rank = np.cumsum(y_sorted)  # positives up to and incl. each entry
    neg_rank = np.cumsum(~y_sorted)
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(num_resamples)
    for start in range(0, num_resamples, chunk):
        stop = min(start + chunk, num_resamples)
        c = stop - start
        flat = (idx[start:stop] + (np.arange(c) * n)[:, None]).ravel()
        weights = np.bincount(flat, minlength=c * n).reshape(c, n)
        total_l = weights @ nod
        total_d = weights @ det
        total_f = weights @ fps_per_scan
        cum_tp = np.zeros((c, len(ends) + 1), dtype=np.int64)
        cum_fp = np.zeros((c, len(ends) + 1), dtype=np.int64)
        if len(ends):
            if len(pos_scans):
                ctp = np.cumsum(weights[:, pos_scans], axis=1)
                k = pos_rank[ends]
                cum_tp[:, 1:] = np.where(
                    k > 0, ctp[:, np.maximum(k - 1, 0)], 0)
            if len(neg_scans):
                cfp = np.cumsum(weights[:, neg_scans], axis=1)
                k = neg_rank[ends]
                cum_fp[:, 1:] = np.where(
                    k > 0, cfp[:, np.maximum(k - 1, 0)], 0)
        for r in range(c):
            f_tot, d_tot, l_tot = total_f[r], total_d[r], total_l[r]
            if f_tot > 0:
                fps = (cum_fp[r] / float(f_tot)) * float(f_tot) / n
            else:
                fps = np.zeros(cum_fp.shape[1])
            if l_tot == 0:
                sens = np.full(cum_tp.shape[1], np.nan)
            elif d_tot == 0:
                sens = np.zeros(cum_tp.shape[1])
            else:
                sens = ((cum_tp[r] / float(d_tot)) * float(d_tot) /
                        float(l_tot))
            interp[start + r] = np.interp(grid, fps, sens)
            sens_at_r[start + r] = np.interp(rates, fps, sens)
            cpms[start + r] = float(np.mean(sens_at_r[start + r]))
        if bar is not None:
            bar.update(c)
    # official compute_mean_ci: per grid point sort, average, order stats
    by_point = np.sort(np.ascontiguousarray(interp.T), axis=1)
    mean = by_point.mean(axis=1, dtype=np.float32)
    boot = LUNA16Bootstrap(
        fps=grid,
        mean=mean,
        lower=by_point[:, 0],
        upper=by_point[:, 0],
        cpm=cpms,
        sens_at=sens_at_r,
        num_resamples=num_resamples,
        seed=seed,
        confidence=confidence)
    lo, hi = boot.band_indices()
    return boot._replace(
        lower=by_point[:, lo].copy(), upper=by_point[:, hi].copy())


def true_negative_patients(match: LUNA16Match,
                           target_sensitivity: float = 0.95) -> dict:
    """TNP of the 3D Aggregated Faster R-CNN paper (§IV-G).

    Args:
        match (LUNA16Match): from :func:`match_luna16`.
        target_sensitivity (float): sensitivity the threshold must reach.
            Defaults to 0.95.

    Returns:
        dict: ``tnp`` (float or None), ``threshold``, ``sensitivity`` reached
        at it, ``num_negative_scans``, ``num_true_negatives`` and
        ``target_sensitivity``.
    """
    labels, probs, _ = match.entries()
    nod, _, _ = match.per_scan_counts()
    negative = nod == 0
    out = dict(
        target_sensitivity=float(target_sensitivity),
        num_negative_scans=int(negative.sum()),
        tnp=None,
        threshold=None,
        sensitivity=None,
        num_true_negatives=None)
    fps, sens, thr = luna16_froc_curve(
        labels, probs, len(match.nodule_scan), match.num_scans,
        drop_intermediate=False)
    reached = np.flatnonzero(sens >= target_sensitivity)
    if len(reached) == 0 or negative.sum() == 0:
        return out
    k = int(reached[0])
    t = float(thr[k])
    fp = match.is_fp & (match.probability >= t)
    flagged = np.zeros(match.num_scans, dtype=bool)
    flagged[match.cand_scan[fp]] = True
    tn = int((negative & ~flagged).sum())
    out.update(
        tnp=tn / int(negative.sum()),
        threshold=t,
        sensitivity=float(sens[k]),
        num_true_negatives=tn)
    return out


class LUNA16Result(NamedTuple):
    """Everything :func:`evaluate_luna16` computes.

    Attributes:
        match (LUNA16Match): per-mark / per-nodule outcomes.
        fps (np.ndarray): the FROC's FPs per scan.
        sens (np.ndarray): the FROC's sensitivity.
        thresholds (np.ndarray): ``roc_curve`` thresholds.
        sens_at (np.ndarray): sensitivity at the seven rates.
        cpm (float): mean of ``sens_at``.
        bootstrap (LUNA16Bootstrap, optional): the band.
        tnp (dict): see :func:`true_negative_patients`.
        options (dict): the options used.
    """
    match: LUNA16Match
    fps: np.ndarray
    sens: np.ndarray
    thresholds: np.ndarray
    sens_at: np.ndarray
    cpm: float
    bootstrap: Optional[LUNA16Bootstrap]
    tnp: dict
    options: dict

    def counts(self) -> Dict[str, int]:
        """Numbers of scans, nodules, marks and their outcomes."""
        m = self.match
        kept = m.kept
        double = int(np.maximum(m.nodule_hits - 1, 0).sum())
        return dict(
            num_scans=m.num_scans,
            num_nodules=int(len(m.nodule_scan)),
            num_detected=int(m.detected.sum()),
            num_candidates=int((m.cand_scan >= 0).sum()),
            num_kept=int(kept.sum()),
            num_tp_marks=int((kept & (m.outcome == MARK_TP)).sum()),
            num_fp=int(m.is_fp.sum()),
            num_irrelevant=int((kept & (m.outcome == MARK_IRRELEVANT)).sum()),
            num_double_detections=double)

    def to_dict(self) -> dict:
        """JSON-ready summary (``metrics.json`` of the CLI)."""
        out = dict(
            protocol='LUNA16 (official noduleCADEvaluationLUNA16.py '
            'semantics, PROTOCOLS.md section 3)',
            cpm=_json_float(self.cpm),
            sensitivity_at={
                rate_key(r): _json_float(s)
                for r, s in zip(LUNA16_FP_RATES, self.sens_at)
            })
        out.update(self.counts())
        if self.bootstrap is not None:
            b = self.bootstrap
            lo, hi = b.cpm_interval()
            band = {}
            for r in LUNA16_FP_RATES:
                band[rate_key(r)] = dict(
                    mean=_json_float(np.interp(r, b.fps, b.mean)),
                    lower=_json_float(np.interp(r, b.fps, b.lower)),
                    upper=_json_float(np.interp(r, b.fps, b.upper)))
            out['bootstrap'] = dict(
                num_resamples=b.num_resamples,
                seed=b.seed,
                confidence=b.confidence,
                num_points=len(b.fps),
                sensitivity_at=band,
                cpm_mean=_json_float(np.mean(b.cpm)),
                cpm_lower=_json_float(lo),
                cpm_upper=_json_float(hi),
                num_resamples_without_nodules=int(np.isnan(b.cpm).sum()))
        out['tnp'] = self.tnp
        out['options'] = self.options
        return out


def evaluate_luna16(candidates: Union[LUNA16Candidates, str],
                    annotations: Union[LUNA16Findings, str],
                    excluded: Union[LUNA16Findings, str, None],
                    seriesuids: Union[Sequence[str], str],
                    max_marks: int = MAX_MARKS_PER_SCAN,
                    num_bootstrap: int = 1000,
                    seed: int = 0,
                    confidence: float = 0.95,
                    tnp_sensitivity: float = 0.95,
                    unknown: str = 'error',
                    progress: bool = False) -> LUNA16Result:
    """Evaluate CAD marks with the official LUNA16 semantics.

    Args:
        candidates (LUNA16Candidates | str): marks, or their CSV path.
        annotations (LUNA16Findings | str): nodules, or ``annotations.csv``.
        excluded (LUNA16Findings | str | None): excluded findings, or
            ``annotations_excluded.csv``; None for none.
        seriesuids (Sequence[str] | str): scans, or ``seriesuids.csv``.
        max_marks (int): per-scan cap (official: 100).
        num_bootstrap (int): bootstrap resamples; 0 skips the band.
        seed (int): bootstrap seed. Defaults to 0.
        confidence (float): band confidence. Defaults to 0.95.
        tnp_sensitivity (float): sensitivity of the TNP threshold.
        unknown (str): marks of unlisted scans, ``'error'`` or ``'ignore'``.
        progress (bool): progress bar for the bootstrap. Defaults to False.

    Returns:
        LUNA16Result: the FROC, CPM, band, TNP and counts.
    """
    source = 'candidates'
    if isinstance(candidates, str):
        source = candidates
        candidates = read_candidates_csv(candidates)
    if isinstance(annotations, str):
        annotations = read_findings_csv(annotations)
    if isinstance(excluded, str):
        excluded = read_findings_csv(excluded)
    if isinstance(seriesuids, str):
        seriesuids = read_seriesuids_csv(seriesuids)
    match = match_luna16(candidates, annotations, excluded, seriesuids,
                         max_marks, unknown, source)
    labels, probs, _ = match.entries()
    fps, sens, thr = luna16_froc_curve(labels, probs, len(match.nodule_scan),
                                       match.num_scans)
    sens_at = sensitivity_at(fps, sens)
    boot = (
        bootstrap_froc(match, num_bootstrap, seed, confidence,
                       progress=progress) if num_bootstrap > 0 else None)
    return LUNA16Result(
        match=match,
        fps=fps,
        sens=sens,
        thresholds=thr,
        sens_at=sens_at,
        cpm=float(np.mean(sens_at)),
        bootstrap=boot,
        tnp=true_negative_patients(match, tnp_sensitivity),
        options=dict(
            max_marks=max_marks,
            hit_test='squared distance < radius^2 (strict)',
            unknown_diameter_mm=UNKNOWN_DIAMETER_MM,
            excluded_marks='dropped (neither TP nor FP)',
            roc='sklearn.metrics.roc_curve(drop_intermediate=True)',
            fp_rates=list(LUNA16_FP_RATES),
            num_bootstrap=num_bootstrap,
            seed=seed,
            confidence=confidence,
            tnp_sensitivity=tnp_sensitivity,
            unknown_seriesuids=unknown))
