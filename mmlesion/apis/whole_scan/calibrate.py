# Copyright (c) mmlesion contributors. All rights reserved.
"""Whole-scan findings judged as lesions on scans with known lesions, and
the per-scan operating point chosen from them (``tools/eval_whole_scan.py``;
docs/infer_volume.md, "Which findings are kept").

Each scan of an annotation file (the common volume format, e.g. the
converter's ``volumes.json``) is detected once (:func:`detect_scans`);
its 2D boxes are then stacked under each candidate of a small grid of the
lesion steps (:data:`LESION_STEP_GRID`), and the findings judged against
the lesions in 3D (:func:`~mmlesion.evaluation.functional.scan_lesions.
evaluate_scan_findings`). :func:`calibrate_scans` keeps the steps with the
best mean sensitivity over 1/8 to 8 false findings per scan (among equals:
the fewest findings per lesion found, then per scan; then the most merging
steps on; then the earlier candidate) and the score thresholds of those
rates (where the validation
never reaches a rate, every finding is kept: the 2D ``score_thr`` chosen
with the steps): an :class:`~mmlesion.evaluation.functional.operating_points.
OperatingPoints` record of unit ``scan`` that :func:`record_in_checkpoint`
stores in the checkpoint, where whole-scan runs find it.
"""
import itertools
import os.path as osp
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from mmlesion.datasets.volumes import CTVolume, resample_boxes_3d
from mmlesion.datasets.volumes.annotation_file import (SPLIT_NAMES,
                                                       load_annotation_file,
                                                       resolve_volume_file)
from mmlesion.evaluation.functional.box_stacking import stack_slice_boxes
from mmlesion.evaluation.functional.operating_points import (
    SCAN_OPERATING_POINTS_KEY, OperatingPoints)
from mmlesion.evaluation.functional.scan_lesions import (
    SCAN_FP_RATES, SCAN_IOBB_THR, KeptFindings, ScanLesionResult,
    evaluate_kept_findings, evaluate_scan_findings)
from mmlesion.structures.finding_3d import Finding3D
from mmlesion.utils.checkpoints.checksum import (read_checksum,
                                                 remove_checksum,
                                                 write_checksum)
from mmlesion.utils.writing.atomic import atomic_save_with

from .infer import ScanSteps, infer_volume
from .model import z_extent_mm
from .read import read_scan
from .settings import (LESION_STEPS, DetectionSettings,
                       VolumeInferenceSettings)

#: The candidates of each lesion step a calibration tries (every
#: combination): bridge 0-2 missed slices; link boxes lying 70 % inside
#: the last one or not; join fragments up to 2 slices apart or not; 3D NMS
#: at IoU 0.1 (nnDetection's and 3D-AG's) or not; fuse a finding lying
#: more than 30 % inside another or not (0.3: the 3D IoBB of a hit, so a
#: finding that would hit the other's lesion); keep findings of at least
#: 1-3 slices.
LESION_STEP_GRID: Dict[str, Tuple[Any, ...]] = dict(
    max_gap=(0, 1, 2), min_slices=(1, 2, 3), contain_thr=(None, .7),
    join_gap=(None, 2), merge_iou=(None, .1), merge_inside=(None, .3))
#: The 2D boxes per validation slice a calibration tries stacking (every
#: combination with :data:`LESION_STEP_GRID`): the best this many per slice
#: on average, the ``score_thr`` that keeps them read off the validation
#: scans' boxes (:func:`score_thr_candidates`; never below the detection's
#: own, which 8 keeps for a detector of fewer boxes). A detector that scores
#: a lesion's region a little above its surroundings on every slice
#: otherwise stacks chains through the whole scan.
BOXES_PER_SLICE: Tuple[Optional[float], ...] = (8., 2., .5)


@dataclass
class ScanTruth:
    """A scan of an annotation file and its lesions.

    Args:
        volume_id (str): its ``id``.
        path (str): the scan file.
        lesions (np.ndarray): ``(M, 6)`` continuous voxel boxes (ignored
            lesions left out).
    """
    volume_id: str
    path: str
    lesions: np.ndarray


