# Copyright (c) mmlesion contributors. All rights reserved.
"""Run a 2.5D lesion detector on a whole CT scan and stack its boxes in 3D.

The steps (``tools/infer_volume.py`` is a thin CLI over them):

1. :func:`volume_settings_from_config` reads the detector's input
   convention from its config's **test pipeline**: the number of slices and
   their interval (``LoadDeepLesionSlices``), the HU clamp, the window
   (``WindowHU``) and the pixel spacing (``ResampleToSpacing``; configs
   without it get ``pixel_spacing`` from the caller, else 0.8 mm, the
   DeepLesion slices at 512 px that LENS Sec. IV-A resamples to). The
   pipeline itself is kept, with its loader replaced by
   :class:`~mmlesion.datasets.transforms.LoadVolumeSlices` (channels taken
   from the in-memory volume) and its fixed-size resizes and annotation
   loading removed (the volume is resampled to the pixel spacing instead:
   a ``Resize`` to 512 px assumes DeepLesion's 512 px slices).
2. :func:`prepare_volume` resamples the scan (linear, torch's trilinear
   kernel on the SimpleITK grid: :func:`~mmlesion.datasets.volumes.
   resampling.resample_volume_torch`; ``resample_backend='sitk'`` for
   SimpleITK's filter) to
   ``(interval, pixel_spacing, pixel_spacing)`` mm, so each slice's
   neighbours are the next slices.
3. :func:`detect_slices` runs the detector over all slices in batches
   (``model.test_step``: the config's data preprocessor and test_cfg), with
   a progress bar, and returns each slice's boxes in continuous voxel
   coordinates of the resampled volume (mmdet's pixel ``i`` spans
   ``[i, i + 1)``; SimpleITK's voxel ``i`` spans ``[i - 0.5, i + 0.5]``:
   boxes are shifted by -0.5).
4. :func:`~mmlesion.evaluation.functional.stack_slice_boxes` links them
   into 3D findings (docs/protocols.md §2: IoU > 0.5 on consecutive slices,
   score-weighted x, y).
5. :func:`infer_volume` maps every finding to the original scan's voxels
   (:func:`~mmlesion.datasets.volumes.resample_boxes_3d`) and to world
   coordinates; :func:`~mmlesion.apis.volume_results.write_volume_results`
   writes the JSON, the LUNA16 candidates CSV, the pictures and the HTML
   report (as one set; :mod:`mmlesion.apis.volume_results`).
"""
import os
import os.path as osp
import time
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config

from mmlesion.datasets.volumes import (CTVolume, list_dicom_series,
                                       resample_boxes_3d)
from mmlesion.evaluation.functional.box_stacking import stack_slice_boxes

from .lesion_types import add_lesion_types, lesion_type_classes
from .recist_measurement import (lesion_map_collector, lesion_map_of,
                                 measure_findings)
# re-exported: the names the tools and tests import from here
from .volume_detector import (build_volume_detector,  # noqa: F401
                              init_volume_detector)
from .volume_results import (CANDIDATE_COLUMNS, format_summary,  # noqa: F401
                             output_paths, write_volume_results)
from .volume_settings import (DEFAULT_PIXEL_SPACING,  # noqa: F401
                              VolumeInferenceSettings, build_volume_pipeline,
                              prepare_volume, volume_settings_from_config)
from .volume_slice_loader import (VolumeSliceDataset, check_workers,
                                  outputs_to_cpu, volume_slice_dataset,
                                  volume_slice_loader)


