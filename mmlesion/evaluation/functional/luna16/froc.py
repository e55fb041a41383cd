# Copyright (c) mmlesion contributors. All rights reserved.
"""The LUNA16 FROC curve, its operating points and TNP (package doc)."""
import math
import warnings
from typing import Optional, Sequence, Tuple, TypedDict

import numpy as np

from .matching import LUNA16Match


#: FPs per scan of the LUNA16 FROC score (CPM).
LUNA16_FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def _json_float(value: float) -> Optional[float]:
    """float for JSON; NaN (undefined) becomes None."""
    value = float(value)
    return None if math.isnan(value) else value


def rate_key(rate: float) -> str:
    """JSON key of an FP rate: ``0.125 -> '0.125'``, ``1.0 -> '1'``."""
    return f'{float(rate):g}'


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


class TNPAt(TypedDict):
    """TNP at one threshold (a JSON record of ``luna16.json``).

    Attributes:
        tnp (float): the fraction of the scans without a nodule none of
            whose false positives reaches ``threshold``.
        threshold (float, optional): None: above every candidate.
        sensitivity (float): the FROC's sensitivity at ``threshold``.
        num_true_negatives (int): those scans.
    """
    tnp: float
    threshold: Optional[float]
    sensitivity: float
    num_true_negatives: int


class TrueNegativePatients(TypedDict):
    """What :func:`true_negative_patients` gives (a JSON record of
    ``luna16.json``): the fields of :class:`TNPAt` at the target (None
    where it is not reached), ``num_negative_scans``,
    ``target_sensitivity`` and ``at_highest_sensitivity`` (None unless the
    target is not reached while scans with and without nodules exist)."""
    tnp: Optional[float]
    threshold: Optional[float]
    sensitivity: Optional[float]
    num_true_negatives: Optional[int]
    num_negative_scans: int
    target_sensitivity: float
    at_highest_sensitivity: Optional[TNPAt]


def _tnp_at(match: LUNA16Match, negative: np.ndarray, threshold: float,
            sensitivity: float) -> TNPAt:
    """TNP at one threshold: the scans without a nodule none of whose FPs
    scores at or above ``threshold``."""
    fp = match.is_fp & (match.probability >= threshold)
    flagged = np.zeros(match.num_scans, dtype=bool)
    flagged[match.cand_scan[fp]] = True
    tn = int((negative & ~flagged).sum())
    return TNPAt(tnp=tn / int(negative.sum()),
                 threshold=threshold if math.isfinite(threshold) else None,
                 sensitivity=sensitivity, num_true_negatives=tn)


def true_negative_patients(match: LUNA16Match,
                           target_sensitivity: float = 0.95
                           ) -> TrueNegativePatients:
    """TNP of the 3D Aggregated Faster R-CNN paper (§IV-G).

    The threshold is the highest at which the sensitivity reaches the
    target (the paper's operating point). Where it never does (a weak
    model), ``at_highest_sensitivity`` holds the TNP at the highest
    threshold reaching the highest sensitivity the curve has, that
    sensitivity beside it: a number of its own, never the paper's
    operating point (``tnp`` stays None). A curve whose highest
    sensitivity is 0 (no nodule found) has its threshold above every
    candidate (``threshold`` None): no scan flagged.

    Args:
        match (LUNA16Match): from :func:`match_luna16`.
        target_sensitivity (float): sensitivity the threshold must reach.
            Defaults to 0.95.

    Returns:
        TrueNegativePatients: ``tnp`` None when not reached.
    """
    labels, probs, _ = match.entries()
    nod, _, _ = match.per_scan_counts()
    negative = nod == 0
    out = TrueNegativePatients(
        target_sensitivity=float(target_sensitivity),
        num_negative_scans=int(negative.sum()),
        tnp=None,
        threshold=None,
        sensitivity=None,
        num_true_negatives=None,
        at_highest_sensitivity=None)
    fps, sens, thr = luna16_froc_curve(
        labels, probs, len(match.nodule_scan), match.num_scans,
        drop_intermediate=False)
    if negative.sum() == 0 or np.isnan(sens).all():
        return out
    reached = np.flatnonzero(sens >= target_sensitivity)
    if len(reached) == 0:
        k = int(np.argmax(sens))  # the first (highest) threshold of the max
        out['at_highest_sensitivity'] = _tnp_at(match, negative,
                                                float(thr[k]),
                                                float(sens[k]))
        return out
    k = int(reached[0])
    out.update(_tnp_at(match, negative, float(thr[k]), float(sens[k])))
    return out
