# Copyright (c) mmlesion contributors. All rights reserved.
"""The LUNA16 bootstrap band over scans (docs/protocols.md §3, package
doc)."""
import math
from dataclasses import astuple, dataclass
from typing import NamedTuple, Sequence, Tuple

import numpy as np

from .froc import LUNA16_FP_RATES
from .matching import LUNA16Match


#: Range and size of the bootstrap interpolation grid.
BOOTSTRAP_FP_RANGE = (0.125, 8.0)
BOOTSTRAP_NUM_POINTS = 10000


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


@dataclass(frozen=True)
class BootstrapSettings:
    """How :func:`bootstrap_froc` resamples.

    Args:
        num_resamples (int): number of resamples. Defaults to 1000.
        seed (int): seed of the resampling. Defaults to 0.
        confidence (float): in (0, 1). Defaults to 0.95.
        num_points (int): grid size on [0.125, 8]. Defaults to 10000.
        rates (Sequence[float]): rates of the per-resample CPM.
        chunk (int): resamples processed at once (memory vs speed).
        progress (bool): show mmengine's progress bar. Defaults to False.
    """
    num_resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95
    num_points: int = BOOTSTRAP_NUM_POINTS
    rates: Sequence[float] = LUNA16_FP_RATES
    chunk: int = 32
    progress: bool = False


def bootstrap_froc(match: LUNA16Match,
                   settings: BootstrapSettings = BootstrapSettings()
                   ) -> LUNA16Bootstrap:
    """The official bootstrap band over scans, vectorised.

    Each resample's curve is the cumulative TP / FP count over one global
    descending score order, weighted by how often each scan was drawn and
    read at the end of every run of equal scores (the package doc).

    Args:
        match (LUNA16Match): from :func:`match_luna16`.
        settings (BootstrapSettings): resamples, seed, confidence, grid.

    Returns:
        LUNA16Bootstrap: the band and the per-resample CPMs.
    """
    (num_resamples, seed, confidence, num_points, rates, chunk,
     progress) = astuple(settings)
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
        from mmlesion.utils.reporting.progress import progress_bar
        bar = progress_bar(num_resamples, label='bootstrap')
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
        for cum, of_scans, rank in ((cum_tp, pos_scans, pos_rank),
                                    (cum_fp, neg_scans, neg_rank)):
            if len(ends) and len(of_scans):
                counts = np.cumsum(weights[:, of_scans], axis=1)
                k = rank[ends]
                cum[:, 1:] = np.where(k > 0, counts[:, np.maximum(k - 1, 0)],
                                      0)
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
    if bar is not None:
        bar.finish()
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
