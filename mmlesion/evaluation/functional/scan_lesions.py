# Copyright (c) mmlesion contributors. All rights reserved.
"""Whole-scan findings judged as lesions in 3D (docs/infer_volume.md,
"Which findings are kept"): :func:`evaluate_scan_findings`.

The hit rule is LENS's 3D one (Yan et al., IEEE TMI 2020, Sec. VI-C): a
finding hits a lesion when their 3D IoBB, the intersection over the
finding box's volume, is at least 0.3. Boxes are continuous voxel boxes
``[x1, y1, z1, x2, y2, z2]`` of the scan (``x2 = x1 + extent``), as
``findings.json``'s ``bbox_voxel`` and the volume annotation file hold
them. Unlike the DeepLesion and LENS FROCs, where a second finding on a
lesion already hit is neither a true nor a false positive, here it is a
false positive: a reader of the scan reads it as one more finding. So the
rates are findings to read per scan that are not a new lesion, and
:attr:`ScanLesionResult.findings_per_lesion` says how many findings each
lesion found got.
"""
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import torch

from mmlesion.structures.bbox_3d import bbox_overlaps_3d

from .froc import FROCCurve, FROCMatch, sens_at_fp

#: FPs per scan reported (LENS's rates per sub-volume).
SCAN_FP_RATES = (0.125, 0.25, 0.5, 1., 2., 4., 8.)
#: The 3D IoBB a hit needs (LENS).
SCAN_IOBB_THR = 0.3
#: The hit rule in words, as results state it.
HIT_RULE = ('3D IoBB (intersection over the finding box volume) >= {thr:g} '
            'with the lesion box (LENS); a second finding on a lesion is a '
            'false positive')


@dataclass
class ScanLesionResult:
    """Whole-scan findings against known lesions (:func:`evaluate_scan_
    findings`).

    Args:
        hit_rule (str): the rule, in words.
        num_scans (int): scans (the FP denominator).
        num_lesions (int): lesions.
        fp_rates (list[float]): false positives per scan.
        sensitivities (list[float]): lesions hit at each rate.
        thresholds (list[float]): the finding score kept at each rate
            (NaN without findings).
        findings_per_lesion (list[float | None]): at each rate, the kept
            findings that hit a lesion over the lesions they hit (1: one
            finding per lesion found; None: no lesion found).
        findings_per_scan (list[float]): kept findings per scan at each
            rate.
        distance_rate (float): the rate of :attr:`nearest_mm`.
        nearest_mm (list[float | None]): per lesion (scan by scan) the
            distance (mm) from its box centre to the nearest kept finding's
            at ``distance_rate`` (None: no finding kept in its scan).
        curve (FROCCurve, optional): the raw curve (for pictures; not
            written by :meth:`to_dict`).
    """
    hit_rule: str
    num_scans: int
    num_lesions: int
    fp_rates: List[float]
    sensitivities: List[float]
    thresholds: List[float]
    findings_per_lesion: List[Optional[float]]
    findings_per_scan: List[float]
    distance_rate: float
    nearest_mm: List[Optional[float]] = field(default_factory=list)
    curve: Optional[FROCCurve] = field(default=None, repr=False,
                                       compare=False)

    def at(self, rate: float) -> int:
        """The index of ``rate`` in :attr:`fp_rates` (ValueError if
        absent)."""
        for i, r in enumerate(self.fp_rates):
            if np.isclose(r, rate):
                return i
        raise ValueError(f'no result at {rate:g} FPs per scan (has '
                         + ', '.join(f'{r:g}' for r in self.fp_rates) + ')')

    def mean_sensitivity(self) -> float:
        """The sensitivities' mean over the rates (LENS's headline)."""
        return float(np.mean(self.sensitivities))

    def to_dict(self) -> dict:
        """JSON-ready: NaN thresholds as None."""
        out = asdict(replace(self, curve=None))
        del out['curve']
        out['thresholds'] = [None if np.isnan(t) else t
                             for t in self.thresholds]
        return out


def _boxes(arrays: Sequence[np.ndarray], width: int,
           name: str) -> List[np.ndarray]:
    out = []
    for i, arr in enumerate(arrays):
        arr = np.asarray(arr, np.float64)
        arr = arr.reshape(0, width) if arr.size == 0 else arr
        if arr.ndim != 2 or arr.shape[1] != width or not np.isfinite(
                arr).all() or (arr[:, 3:6] < arr[:, :3]).any():
            raise ValueError(
                f'{name}[{i}]: expected finite (n, {width}) boxes '
                '[x1, y1, z1, x2, y2, z2' + (', score' if width == 7 else '')
                + f'] with x2 >= x1, y2 >= y1, z2 >= z1; got {arr.tolist()}')
        out.append(arr)
    return out


