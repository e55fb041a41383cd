# Copyright (c) mmlesion contributors. All rights reserved.
"""Run a 2.5D detector over every slice of a resampled scan
(:func:`detect_slices`), each slice's boxes in continuous voxels (mmdet's
pixel ``i`` spans ``[i, i + 1)``, SimpleITK's voxel ``i`` ``[i - 0.5, i +
0.5]``: boxes shift by -0.5).
"""
import os.path as osp
from typing import List, Optional, Tuple

import numpy as np
import torch

from mmlesion.datasets.volumes import CTVolume
from mmlesion.models.detectors.uncropped import check_uncropped
from mmlesion.utils.reporting.progress import progress_bar

from .results import SliceDetections
from .settings import (DetectionSettings, VolumeInferenceSettings,
                       build_volume_pipeline)
from .slices import (VolumeSliceDataset, outputs_to_cpu,
                     volume_slice_dataset, volume_slice_loader)


@torch.no_grad()
def detect_slices(model: torch.nn.Module,
                  volume: CTVolume,
                  settings: VolumeInferenceSettings,
                  detection: Optional[DetectionSettings] = None,
                  lesion_maps: Optional[list] = None,
                  batched_windowing: bool = True) -> SliceDetections:
    """Run a 2.5D detector on every slice of a (resampled) volume.

    Args:
        model (nn.Module): an mmdet detector, in eval mode.
        volume (CTVolume): the volume at the detector's spacing
            (:func:`~mmlesion.apis.whole_scan.resample.prepare_volume`).
        settings (VolumeInferenceSettings): its pipeline.
        detection (DetectionSettings, optional): ``batch_size``,
            ``show_progress``, ``workers`` and ``worker_type``. Defaults to
            ``DetectionSettings()``.
        lesion_maps (list, optional): a model with a segmentation head
            appends each slice's (H, W) bool lesion map here
            (:func:`lesion_map_of`).
        batched_windowing (bool): window each batch's slices at once where
            the pipeline allows (:class:`~mmlesion.apis.whole_scan.slices.
            WindowedVolumeSlices`). Defaults to True.

    Returns:
        SliceDetections: per slice ``z`` an (n, 4) float64 array of boxes
        ``[x1, y1, x2, y2]`` in continuous voxel coordinates of ``volume``,
        an (n,) array of scores and one of labels (``classes`` None: the
        caller names the labels).

    Raises:
        ValueError: a bad ``batch_size``, ``workers`` or ``worker_type``; a
            cropped slice whose boxes the detector left in the crop.
    """
    detection = detection or DetectionSettings()
    array = np.ascontiguousarray(volume.array, dtype=np.float32)
    path = str(volume.meta.get('path', '<volume>'))
    dataset_type = (volume_slice_dataset
                    if batched_windowing else VolumeSliceDataset)
    loader = volume_slice_loader(
        dataset_type(array, build_volume_pipeline(settings),
                     slice_interval=float(volume.spacing_zyx[0]),
                     spacing=float(volume.spacing_zyx[2]), path=path,
                     stem=osp.basename(path.rstrip('/'))),
        detection.batch_size, detection.workers, detection.worker_type)
    all_boxes: List[np.ndarray] = []
    all_scores: List[np.ndarray] = []
    all_labels: List[np.ndarray] = []
    progress = progress_bar(array.shape[0], label='slices') \
        if detection.show_progress else None
    for samples in loader:
        outputs = model.test_step(samples)
        outputs_to_cpu(outputs)
        for out in outputs:
            pred = out.pred_instances
            boxes = pred.bboxes.detach().cpu().numpy().astype(np.float64)
            scores = pred.scores.detach().cpu().numpy().astype(np.float64)
            # in the whole slice already: the detector added any crop's
            # offset (to_uncropped), which is not added again here
            check_uncropped(out, type(model).__name__)
            boxes = boxes - .5
            all_boxes.append(boxes.reshape(-1, 4))
            all_scores.append(scores.reshape(-1))
            all_labels.append(pred.labels.detach().cpu().numpy().reshape(-1))
            if lesion_maps is not None:  # the map is the crop's
                lesion_maps.append(lesion_map_of(
                    model, out, array.shape[1:],
                    out.metainfo.get('crop_offset', (0., 0.))))
            if progress is not None:
                progress.update()
    if progress is not None:
        progress.finish()
    return SliceDetections(all_boxes, all_scores, all_labels)


def lesion_map_collector(model) -> Optional[list]:
    """``[]`` to collect the lesion maps of a model with a segmentation
    head (switched to return them: ``return_seg_map``), else None."""
    if not getattr(model, 'with_seg_head', False) or not hasattr(
            model, 'return_seg_map'):
        return None
    model.return_seg_map = True
    return []


def lesion_map_of(model, data_sample, shape_hw: Tuple[int, int],
                  offset_xy: Tuple[float, float] = (0., 0.)) -> np.ndarray:
    """One slice's bool lesion map in the slice's pixels.

    Args:
        model (nn.Module): the detector (its ``score_calibration``
            ``mask_thr`` thresholds the probability; default 0.5).
        data_sample (DetDataSample): its output, with ``pred_sem_seg``.
        shape_hw (tuple): the slice's ``(H, W)``.
        offset_xy (tuple): where the network input's pixel (0, 0) lies in
            the slice (``ClipBlackBorder``'s ``crop_offset``).

    Returns:
        np.ndarray: (H, W) bool.
    """
    thr = float((getattr(model, 'score_calibration', None)
                 or {}).get('mask_thr', .5))
    prob = data_sample.pred_sem_seg.sem_seg[0].detach().cpu().numpy()
    out = np.zeros(shape_hw, dtype=bool)
    dx, dy = (int(round(float(v))) for v in offset_xy)
    h = min(prob.shape[0], shape_hw[0] - dy)
    w = min(prob.shape[1], shape_hw[1] - dx)
    out[dy:dy + h, dx:dx + w] = prob[:h, :w] >= thr
    return out
