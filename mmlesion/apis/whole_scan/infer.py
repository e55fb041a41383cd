# Copyright (c) mmlesion contributors. All rights reserved.
"""The detection half of whole-scan inference on one loaded scan
(:func:`infer_volume`).
"""
import time
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

import torch

from mmlesion.datasets.volumes import CTVolume

from .detect import detect_slices, lesion_map_collector
from .measure import measure_findings
from .read import check_resampled_size, scan_series_uid
from .resample import prepare_volume
from .results import (Candidates, Finding, ScanGeometry, ScanResult,
                      SliceDetections)
from .settings import (DetectionSettings, FindingRescorer,
                       VolumeInferenceSettings)
from .slices import check_workers
from .stack import add_lesion_types, lesion_type_classes, stack_findings


@dataclass(frozen=True)
class ScanSteps:
    """Which steps :func:`infer_volume` runs after the detection, and what
    it is given ready.

    Args:
        rescorer (FindingRescorer, optional): a loaded re-scorer of the
            stacked findings, given the resampled volume (a
            :class:`~mmlesion.apis.whole_scan.settings.FindingRescorer`).
        resampled (CTVolume, optional): the volume already resampled by
            :func:`~mmlesion.apis.whole_scan.resample.prepare_volume` with
            the run's settings and ``detection.resample_backend`` (e.g. by
            a batch's reading thread); None resamples here.
        measure (bool): add the RECIST measurements (False: later, by
            :func:`~mmlesion.apis.whole_scan.measure.measure_result`).
        stack (bool): stack the 2D boxes into findings (False: later, by
            :func:`stack_result`; only without ``rescorer`` and
            ``measure``).

    Raises:
        ValueError: ``stack=False`` with ``rescorer`` (it re-scores the
            stacked findings with the model at hand) or ``measure``.
    """
    rescorer: Optional[FindingRescorer] = None
    resampled: Optional[CTVolume] = None
    measure: bool = True
    stack: bool = True

    def __post_init__(self):
        if not self.stack and (self.rescorer is not None or self.measure):
            raise ValueError(
                'infer_volume(stack=False) leaves the boxes unstacked: it '
                'cannot re-score them or measure them (pass measure=False '
                'and no rescorer)')


def infer_volume(model: torch.nn.Module,
                 volume: CTVolume,
                 settings: VolumeInferenceSettings,
                 detection: Optional[DetectionSettings] = None,
                 steps: ScanSteps = ScanSteps()) -> ScanResult:
    """Detect lesions in a CT scan: refuse one too large to resample
    (:func:`~.read.check_resampled_size`), resample, detect each slice
    (:func:`~.detect.detect_slices`), stack (and re-score) the 3D findings
    (:func:`~.stack.stack_findings`), measure RECIST
    (:func:`~.measure.measure_findings`), add lesion types.

    Args:
        model (nn.Module): a 2.5D mmdet detector in eval mode.
        volume (CTVolume): the scan (:func:`~mmlesion.datasets.volumes.
            load_ct_volume`).
        settings (VolumeInferenceSettings): from
            :func:`~mmlesion.apis.whole_scan.settings.
            volume_settings_from_config`.
        detection (DetectionSettings, optional): batches, stacking
            thresholds, slice workers, resampling backend, progress bars.
            Defaults to ``DetectionSettings()``.
        steps (ScanSteps): the re-scorer, a volume resampled already, and
            whether to measure and stack now.

    Returns:
        ScanResult: the findings (by decreasing score), the geometry of
        both volumes, the settings and the speed; ``resampled`` (the
        resampled :class:`CTVolume`, for pictures) and ``lesion_maps`` (per
        resampled slice the model's bool lesion map, or None).
    """
    rescorer, resampled, measure, stack = (steps.rescorer, steps.resampled,
                                           steps.measure, steps.stack)
    detection = detection or DetectionSettings()
    # before the resampling
    check_workers(detection.workers, detection.worker_type)
    check_resampled_size(volume, settings,
                         str(volume.meta.get('path') or 'scan'))
    if resampled is None:
        resampled = prepare_volume(volume, settings,
                                   detection.resample_backend)
    lesion_maps = lesion_map_collector(model)
    classes = lesion_type_classes(model)
    start = time.perf_counter()
    detections = detect_slices(model, resampled, settings, detection,
                               lesion_maps)
    seconds = time.perf_counter() - start
    detections, boxes = replace(detections, classes=classes), detections.boxes
    findings: List[Finding] = []
    candidates = Candidates()
    if stack:
        findings, candidates = _stacked(detections, resampled, volume,
                                        detection, rescorer, measure,
                                        lesion_maps)
        detections = None
    path = volume.meta.get('path')
    return ScanResult(
        scan=str(path) if path else None, series_uid=scan_series_uid(volume),
        original=ScanGeometry.from_volume(volume),
        resampled_geometry=ScanGeometry.from_volume(resampled),
        settings=settings, detection=detection,
        rescored_by=None if rescorer is None else rescorer.name,
        device=str(next(model.parameters()).device),
        num_slices=len(boxes), num_boxes_2d=int(sum(len(b) for b in boxes)),
        detect_seconds=round(seconds, 3),
        slices_per_second=round(len(boxes) / max(seconds, 1e-9), 2),
        findings=findings, candidates=candidates, resampled=resampled,
        lesion_maps=lesion_maps, slice_detections=detections)


def stack_result(result: ScanResult, volume: CTVolume) -> ScanResult:
    """Stack the 2D boxes of a result detected with ``stack=False`` into
    its findings (in place; a result already stacked is left as it is).

    Args:
        result (ScanResult): from :func:`infer_volume` with
            ``stack=False``.
        volume (CTVolume): the scan it was detected in.

    Returns:
        ScanResult: ``result``, its ``slice_detections`` cleared.

    Raises:
        ValueError: the result holds no resampled volume.
    """
    if result.slice_detections is None:
        return result
    if result.resampled is None:
        raise ValueError('stack_result: the result holds no resampled '
                         'volume (the grid of its boxes)')
    result.findings, result.candidates = _stacked(
        result.slice_detections, result.resampled, volume, result.detection)
    result.slice_detections = None
    return result


def _stacked(detections: SliceDetections, resampled: CTVolume,
             volume: CTVolume, detection: DetectionSettings,
             rescorer: Optional[FindingRescorer] = None,
             measure: bool = False,
             lesion_maps: Optional[list] = None
             ) -> Tuple[List[Finding], Candidates]:
    """The kept findings of the slices' boxes (re-scored, measured, typed)
    and every candidate."""
    stacked = stack_findings(detections.boxes, detections.scores,
                             resampled, volume, detection, rescorer)
    if measure:
        measure_findings(stacked.kept, resampled, volume, lesion_maps,
                         show_progress=detection.show_progress)
    if detections.classes is not None:
        add_lesion_types(stacked.kept, detections.boxes, detections.labels,
                         detections.classes)
    return stacked.kept, stacked.candidates