class ScanMatch(NamedTuple):
    """What :func:`match_scan_findings` found: the walk as
    :func:`~mmlesion.evaluation.functional.froc.match_detections` gives it
    (``num_images``: scans; duplicates counted in ``is_fp``) and per
    finding whether it hits any lesion."""
    match: FROCMatch
    hit_any: np.ndarray


def match_scan_findings(findings: Sequence[np.ndarray],
                        lesions: Sequence[np.ndarray],
                        iobb_thr: float = SCAN_IOBB_THR) -> ScanMatch:
    """The hit walk over scans (module doc): findings by decreasing score
    (stable), each a true positive when it hits a lesion no finding before
    it hit, else a false positive. Not :func:`~mmlesion.evaluation.
    functional.froc.match_detections`: that one measures the legacy +1
    voxel sizes of inclusive indices, which a finding thinner than a voxel
    of the scan (one resampled slice of a thick-slice scan) does not
    have.

    Args:
        findings (Sequence[np.ndarray]): per scan ``(N_i, 7)`` boxes and
            scores.
        lesions (Sequence[np.ndarray]): per scan ``(M_i, 6)`` boxes.
        iobb_thr (float): the 3D IoBB a hit needs. Defaults to 0.3.

    Returns:
        ScanMatch: the walk and per finding whether it hits a lesion.
    """
    if len(findings) != len(lesions) or not len(findings):
        raise ValueError(f'{len(findings)} scans of findings and '
                         f'{len(lesions)} of lesions: give one (possibly '
                         'empty) entry per scan in both, at least one scan')
    dets = _boxes(findings, 7, 'findings')
    gts = _boxes(lesions, 6, 'lesions')
    counts = np.array([len(d) for d in dets])
    gt_counts = np.array([len(g) for g in gts])
    cat = np.concatenate(dets)
    scores = cat[:, 6].copy()
    order = np.argsort(-scores, kind='stable')
    rank = np.empty(len(scores), np.int64)
    rank[order] = np.arange(len(scores))
    first_rank = np.full(int(gt_counts.sum()), len(scores), np.int64)
    hit_any = np.zeros(len(scores), bool)
    det_start, gt_start = 0, 0
    for det, gt in zip(dets, gts):
        if len(det) and len(gt):
            iobb = bbox_overlaps_3d(torch.from_numpy(det[:, :6]),
                                    torch.from_numpy(gt),
                                    mode='iof').numpy()
            d_idx, g_idx = np.nonzero(iobb >= iobb_thr)
            hit_any[det_start + d_idx] = True
            np.minimum.at(first_rank, gt_start + g_idx,
                          rank[det_start + d_idx])
        det_start += len(det)
        gt_start += len(gt)
    return ScanMatch(FROCMatch.from_walk(
        np.repeat(np.arange(len(dets)), counts), scores, order, len(dets),
        first_rank), hit_any)


def evaluate_scan_findings(findings: Sequence[np.ndarray],
                           lesions: Sequence[np.ndarray],
                           spacings_zyx: Sequence[Sequence[float]],
                           fp_rates: Sequence[float] = SCAN_FP_RATES,
                           iobb_thr: float = SCAN_IOBB_THR,
                           distance_rate: float = 4.) -> ScanLesionResult:
    """Sensitivity at FPs per scan, findings per lesion found and the
    distance from each lesion to its nearest finding (module doc).

    Args:
        findings (Sequence[np.ndarray]): per scan ``(N_i, 7)`` continuous
            voxel boxes ``[x1, y1, z1, x2, y2, z2, score]`` (every
            candidate: the rates choose the thresholds).
        lesions (Sequence[np.ndarray]): per scan ``(M_i, 6)`` boxes.
        spacings_zyx (Sequence): per scan its voxel spacing (mm; z, y, x).
        fp_rates (Sequence[float]): FPs per scan. Defaults to 1/8 .. 8.
        iobb_thr (float): the hit's 3D IoBB. Defaults to 0.3.
        distance_rate (float): the rate whose kept findings give
            :attr:`ScanLesionResult.nearest_mm`. Defaults to 4.

    Returns:
        ScanLesionResult: the numbers.
    """
    match, hit_any = match_scan_findings(findings, lesions, iobb_thr)
    rates = [float(r) for r in fp_rates]
    if len(match.scores):
        sens = sens_at_fp(match.curve(), rates)
    else:
        sens = np.zeros(len(rates))
    sens = np.nan_to_num(sens, nan=0.)
    thresholds = match.thresholds_at_fp(rates)
    per_lesion, per_scan = [], []
    for thr in thresholds:
        kept = (match.scores >= thr) if not np.isnan(thr) else np.zeros(
            len(match.scores), bool)
        found = int(match.new_hits[kept].sum())
        per_lesion.append(
            round(float(hit_any[kept].sum()) / found, 6) if found else None)
        per_scan.append(round(float(kept.sum()) / match.num_images, 6))
    thr = thresholds[rates.index(distance_rate)] if distance_rate in rates \
        else float(match.thresholds_at_fp([distance_rate])[0])
    nearest = _nearest_mm(findings, lesions, spacings_zyx, thr)
    return ScanLesionResult(
        hit_rule=HIT_RULE.format(thr=iobb_thr), num_scans=match.num_images,
        num_lesions=match.num_gts, fp_rates=rates,
        sensitivities=[round(float(s), 6) for s in sens],
        thresholds=[float(t) for t in thresholds],
        findings_per_lesion=per_lesion, findings_per_scan=per_scan,
        distance_rate=float(distance_rate), nearest_mm=nearest,
        curve=match.curve())