@dataclass
class DetectedScan:
    """One scan detected once (its 2D boxes before stacking).

    Args:
        truth (ScanTruth): the scan and its lesions.
        boxes (list[np.ndarray]): per resampled slice its (n, 4) boxes.
        scores (list[np.ndarray]): per resampled slice the (n,) scores.
        resampled (CTVolume): the grid of the boxes (geometry only).
        volume (CTVolume): the scan's grid (geometry only).
    """
    truth: ScanTruth
    boxes: List[np.ndarray]
    scores: List[np.ndarray]
    resampled: CTVolume
    volume: CTVolume

    def stacked(self, detection: DetectionSettings) -> List[Finding3D]:
        """These boxes stacked with ``detection``'s settings."""
        return stack_slice_boxes(list(range(len(self.boxes))), self.boxes,
                                 self.scores, detection.stack_settings())

    def findings_of(self, stacked: Sequence[Finding3D],
                    min_slices: int = 1) -> np.ndarray:
        """``(N, 7)`` of the ``stacked`` findings of at least
        ``min_slices`` slices (as the stacking keeps them with
        ``min_slices`` set: it drops findings after every other step), in
        continuous voxels of the scan, with their score."""
        stacked = [f for f in stacked
                   if f.slice_range[1] - f.slice_range[0] + 1 >= min_slices]
        if not stacked:
            return np.zeros((0, 7))
        boxes = resample_boxes_3d(np.array([f.bbox_3d for f in stacked]),
                                  self.resampled, self.volume)
        return np.concatenate([boxes.astype(np.float64), np.array(
            [[f.score] for f in stacked])], 1)


@dataclass
class Calibration:
    """What :func:`calibrate_scans` chose and measured.

    Args:
        lesion_steps (dict): the chosen steps.
        result (ScanLesionResult): the scans judged with them.
        tried (list[tuple[dict, float]]): each candidate and its mean
            sensitivity, in the order tried.
        scan_z_mm (float, optional): the scans' mean extent along z (mm).
    """
    lesion_steps: Dict[str, Any]
    result: ScanLesionResult
    tried: List[Tuple[Dict[str, Any], float]] = field(default_factory=list)
    scan_z_mm: Optional[float] = None

    def operating_points(self, split: str) -> OperatingPoints:
        """The record a checkpoint stores (unit ``scan``)."""
        r = self.result
        return OperatingPoints(
            fp_unit='scan', fp_rates=list(r.fp_rates),
            thresholds=[float(t) for t in r.thresholds],
            sensitivities=list(r.sensitivities), metric='whole_scan_lesions',
            split=split, lesion_steps=dict(self.lesion_steps),
            scans=r.num_scans, scan_z_mm=self.scan_z_mm)


def read_scan_truths(ann_file: str, split: Optional[str] = None,
                     allow_outside: Optional[bool] = None
                     ) -> List[ScanTruth]:
    """The scans of an annotation file and their lesions.

    Args:
        ann_file (str): the common volume annotation file.
        split (str, optional): ``'train'``, ``'val'`` or ``'test'``: the
            volumes whose ``split`` (1/2/3 or the name) is it, and those
            without one (a file of one split, as ``deeplesion_to_3d.py``
            writes them); None: all.
        allow_outside (bool, optional): scans may lie outside its folder.

    Raises:
        ValueError: no volume of that split, naming the file.
    """
    data = load_annotation_file(ann_file)
    out = []
    for entry in data.volumes:
        name = entry.get('split')
        name = SPLIT_NAMES.get(name, name)
        if split is not None and name is not None and name != split:
            continue
        boxes = [a['bbox'] for a in entry.get('annotations', ())
                 if not a.get('ignore')]
        out.append(ScanTruth(
            str(entry['id']), resolve_volume_file(
                ann_file, entry['file'], allow_outside=allow_outside),
            np.asarray(boxes, np.float64).reshape(-1, 6)))
    if not out:
        raise ValueError(f'{ann_file}: no volume of split {split!r}')
    return out


def _geometry(volume: CTVolume) -> CTVolume:
    """``volume``'s geometry, its array a zero-stride stand-in."""
    return CTVolume(np.broadcast_to(np.float32(0), volume.shape_zyx),
                    volume.spacing_zyx, volume.origin_xyz, volume.direction,
                    dict(volume.meta))


