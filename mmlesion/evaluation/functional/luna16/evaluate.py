# Copyright (c) mmlesion contributors. All rights reserved.
"""One call from CSV files (or arrays) to the LUNA16 result."""
from dataclasses import dataclass
from typing import Dict, NamedTuple, Optional, Sequence, Union

import numpy as np

from .bootstrap import BootstrapSettings, LUNA16Bootstrap, bootstrap_froc
from .froc import (LUNA16_FP_RATES, TrueNegativePatients, _json_float,
                   luna16_froc_curve, rate_key, sensitivity_at,
                   true_negative_patients)
from .io import (LUNA16Candidates, LUNA16Findings, read_candidates_csv,
                 read_findings_csv, read_seriesuids_csv)
from .matching import (LUNA16Match, MARK_IRRELEVANT, MARK_TP,
                       MAX_MARKS_PER_SCAN, UNKNOWN_DIAMETER_MM, MatchSettings,
                       match_luna16)


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
        tnp (TrueNegativePatients): see :func:`true_negative_patients`.
        options (dict): the options used.
    """
    match: LUNA16Match
    fps: np.ndarray
    sens: np.ndarray
    thresholds: np.ndarray
    sens_at: np.ndarray
    cpm: float
    bootstrap: Optional[LUNA16Bootstrap]
    tnp: TrueNegativePatients
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
            'semantics, docs/protocols.md §3)',
            cpm=_json_float(self.cpm),
            sensitivity_at={
                rate_key(r): _json_float(s)
                for r, s in zip(LUNA16_FP_RATES, self.sens_at)
            })
        out.update(self.counts())
        if self.bootstrap is not None:
            b = self.bootstrap
            lo, hi = b.cpm_interval()
            band = {rate_key(r): {
                k: _json_float(np.interp(r, b.fps, getattr(b, k)))
                for k in ('mean', 'lower', 'upper')} for r in LUNA16_FP_RATES}
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


@dataclass(frozen=True)
class LUNA16Options:
    """How :func:`evaluate_luna16` evaluates.

    Attributes:
        max_marks (int): per-scan cap (official: 100).
        num_bootstrap (int): bootstrap resamples; 0 skips the band.
        seed (int): bootstrap seed. Defaults to 0.
        confidence (float): band confidence. Defaults to 0.95.
        tnp_sensitivity (float): sensitivity of the TNP threshold.
        unknown (str): marks of unlisted scans, ``'error'`` or ``'ignore'``.
        progress (bool): progress bar for the bootstrap. Defaults to False.
    """
    max_marks: int = MAX_MARKS_PER_SCAN
    num_bootstrap: int = 1000
    seed: int = 0
    confidence: float = 0.95
    tnp_sensitivity: float = 0.95
    unknown: str = 'error'
    progress: bool = False


def evaluate_luna16(candidates: Union[LUNA16Candidates, str],
                    annotations: Union[LUNA16Findings, str],
                    excluded: Union[LUNA16Findings, str, None],
                    seriesuids: Union[Sequence[str], str],
                    options: LUNA16Options = LUNA16Options()
                    ) -> LUNA16Result:
    """Evaluate CAD marks with the official LUNA16 semantics.

    Args:
        candidates (LUNA16Candidates | str): marks, or their CSV path.
        annotations (LUNA16Findings | str): nodules, or ``annotations.csv``.
        excluded (LUNA16Findings | str | None): excluded findings, or
            ``annotations_excluded.csv``; None for none.
        seriesuids (Sequence[str] | str): scans, or ``seriesuids.csv``.
        options (LUNA16Options): the cap, bootstrap and TNP settings.

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
        excluded = read_findings_csv(excluded, allow_duplicates=True)
    if isinstance(seriesuids, str):
        seriesuids = read_seriesuids_csv(seriesuids)
    o = options
    match = match_luna16(candidates, annotations, excluded, seriesuids,
                         MatchSettings(o.max_marks, o.unknown, source))
    labels, probs, _ = match.entries()
    fps, sens, thr = luna16_froc_curve(labels, probs, len(match.nodule_scan),
                                       match.num_scans)
    sens_at = sensitivity_at(fps, sens)
    boot = (
        bootstrap_froc(match, BootstrapSettings(
            o.num_bootstrap, o.seed, o.confidence, progress=o.progress))
        if o.num_bootstrap > 0 else None)
    return LUNA16Result(
        match=match,
        fps=fps,
        sens=sens,
        thresholds=thr,
        sens_at=sens_at,
        cpm=float(np.mean(sens_at)),
        bootstrap=boot,
        tnp=true_negative_patients(match, o.tnp_sensitivity),
        options=dict(
            max_marks=o.max_marks,
            hit_test='squared distance < radius^2 (strict)',
            unknown_diameter_mm=UNKNOWN_DIAMETER_MM,
            excluded_marks='dropped (neither TP nor FP)',
            roc='sklearn.metrics.roc_curve(drop_intermediate=True)',
            fp_rates=list(LUNA16_FP_RATES),
            num_bootstrap=o.num_bootstrap,
            seed=o.seed,
            confidence=o.confidence,
            tnp_sensitivity=o.tnp_sensitivity,
            unknown_seriesuids=o.unknown))