@torch.no_grad()
def detect_slices(model: torch.nn.Module,
                  volume: CTVolume,
                  settings: VolumeInferenceSettings,
                  batch_size: int = 4,
                  show_progress: bool = True,
                  lesion_maps: Optional[list] = None,
                  labels: Optional[list] = None,
                  workers: int = 0,
                  worker_type: str = 'thread',
                  batched_windowing: bool = True) -> Tuple[list, list]:
    """Run a 2.5D detector on every slice of a (resampled) volume.

    The slices go through the test pipeline in
    :func:`~mmlesion.apis.volume_slice_loader.volume_slice_loader`: with
    ``workers > 0`` worker threads (or processes) prepare the next batches
    while the model runs the current one, with the same results in the
    same order as ``workers=0`` (the pipeline in the main process, batch by
    batch, as before). Each batch's boxes, scores and labels are moved to
    the CPU with one copy per field
    (:func:`~mmlesion.apis.volume_slice_loader.outputs_to_cpu`).

    Args:
        model (nn.Module): an mmdet detector (e.g. from
            :func:`mmdet.apis.init_detector`), in eval mode.
        volume (CTVolume): the volume at the detector's spacing
            (:func:`prepare_volume`).
        settings (VolumeInferenceSettings): its pipeline.
        batch_size (int): slices per forward pass. Defaults to 4.
        show_progress (bool): mmengine progress bar over the slices.
        lesion_maps (list, optional): a model with a segmentation head
            appends each slice's (H, W) bool lesion map here
            (:func:`~mmlesion.apis.recist_measurement.lesion_map_of`).
        labels (list, optional): each slice's (n,) box labels are appended.
        workers (int): threads or processes preparing slices ahead of the
            model (0: none, the slices are prepared in the main process).
            Defaults to 0.
        worker_type (str): ``'thread'`` (default) or ``'process'``; see
            :mod:`mmlesion.apis.volume_slice_loader` for which is faster.
        batched_windowing (bool): for the usual pipeline
            (``LoadVolumeSlices``, ``WindowHU``, ``PackDetInputs``) clip and
            window each batch's slices at once
            (:class:`~mmlesion.apis.volume_slice_loader.
            WindowedVolumeSlices`: the same inputs, bit for bit, 3x faster);
            False runs the configured transforms slice by slice. Defaults
            to True.

    Returns:
        tuple: per slice ``z`` an (n, 4) float64 array of boxes
        ``[x1, y1, x2, y2]`` in continuous voxel coordinates of ``volume``
        and an (n,) array of scores.

    Raises:
        ValueError: ``batch_size < 1``, ``workers < 0`` or an unknown
            ``worker_type``.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    check_workers(workers, worker_type)
    array = np.ascontiguousarray(volume.array, dtype=np.float32)
    depth = array.shape[0]
    path = str(volume.meta.get('path', '<volume>'))
    dataset_type = (volume_slice_dataset
                    if batched_windowing else VolumeSliceDataset)
    loader = volume_slice_loader(
        dataset_type(array, build_volume_pipeline(settings),
                     slice_interval=float(volume.spacing_zyx[0]),
                     spacing=float(volume.spacing_zyx[2]), path=path,
                     stem=osp.basename(path.rstrip('/'))),
        batch_size, workers, worker_type)
    all_boxes: List[np.ndarray] = []
    all_scores: List[np.ndarray] = []
    progress = None
    if show_progress:
        from mmlesion.utils.progress import progress_bar
        progress = progress_bar(depth, label='slices')
    for samples in loader:
        outputs = model.test_step(samples)
        outputs_to_cpu(outputs)
        for out in outputs:
            pred = out.pred_instances
            boxes = pred.bboxes.detach().cpu().numpy().astype(np.float64)
            scores = pred.scores.detach().cpu().numpy().astype(np.float64)
            dx, dy = out.metainfo.get('crop_offset', (0., 0.))
            boxes = boxes + np.array([dx, dy, dx, dy]) - .5
            all_boxes.append(boxes.reshape(-1, 4))
            all_scores.append(scores.reshape(-1))
            if labels is not None:
                labels.append(pred.labels.detach().cpu().numpy().reshape(-1))
            if lesion_maps is not None:
                lesion_maps.append(lesion_map_of(model, out, array.shape[1:],
                                                 (dx, dy)))
            if progress is not None:
                progress.update()
    if progress is not None:
        progress.finish()
    return all_boxes, all_scores


def _geometry(volume: CTVolume) -> dict:
    return dict(shape_zyx=list(volume.shape_zyx),
                spacing_zyx=[float(v) for v in volume.spacing_zyx],
                origin_xyz=[float(v) for v in volume.origin_xyz],
                direction=[float(v) for v in volume.direction.ravel()])


def _world_box(volume: CTVolume, boxes: np.ndarray) -> np.ndarray:
    """World axis-aligned [xmin, ymin, zmin, xmax, ymax, zmax] of boxes."""
    if not len(boxes):
        return np.zeros((0, 6))
    x1, y1, z1, x2, y2, z2 = np.asarray(boxes, np.float64).T
    corners = np.stack([
        np.stack([z, y, x], axis=1) for z in (z1, z2) for y in (y1, y2)
        for x in (x1, x2)
    ], axis=1)  # (N, 8, 3)
    world = volume.voxel_to_world(corners.reshape(-1, 3)).reshape(-1, 8, 3)
    return np.concatenate([world.min(1), world.max(1)], axis=1)


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
                 resampled: Optional[CTVolume] = None) -> dict:
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
            scan of a batch, :mod:`mmlesion.apis.volume_batch`); None
            resamples here. Defaults to None.

    Returns:
        dict: ``findings`` (by decreasing score; each with ``bbox_voxel``
        in the original scan, ``bbox_voxel_resampled``, ``bbox_world``
        (axis-aligned [xmin, ymin, zmin, xmax, ymax, zmax] mm),
        ``center_world``, ``largest_box_side_mm`` (the longer in-plane
        side, width or height, of the finding's 3D box, in mm; also under
        its old name ``diameter_mm``: it is not a lesion diameter, RECIST
        gives those),
        ``score``, ``slice_range`` / ``key_slice`` (resampled slices),
        ``recist`` (long and short axis,
        :func:`~mmlesion.apis.recist_measurement.measure_findings`),
        ``lesion_type`` for models of DeepLesion's lesion types
        (:func:`~mmlesion.apis.lesion_types.add_lesion_types`),
        ``slice_range_original`` and ``boxes_2d`` (resampled slice, box in
        its continuous voxels, score); with ``fpr`` also ``s_lens`` and
        ``s_fpr``); the geometry of both volumes,
        ``settings``, ``num_slices``, ``detect_seconds`` and
        ``slices_per_second``; and ``resampled`` (the resampled
        :class:`CTVolume`, for pictures; not serialised) and
        ``lesion_maps`` (per resampled slice the model's bool lesion map,
        or None; not serialised).
    """
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
    findings = stack_slice_boxes(
        list(range(len(boxes))), boxes, scores, iou_thr=iou_thr,
        max_gap=max_gap, score_thr=score_thr, min_slices=min_slices)
    if fpr is not None:
        findings = _rescore_with_fpr(findings, resampled, fpr, show_progress)
    boxes_rs = np.array([f['bbox_3d'] for f in findings]).reshape(-1, 6)
    boxes_orig = resample_boxes_3d(boxes_rs, resampled, volume)
    world_boxes = _world_box(resampled, boxes_rs)
    centres = resampled.voxel_to_world(
        np.stack([(boxes_rs[:, 2] + boxes_rs[:, 5]) / 2,
                  (boxes_rs[:, 1] + boxes_rs[:, 4]) / 2,
                  (boxes_rs[:, 0] + boxes_rs[:, 3]) / 2],
                 axis=1)) if len(boxes_rs) else np.zeros((0, 3))
    sz, sy, sx = resampled.spacing_zyx
    out = []
    for i, f in enumerate(findings):
        b = boxes_rs[i]
        ob = boxes_orig[i]
        side_mm = round(float(max((b[3] - b[0]) * sx, (b[4] - b[1]) * sy)),
                        2)
        out.append(dict(
            id=i + 1, score=round(f['score'], 6),
            **{k: round(f[k], 6) for k in ('s_lens', 's_fpr') if k in f},
            center_world=[round(float(v), 3) for v in centres[i]],
            bbox_world=[round(float(v), 3) for v in world_boxes[i]],
            bbox_voxel=[round(float(v), 3) for v in ob],
            bbox_voxel_resampled=[round(float(v), 3) for v in b],
            largest_box_side_mm=side_mm, diameter_mm=side_mm,
            slice_range=list(f['slice_range']), key_slice=f['key_slice'],
            slice_range_original=[
                max(int(np.floor(ob[2] + .5)), 0),
                min(int(np.ceil(ob[5] - .5)), volume.shape_zyx[0] - 1)
            ],
            boxes_2d=[dict(slice=z, bbox=[round(v, 3) for v in box],
                           score=round(s, 6))
                      for z, box, s in f['boxes_2d']]))
    measure_findings(out, resampled, volume, lesion_maps)
    if classes is not None:
        add_lesion_types(out, boxes, labels, classes)
    path = volume.meta.get('path')
    series_uid = volume.series_uid
    if series_uid is None and volume.meta.get('format') == 'dicom_series':
        uids = list_dicom_series(path)  # the folder's one series
        series_uid = uids[0] if len(uids) == 1 and uids[0] else None
    if series_uid is None:  # NIfTI: the file name without extensions
        series_uid = Path(str(path)).name.split('.')[0] if path else 'scan'
    return dict(
        scan=str(path) if path else None, series_uid=series_uid,
        original=_geometry(volume), resampled_geometry=_geometry(resampled),
        settings=dict(
            {k: v for k, v in asdict(settings).items() if k != 'pipeline'},
            batch_size=batch_size, workers=workers, worker_type=worker_type,
            resample_backend=resample_backend,
            score_thr=score_thr, iou_thr=iou_thr,
            max_gap=max_gap, min_slices=min_slices,
            fpr=None if fpr is None else str(
                getattr(fpr[0], 'filename', None) or 'LENSFPR')),
        device=str(next(model.parameters()).device),
        num_slices=len(boxes), num_boxes_2d=int(sum(len(b) for b in boxes)),
        detect_seconds=round(seconds, 3),
        slices_per_second=round(len(boxes) / max(seconds, 1e-9), 2),
        findings=out, resampled=resampled, lesion_maps=lesion_maps)