def _nearest_mm(findings: Sequence[np.ndarray],
                lesions: Sequence[np.ndarray],
                spacings_zyx: Sequence[Sequence[float]],
                threshold: float) -> List[Optional[float]]:
    """Per lesion (scan by scan) the distance (mm) from its box centre to
    the nearest centre of its scan's findings scored >= ``threshold``
    (None: none in its scan; NaN ``threshold``: none kept)."""
    nearest: List[Optional[float]] = []
    for det, gt, spacing in zip(findings, lesions, spacings_zyx):
        det = np.asarray(det, np.float64).reshape(-1, 7)
        gt = np.asarray(gt, np.float64).reshape(-1, 6)
        det = det[det[:, 6] >= threshold] if not np.isnan(
            threshold) else det[:0]
        scale = np.asarray(spacing, np.float64)[::-1]  # x, y, z
        centre = (det[:, :3] + det[:, 3:6]) / 2 * scale
        for box in gt:
            if not len(det):
                nearest.append(None)
                continue
            d = np.linalg.norm(centre - (box[:3] + box[3:]) / 2 * scale,
                               axis=1)
            nearest.append(round(float(d.min()), 3))
    return nearest


@dataclass
class KeptFindings:
    """Findings kept at one score threshold against known lesions
    (:func:`evaluate_kept_findings`): what a whole-scan run at an
    operating point chosen elsewhere reports.

    Args:
        threshold (float): findings scored >= it are kept.
        sensitivity (float): lesions hit by a kept finding.
        findings_per_lesion (float | None): kept findings that hit a lesion
            over the lesions hit (None: none hit).
        findings_per_scan (float): kept findings per scan.
        false_per_scan (float): kept findings per scan that are not a new
            lesion (module doc).
        nearest_mm (list[float | None]): per lesion the distance to the
            nearest kept finding.
    """
    threshold: float
    sensitivity: float
    findings_per_lesion: Optional[float]
    findings_per_scan: float
    false_per_scan: float
    nearest_mm: List[Optional[float]]


def evaluate_kept_findings(findings: Sequence[np.ndarray],
                           lesions: Sequence[np.ndarray],
                           spacings_zyx: Sequence[Sequence[float]],
                           threshold: float,
                           iobb_thr: float = SCAN_IOBB_THR) -> KeptFindings:
    """The findings scored >= ``threshold`` judged as lesions (module doc;
    arguments as :func:`evaluate_scan_findings`')."""
    kept = [np.asarray(f, np.float64).reshape(-1, 7) for f in findings]
    kept = [f[f[:, 6] >= threshold] for f in kept]
    match, hit_any = match_scan_findings(kept, lesions, iobb_thr)
    found = int(match.new_hits.sum())
    return KeptFindings(
        threshold=float(threshold),
        sensitivity=round(found / match.num_gts, 6) if match.num_gts else 0.,
        findings_per_lesion=round(float(hit_any.sum()) / found, 6)
        if found else None,
        findings_per_scan=round(len(match.scores) / match.num_images, 6),
        false_per_scan=round(float(match.is_fp.sum()) / match.num_images, 6),
        nearest_mm=_nearest_mm(kept, lesions, spacings_zyx, threshold))


def scan_sensitivity_dict(result: ScanLesionResult) -> Dict[str, float]:
    """``{'0.125': s, ..., '8': s}``: the sensitivities keyed by the rate
    as a string."""
    return {f'{r:g}': s for r, s in zip(result.fp_rates,
                                        result.sensitivities)}