def detect_scans(model: torch.nn.Module, truths: Sequence[ScanTruth],
                 settings: VolumeInferenceSettings,
                 detection: DetectionSettings) -> List[DetectedScan]:
    """Detect every scan once (:func:`~mmlesion.apis.whole_scan.infer.
    infer_volume` without stacking), keeping its 2D boxes."""
    out = []
    for i, truth in enumerate(truths):
        volume = read_scan(truth.path, settings)
        result = infer_volume(model, volume, settings, detection,
                              steps=ScanSteps(measure=False, stack=False))
        dets = result.slice_detections
        out.append(DetectedScan(truth, dets.boxes, dets.scores,
                                _geometry(result.resampled),
                                _geometry(volume)))
        if detection.show_progress:
            print(f'[{i + 1}/{len(truths)}] {truth.volume_id}: '
                  f'{len(dets.boxes)} slices, '
                  f'{sum(len(b) for b in dets.boxes)} boxes', flush=True)
    return out


def judge_scans(scans: Sequence[DetectedScan],
                detection: DetectionSettings,
                fp_rates: Sequence[float] = SCAN_FP_RATES,
                iobb_thr: float = SCAN_IOBB_THR) -> ScanLesionResult:
    """The scans' findings under ``detection``'s stacking judged against
    their lesions in 3D."""
    return evaluate_scan_findings(*_judged(scans, detection), fp_rates,
                                  iobb_thr)


def judge_kept(scans: Sequence[DetectedScan], detection: DetectionSettings,
               threshold: float) -> KeptFindings:
    """The scans' findings under ``detection``'s stacking scored >=
    ``threshold`` (an operating point chosen on other scans) judged
    against their lesions in 3D."""
    return evaluate_kept_findings(*_judged(scans, detection), threshold)


def _judged(scans: Sequence[DetectedScan],
            detection: DetectionSettings) -> tuple:
    return ([s.findings_of(s.stacked(detection)) for s in scans],
            [s.truth.lesions for s in scans],
            [s.volume.spacing_zyx for s in scans])


def lesion_step_candidates(
        grid: Mapping[str, Sequence[Any]] = LESION_STEP_GRID,
        score_thrs: Sequence[float] = (DetectionSettings.score_thr, )
) -> List[Dict[str, Any]]:
    """Every combination of ``grid`` (its keys: :data:`LESION_STEPS` but
    ``score_thr``) and ``score_thrs``, fewer steps first within each
    step's listed order."""
    names = [k for k in LESION_STEPS if k != 'score_thr']
    if set(grid) != set(names):
        raise ValueError(f'the grid must give exactly {names}, got '
                         f'{sorted(grid)}')
    return [dict(zip(names, values), score_thr=thr) for thr in score_thrs
            for values in itertools.product(*(grid[k] for k in names))]


def score_thr_candidates(
        scans: Sequence[DetectedScan], detection: DetectionSettings,
        per_slice: Sequence[Optional[float]] = BOXES_PER_SLICE
) -> List[float]:
    """The 2D score thresholds that keep ``per_slice`` boxes per slice of
    ``scans`` on average (None: ``detection.score_thr``), never below
    ``detection.score_thr``; repeats left out, in the order given."""
    scores = np.sort(np.concatenate([np.zeros(0)] + [
        np.asarray(s, np.float64).ravel() for scan in scans
        for s in scan.scores]))[::-1]
    slices = sum(len(scan.scores) for scan in scans)
    out: List[float] = []
    for k in per_slice:
        thr = detection.score_thr
        if k is not None and len(scores) > k * slices:
            thr = max(thr, float(scores[max(int(k * slices) - 1, 0)]))
        if thr not in out:
            out.append(thr)
    return out


