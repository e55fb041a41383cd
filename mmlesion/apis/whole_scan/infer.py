# Copyright (c) mmlesion contributors. All rights reserved.
"""The detection half of whole-scan inference on one loaded scan
(:func:`infer_volume`), the stages of this package in their order:

1. :func:`~mmlesion.apis.whole_scan.read.check_resampled_size` refuses a
   scan that would be resampled to gigavoxels;
2. :func:`~mmlesion.apis.whole_scan.resample.prepare_volume` resamples it
   to ``(interval, pixel_spacing, pixel_spacing)`` mm (the detector's
   convention, :func:`~mmlesion.apis.whole_scan.settings.
   volume_settings_from_config`), so each slice's neighbours are the next
   slices;
3. :func:`~mmlesion.apis.whole_scan.detect.detect_slices` runs the detector
   over all slices in batches (:mod:`~mmlesion.apis.whole_scan.slices`
   prepares them);
4. :func:`~mmlesion.apis.whole_scan.stack.stack_findings` links the 2D
   boxes into 3D findings in the original scan's voxels and in world mm;
5. :func:`~mmlesion.apis.whole_scan.measure.measure_findings` adds the
   RECIST axes, and a model of DeepLesion's lesion types gives each finding
   its type (:func:`~mmlesion.apis.whole_scan.stack.add_lesion_types`).

:mod:`~mmlesion.apis.whole_scan.write` writes the result's files and
:mod:`~mmlesion.apis.whole_scan.run` runs a scan from files to files.
"""
import time
from typing import Optional, Tuple

import torch
from mmengine.config import Config

from mmlesion.datasets.volumes import CTVolume

from .detect import detect_slices, lesion_map_collector
from .measure import measure_findings
from .read import check_resampled_size, scan_series_uid
from .resample import prepare_volume
from .results import ScanResult
from .settings import DetectionSettings, VolumeInferenceSettings
from .slices import check_workers
from .stack import add_lesion_types, lesion_type_classes, stack_findings


def infer_volume(model: torch.nn.Module,
                 volume: CTVolume,
                 settings: VolumeInferenceSettings,
                 batch_size: int = 4,
                 score_thr: float = .05,
                 iou_thr: float = .5,
                 max_gap: int = 0,
                 min_slices: int = 1,
                 show_progress: bool = True,
                 fpr: Optional[Tuple[Config, torch.nn.Module]] = None,
                 workers: int = 0,
                 worker_type: str = 'thread',
                 resample_backend: str = 'torch',
                 resampled: Optional[CTVolume] = None) -> ScanResult:
    """Detect lesions in a CT scan: resample, detect per slice, stack
    (and, with ``fpr``, re-score the 3D findings with LENS's FPR network).

    Args:
        model (nn.Module): a 2.5D mmdet detector in eval mode.
        volume (CTVolume): the scan (:func:`load_ct_volume`).
        settings (VolumeInferenceSettings): from
            :func:`volume_settings_from_config`.
        batch_size (int): slices per forward pass.
        score_thr (float): 2D boxes below it are not stacked.
        iou_thr (float): stacking IoU threshold (docs/protocols.md §2: 0.5).
        max_gap (int): missing slices a finding may bridge.
        min_slices (int): findings spanning fewer slices are dropped.
        show_progress (bool): show a progress bar.
        fpr (tuple, optional): (FPR config, ``LENSFPR`` model) from
            :func:`~mmlesion.apis.lens_fpr_rescore.load_fpr_model`: the
            final score of a finding is LENS Eq. 2, ``(s_LENS + s_FPR) /
            2`` (:func:`~mmlesion.apis.lens_fpr_rescore.
            rescore_findings_with_fpr`), its FPR patch cropped from the
            resampled volume in memory (the grid of the findings; the FPR
            network trained on DeepLesion's PNG slices at their own
            spacing sees here slices at the detector's interval and pixel
            spacing). The patch is cut in mmdet's pixel convention, the
            one of the DeepLesion boxes the FPR was trained on (the
            findings' x, y + 0.5).
        workers (int): threads or processes preparing slices while the
            model runs (:func:`detect_slices`; the findings do not depend
            on it). Defaults to 0.
        worker_type (str): ``'thread'`` (default) or ``'process'``.
        resample_backend (str): how the scan is resampled
            (:func:`prepare_volume`): ``'torch'`` (default) or ``'sitk'``
            (SimpleITK, the earlier path: same grid, values within
            :data:`~mmlesion.datasets.volumes.resampling.
            TORCH_LINEAR_ATOL_HU`).
        resampled (CTVolume, optional): ``volume`` already resampled by
            :func:`prepare_volume` with these ``settings`` and
            ``resample_backend`` (e.g. by the thread that reads the next
            scan of a batch, :mod:`mmlesion.apis.whole_scan.batch`); None
            resamples here. Defaults to None.

    Returns:
        ScanResult: the findings (by decreasing score), the geometry of
        both volumes, the settings and the speed; ``resampled`` (the
        resampled :class:`CTVolume`, for pictures) and ``lesion_maps`` (per
        resampled slice the model's bool lesion map, or None).
    """
    detection = DetectionSettings(
        batch_size=batch_size, score_thr=score_thr, iou_thr=iou_thr,
        max_gap=max_gap, min_slices=min_slices, workers=workers,
        worker_type=worker_type, resample_backend=resample_backend,
        show_progress=show_progress)
    check_workers(workers, worker_type)  # before the resampling
    check_resampled_size(volume, settings,
                         str(volume.meta.get('path') or 'scan'))
    if resampled is None:
        resampled = prepare_volume(volume, settings, resample_backend)
    lesion_maps = lesion_map_collector(model)
    classes, labels = lesion_type_classes(model), []
    start = time.perf_counter()
    boxes, scores = detect_slices(model, resampled, settings, batch_size,
                                  show_progress, lesion_maps, labels,
                                  workers=workers, worker_type=worker_type)
    seconds = time.perf_counter() - start
    findings = stack_findings(boxes, scores, resampled, volume, score_thr,
                              iou_thr, max_gap, min_slices, fpr,
                              show_progress)
    measure_findings(findings, resampled, volume, lesion_maps)
    if classes is not None:
        add_lesion_types(findings, boxes, labels, classes)
    path = volume.meta.get('path')
    return ScanResult(
        scan=str(path) if path else None, series_uid=scan_series_uid(volume),
        original=_geometry(volume), resampled_geometry=_geometry(resampled),
        settings=settings, detection=detection,
        fpr=None if fpr is None else str(
            getattr(fpr[0], 'filename', None) or 'LENSFPR'),
        device=str(next(model.parameters()).device),
        num_slices=len(boxes), num_boxes_2d=int(sum(len(b) for b in boxes)),
        detect_seconds=round(seconds, 3),
        slices_per_second=round(len(boxes) / max(seconds, 1e-9), 2),
        findings=findings, resampled=resampled, lesion_maps=lesion_maps)


def _geometry(volume: CTVolume) -> dict:
    return dict(shape_zyx=list(volume.shape_zyx),
                spacing_zyx=[float(v) for v in volume.spacing_zyx],
                origin_xyz=[float(v) for v in volume.origin_xyz],
                direction=[float(v) for v in volume.direction.ravel()])
