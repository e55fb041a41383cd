# Copyright (c) mmlesion contributors. All rights reserved.
"""A test-time score cut's effect on the LUNA16 FROC: the same detections
evaluated twice, with and without the cut.

The 3D Aggregated Faster R-CNN paper tests with an RPN probability
threshold of 0.269 (Sigmoid(-1), Sec. IV-F). Run the detector without the
cut, keep each detection's RPN score, and :func:`score_cut_effect` reports
the candidates per scan and the FROC on both sides. The cut keeps scores
strictly above the threshold, as the RPN's own; with the FPRN branch a
detection it removes may have suppressed a neighbour in the final merge,
so the cut side can only lack such neighbours.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

from .evaluate import LUNA16Options, LUNA16Result, evaluate_luna16
from .froc import LUNA16_FP_RATES, _json_float, rate_key
from .io import LUNA16Candidates, LUNA16Findings
from .matching import MAX_MARKS_PER_SCAN


@dataclass
class ScoreCutSettings:
    """How :func:`score_cut_effect` cuts and evaluates.

    Args:
        threshold (float): detections with a cut score at or below it are
            dropped (0.269 = sigmoid(-1), the paper's).
        max_marks (int): LUNA16's cap of marks per scan.
        tnp_sensitivity (float): sensitivity of the TNP threshold.
    """
    threshold: float
    max_marks: int = MAX_MARKS_PER_SCAN
    tnp_sensitivity: float = 0.95


@dataclass
class ScoreCutSide:
    """The detections on one side of the cut, evaluated.

    Args:
        num_candidates (int): detections.
        candidates_per_scan (float): their mean number per scan.
        result (LUNA16Result): their LUNA16 evaluation (no bootstrap).
    """
    num_candidates: int
    candidates_per_scan: float
    result: LUNA16Result

    def to_dict(self) -> dict:
        """JSON-ready: counts, CPM, the sensitivity at LUNA16's rates and
        the TNP (None where it is undefined), with the TNP at the highest
        sensitivity reached where the TNP's target is not
        (``tnp_at_highest_sensitivity``: see
        :func:`.true_negative_patients`)."""
        return dict(
            num_candidates=self.num_candidates,
            candidates_per_scan=_json_float(self.candidates_per_scan),
            cpm=_json_float(self.result.cpm),
            tnp=self.result.tnp['tnp'],
            tnp_at_highest_sensitivity=self.result.tnp[
                'at_highest_sensitivity'],
            sensitivity_at={rate_key(r): _json_float(s) for r, s in zip(
                LUNA16_FP_RATES, self.result.sens_at)})


@dataclass
class ScoreCutEffect:
    """What a score cut changes (:func:`score_cut_effect`).

    Args:
        threshold (float): the cut.
        with_cut (ScoreCutSide): the detections above it.
        without_cut (ScoreCutSide): every detection.
    """
    threshold: float
    with_cut: ScoreCutSide
    without_cut: ScoreCutSide

    def to_dict(self) -> dict:
        """JSON-ready, both sides and the rule."""
        return dict(threshold=self.threshold,
                    rule='detections with an RPN score > threshold kept; '
                    'the same detections evaluated with and without the cut',
                    with_cut=self.with_cut.to_dict(),
                    without_cut=self.without_cut.to_dict())

    def metrics(self) -> Dict[str, float]:
        """Flat metric keys: ``candidates_per_scan`` (with the cut),
        ``candidates_per_scan_uncut``, ``cpm_uncut``."""
        return dict(candidates_per_scan=self.with_cut.candidates_per_scan,
                    candidates_per_scan_uncut=(
                        self.without_cut.candidates_per_scan),
                    cpm_uncut=self.without_cut.result.cpm)

    def summary(self) -> str:
        """One line: candidates per scan and CPM on both sides."""
        w, wo = self.with_cut, self.without_cut
        return (f'RPN score cut {self.threshold:g}: '
                f'{w.candidates_per_scan:.2f} candidates per scan (CPM '
                f'{w.result.cpm:.4f}); without it '
                f'{wo.candidates_per_scan:.2f} (CPM {wo.result.cpm:.4f})')


def apply_score_cut(candidates: LUNA16Candidates, cut_scores: np.ndarray,
                    threshold: float) -> LUNA16Candidates:
    """The candidates whose cut score is strictly above ``threshold``.

    Raises:
        ValueError: ``cut_scores`` is not one per candidate.
    """
    cut_scores = np.asarray(cut_scores, dtype=np.float64).reshape(-1)
    if len(cut_scores) != len(candidates.probability):
        raise ValueError(f'score cut: {len(cut_scores)} cut scores for '
                         f'{len(candidates.probability)} candidates')
    keep = cut_scores > threshold
    return LUNA16Candidates(candidates.seriesuids[keep],
                            candidates.xyz[keep],
                            candidates.probability[keep])


def score_cut_effect(candidates: LUNA16Candidates, cut_scores: np.ndarray,
                     annotations: LUNA16Findings,
                     excluded: Optional[LUNA16Findings],
                     scans: Sequence[str],
                     settings: ScoreCutSettings) -> ScoreCutEffect:
    """Evaluate the same detections with and without a score cut.

    Args:
        candidates (LUNA16Candidates): every detection of the uncut run,
            with its final probability.
        cut_scores (np.ndarray): ``(N,)`` the score the cut reads (the RPN
            score of each detection).
        annotations (LUNA16Findings): the nodules.
        excluded (LUNA16Findings, optional): excluded findings.
        scans (Sequence[str]): the evaluated scans.
        settings (ScoreCutSettings): the threshold and LUNA16's options.

    Returns:
        ScoreCutEffect: candidates per scan and FROC on both sides.
    """
    n_scans = max(len(scans), 1)
    options = LUNA16Options(max_marks=settings.max_marks, num_bootstrap=0,
                            tnp_sensitivity=settings.tnp_sensitivity)

    def side(cands: LUNA16Candidates) -> ScoreCutSide:
        res = evaluate_luna16(cands, annotations, excluded, scans, options)
        n = int(len(cands.probability))
        return ScoreCutSide(n, n / n_scans, res)

    return ScoreCutEffect(
        float(settings.threshold),
        side(apply_score_cut(candidates, cut_scores, settings.threshold)),
        side(candidates))