def _rescore_with_fpr(findings: List[dict], resampled: CTVolume,
                      fpr: Tuple[Config, torch.nn.Module],
                      show_progress: bool) -> List[dict]:
    """LENS Eq. 2 on the stacked findings of a scan (see
    :func:`infer_volume`), by decreasing final score."""
    from .lens_fpr_rescore import rescore_findings_with_fpr
    fpr_cfg, fpr_model = fpr
    # continuous voxels (SimpleITK: pixel i spans [i - .5, i + .5]) ->
    # mmdet's pixels ([i, i + 1)), as the DeepLesion boxes the FPR saw
    shifted = [dict(f, bbox_3d=[v + .5 if k in (0, 1, 3, 4) else v
                                for k, v in enumerate(f['bbox_3d'])])
               for f in findings]
    rescored = rescore_findings_with_fpr(
        fpr_model, dict(scan=shifted), None, fpr_cfg,
        volumes=dict(scan=resampled.array),
        spacings=dict(scan=resampled.spacing_zyx),
        show_progress=show_progress)['scan']
    out = [dict(r, bbox_3d=f['bbox_3d']) for r, f in zip(rescored, findings)]
    out.sort(key=lambda f: -f['score'])
    return out


#: Most voxels a scan may be resampled to (``MMLESION_MAX_VOXELS`` in the
#: environment overrides it): 2**30, 4 GiB as float32, about 13 times a
#: 512 x 512 x 300 chest CT at 0.8 x 0.8 x 2 mm.
MAX_RESAMPLED_VOXELS = 2**30
ENV_MAX_VOXELS = 'MMLESION_MAX_VOXELS'
_SPACING_SOURCES = dict(argument='--pixel-spacing',
                        ResampleToSpacing="the config's ResampleToSpacing",
                        default='the default pixel spacing')