def calibrate_scans(scans: Sequence[DetectedScan],
                    detection: DetectionSettings,
                    grid: Mapping[str, Sequence[Any]] = LESION_STEP_GRID,
                    fp_rates: Sequence[float] = SCAN_FP_RATES,
                    per_slice: Sequence[Optional[float]] = BOXES_PER_SLICE
                    ) -> Calibration:
    """Choose the lesion steps (module doc) and judge the scans with them.

    Args:
        scans (Sequence[DetectedScan]): validation scans, detected.
        detection (DetectionSettings): the other stacking settings.
        grid (Mapping): the candidates of each step but ``score_thr``.
        fp_rates (Sequence[float]): FPs per scan.
        per_slice (Sequence): the 2D boxes per slice whose score threshold
            is tried (:func:`score_thr_candidates`).

    Returns:
        Calibration: the chosen steps, their result and every candidate's
        mean sensitivity.
    """
    candidates = lesion_step_candidates(grid, score_thr_candidates(
        scans, detection, per_slice))
    # the candidates that differ only in min_slices share one stacking:
    # min_slices drops findings after every other step
    groups: Dict[tuple, List[int]] = {}
    for k, steps in enumerate(candidates):
        groups.setdefault(tuple(dict(steps, min_slices=1).items()),
                          []).append(k)
    results: List[Optional[ScanLesionResult]] = [None] * len(candidates)
    lesions = [s.truth.lesions for s in scans]
    spacings = [s.volume.spacing_zyx for s in scans]
    for steps, members in groups.items():
        chains = [s.stacked(replace(detection, **dict(steps))) for s in scans]
        for k in members:
            results[k] = evaluate_scan_findings(
                [s.findings_of(c, candidates[k]['min_slices'])
                 for s, c in zip(scans, chains)], lesions, spacings,
                fp_rates)
    best: Optional[Calibration] = None
    best_key = None
    tried = []
    for steps, result in zip(candidates, results):
        tried.append((steps, result.mean_sensitivity()))
        key = _preference(result, steps)
        if best is None or key > best_key:
            best, best_key = Calibration(steps, result), key
    best.tried = tried
    best.scan_z_mm = round(float(np.mean(
        [z_extent_mm(s.volume) for s in scans])), 3)
    best.result = _keep_all_below_rate(best.result, scans, replace(
        detection, **best.lesion_steps))
    return best


def _keep_all_below_rate(result: ScanLesionResult,
                         scans: Sequence[DetectedScan],
                         detection: DetectionSettings) -> ScanLesionResult:
    """``result`` with the threshold of each rate that every finding of
    the validation scans stays within (the lowest finding score: the walk
    never exceeds the rate) lowered to ``detection.score_thr``, the lowest
    score a finding can have: at that rate a run keeps every finding the
    lesion steps make, as the validation did, not only those scored above
    the validation's weakest one."""
    scores = [f[:, 6] for f in _judged(scans, detection)[0] if len(f)]
    if not scores:
        return result
    lowest = float(np.concatenate(scores).min())
    return replace(result, thresholds=[
        min(t, detection.score_thr) if t == lowest else t
        for t in result.thresholds])


#: The lesion steps that only link or fuse findings (:func:`_preference`).
MERGING_STEPS = ('contain_thr', 'join_gap', 'merge_iou', 'merge_inside')


def _preference(result: ScanLesionResult,
                steps: Mapping[str, Any]) -> Tuple[float, float, float, int]:
    """What :func:`calibrate_scans` maximises, in order: the mean
    sensitivity (to 6 decimals); then, among equals, the fewest findings
    per lesion found and the fewest findings per scan (means over the
    rates): one finding per lesion, no strays; then the most
    :data:`MERGING_STEPS` on. A few validation scans often show one finding
    per lesion and no stray under many candidates; a merging step only
    joins findings, so one that costs the validation nothing can only spare
    a new scan a second finding on a lesion (a short chain beside its
    lesion's main one, which the lightest of many equal candidates
    keeps)."""
    per_lesion = [v for v in result.findings_per_lesion if v is not None]
    return (round(result.mean_sensitivity(), 6),
            -float(np.mean(per_lesion)) if per_lesion else 0.,
            -float(np.mean(result.findings_per_scan)),
            sum(steps.get(name) is not None for name in MERGING_STEPS))


def record_in_checkpoint(checkpoint: str, points: OperatingPoints) -> None:
    """Store a per-scan record in ``checkpoint``'s ``meta``
    (:data:`SCAN_OPERATING_POINTS_KEY`), replacing the file whole
    (atomically: a killed run leaves the old file); every other entry is
    kept as it is. A SHA-256 sidecar is removed first and written anew
    after.

    Raises:
        ValueError: the file is not a checkpoint with a ``meta`` dict.
    """
    from mmlesion.utils.checkpoints.loader import load_local_checkpoint
    ckpt = load_local_checkpoint(checkpoint)
    if not isinstance(ckpt, dict) or not isinstance(
            ckpt.get('meta', {}), dict):
        raise ValueError(f'{checkpoint}: not a checkpoint with a meta dict')
    ckpt.setdefault('meta', {})[SCAN_OPERATING_POINTS_KEY] = points.to_dict()
    had_sidecar = read_checksum(checkpoint) is not None
    remove_checksum(checkpoint)  # never a wrong one, even after a kill
    atomic_save_with(osp.abspath(checkpoint),
                     lambda tmp: torch.save(ckpt, tmp))
    if had_sidecar:
        write_checksum(checkpoint)