def check_resampled_size(volume: CTVolume,
                         settings: VolumeInferenceSettings,
                         scan: str = 'scan') -> Tuple[int, int, int]:
    """Refuse a resampling that would allocate gigavoxels, before it runs.

    The scan is resampled to ``(interval_mm, pixel_spacing,
    pixel_spacing)``; a tiny spacing (``--pixel-spacing 0.001``) would ask
    for billions of voxels and end in an out-of-memory kill or a
    ``MemoryError`` deep in SimpleITK.

    Args:
        volume (CTVolume): the loaded scan.
        settings (VolumeInferenceSettings): the detector's convention.
        scan (str): named in the error.

    Returns:
        tuple[int, int, int]: the resampled shape (z, y, x).

    Raises:
        ValueError: naming the option (``--pixel-spacing``, the config's
            ``interval_mm`` / ``ResampleToSpacing``), the size and the
            limit.
    """
    limit = float(os.environ.get(ENV_MAX_VOXELS) or MAX_RESAMPLED_VOXELS)
    target = np.array([settings.interval_mm, settings.pixel_spacing,
                       settings.pixel_spacing], dtype=np.float64)
    extent = np.asarray(volume.shape_zyx, np.float64) * np.asarray(
        volume.spacing_zyx, np.float64)
    with np.errstate(over='ignore', divide='ignore'):
        size = np.maximum(np.round(extent / target), 1)
        total = float(np.prod(size))
    if np.isfinite(total) and total <= limit:
        return tuple(int(v) for v in size)
    ps_source = _SPACING_SOURCES.get(settings.pixel_spacing_source,
                                     settings.pixel_spacing_source)
    # the option that grows the scan most is the likely culprit
    growth = np.asarray(volume.spacing_zyx, np.float64) / target
    culprit = (f'interval_mm {settings.interval_mm} (the config\'s '
               'LoadDeepLesionSlices)' if growth[0] > growth[1:].max()
               else f'{ps_source} {settings.pixel_spacing}')
    shape = ' x '.join(f'{v:.3g}' for v in size)
    raise ValueError(
        f'{scan}: resampling its {volume.shape_zyx} voxels of '
        f'{tuple(round(float(v), 3) for v in volume.spacing_zyx)} mm to '
        f'{settings.interval_mm} mm slices at {settings.pixel_spacing} '
        f'mm/px would make {shape} = {total:.3g} voxels '
        f'({total * 4 / 2**30:.3g} GiB as float32), more than the limit of '
        f'{limit:.3g} ({ENV_MAX_VOXELS}); check {culprit}')
