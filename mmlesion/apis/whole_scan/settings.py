# Copyright (c) mmlesion contributors. All rights reserved.
"""A 2.5D detector's input convention for whole scans, read from its config
(:func:`volume_settings_from_config`): the slices and their interval, the
HU window, the pixel spacing and the test pipeline with the volume loader.

The config's test pipeline is kept, with its loader replaced by
:class:`~mmlesion.datasets.transforms.LoadVolumeSlices` (channels taken
from the in-memory volume) and its fixed-size resizes and annotation
loading removed (the volume is resampled to the pixel spacing instead, in
:mod:`~mmlesion.apis.whole_scan.resample`: a ``Resize`` to 512 px assumes
DeepLesion's 512 px slices).
"""
import copy
import logging
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.logging import print_log

#: Pixel spacing used when the config has no ``ResampleToSpacing``: the
#: DeepLesion slices (512 px, ~0.8 mm/px) the 2.5D configs resize to 512.
DEFAULT_PIXEL_SPACING = 0.8

#: Test-pipeline transforms dropped for volumes (see the module doc).
_DROPPED = ('Resize', 'RandomResize', 'FixShapeResize', 'LoadAnnotations',
            'RandomFlip', 'LoadRecistPoints')


@dataclass
class VolumeInferenceSettings:
    """How a 2.5D config wants its input, read from its test pipeline.

    Args:
        num_slices (int): input slices (channels).
        interval_mm (float): distance between them.
        pixel_spacing (float): in-plane mm/px the detector expects.
        window (tuple, optional): ``WindowHU`` window (also used for the
            pictures); None if the pipeline has none.
        pipeline (list[dict]): the test pipeline for volume slices.
        pixel_spacing_source (str): where ``pixel_spacing`` came from.
    """
    num_slices: int
    interval_mm: float
    pixel_spacing: float
    window: Optional[Tuple[float, float]]
    pipeline: List[dict] = field(default_factory=list)
    pixel_spacing_source: str = 'config'


@dataclass
class DetectionSettings:
    """How a scan goes through the detector and its boxes are stacked
    (:func:`~mmlesion.apis.whole_scan.infer.infer_volume`).

    Args:
        batch_size (int): slices per forward pass. Defaults to 4.
        score_thr (float): 2D boxes below it are not stacked. Defaults to
            0.05.
        iou_thr (float): stacking IoU threshold (docs/protocols.md §2:
            0.5). Defaults to 0.5.
        max_gap (int): missing slices a finding may bridge. Defaults to 0.
        min_slices (int): findings spanning fewer slices are dropped.
            Defaults to 1.
        workers (int): threads or processes preparing slices while the
            model runs (0: the main thread; the findings do not depend on
            it). Defaults to 0.
        worker_type (str): ``'thread'`` or ``'process'``
            (:mod:`~mmlesion.apis.whole_scan.slices`). Defaults to
            ``'thread'``.
        resample_backend (str): ``'torch'`` or ``'sitk'``
            (:func:`~mmlesion.apis.whole_scan.resample.prepare_volume`).
            Defaults to ``'torch'``.
        show_progress (bool): progress bars. Defaults to True.
    """
    batch_size: int = 4
    score_thr: float = .05
    iou_thr: float = .5
    max_gap: int = 0
    min_slices: int = 1
    workers: int = 0
    worker_type: str = 'thread'
    resample_backend: str = 'torch'
    show_progress: bool = True


@dataclass
class RunSettings:
    """How a run from files to files loads its model, detects and writes
    (:func:`~mmlesion.apis.whole_scan.run.run_volume_inference`,
    :func:`~mmlesion.apis.whole_scan.batch.run_batch_inference`).

    Args:
        detection (DetectionSettings): how each scan is detected.
        pixel_spacing (float, optional): in-plane mm/px the model was
            trained at (:func:`volume_settings_from_config`; default: the
            config's ``ResampleToSpacing``, else
            :data:`DEFAULT_PIXEL_SPACING`).
        device (str): torch device. Defaults to ``'cpu'``.
        overwrite (bool): replace earlier results (a batch: run scans that
            have results again). Defaults to False.
        max_pictures (int): findings drawn and listed in the report.
            Defaults to 20.
        dicom (str): DICOM SR and SEG of the findings: ``'auto'`` for a
            DICOM series input, ``'yes'`` (an error if impossible) or
            ``'no'`` (:mod:`~mmlesion.apis.whole_scan.write_dicom`).
        cfg_name (str, optional): the config's name in errors and results
            (default: its path, or ``'<config>'``).
        experts (list[int], optional): the experts a LENS model fuses
            (:func:`~mmlesion.apis.series_inference.set_lens_experts`).
        fpr_config (str, optional): a LENS FPR config: re-score the 3D
            findings with Eq. 2 (:func:`~mmlesion.apis.whole_scan.infer.
            infer_volume`).
        fpr_checkpoint (str, optional): its weights (with ``fpr_config``).
        allow_partial_load (bool): accept a checkpoint that does not fit
            the model exactly (only logged). Defaults to False.
    """
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    pixel_spacing: Optional[float] = None
    device: str = 'cpu'
    overwrite: bool = False
    max_pictures: int = 20
    dicom: str = 'auto'
    cfg_name: Optional[str] = None
    experts: Optional[List[int]] = None
    fpr_config: Optional[str] = None
    fpr_checkpoint: Optional[str] = None
    allow_partial_load: bool = False


def _test_pipeline(cfg: Config) -> list:
    for path in ('test_dataloader.dataset.pipeline', 'test_pipeline',
                 'val_dataloader.dataset.pipeline'):
        node = cfg
        for key in path.split('.'):
            node = node.get(key) if hasattr(node, 'get') else None
            if node is None:
                break
        if node:
            return list(copy.deepcopy(node))
    return []


def volume_settings_from_config(
        cfg: Config,
        pixel_spacing: Optional[float] = None,
        cfg_name: str = '<config>') -> VolumeInferenceSettings:
    """Read a 2.5D config's input convention (see the module doc).

    Args:
        cfg (Config): the detector's config.
        pixel_spacing (float, optional): in-plane spacing (mm/px) to use;
            default: the pipeline's ``ResampleToSpacing``, else
            :data:`DEFAULT_PIXEL_SPACING` (with a warning).
        cfg_name (str): named in errors.

    Returns:
        VolumeInferenceSettings: the settings and the volume pipeline.

    Raises:
        ValueError: the config's test pipeline has no
            ``LoadDeepLesionSlices`` (not a 2.5D config), or a bad spacing.
    """
    pipeline = _test_pipeline(cfg)
    types = [t.get('type') for t in pipeline]
    if 'LoadDeepLesionSlices' not in types:
        raise ValueError(
            f'{cfg_name}: not a 2.5D config: its test pipeline '
            f'({types or "none found"}) has no LoadDeepLesionSlices, so '
            'the number of slices and their interval are unknown')
    pos = types.index('LoadDeepLesionSlices')
    loader = pipeline[pos]
    num_slices = int(loader.get('num_slices', 3))
    interval = float(loader.get('interval_mm', 2.))
    hu_clip = loader.get('hu_clip', (-1024., 3071.))
    out = [dict(type='LoadVolumeSlices', num_slices=num_slices,
                interval_mm=interval, hu_clip=hu_clip)]
    window, resample_spacing = None, None
    for t in pipeline[pos + 1:]:
        if t['type'] in _DROPPED:
            continue
        t = dict(t)
        if t['type'] == 'WindowHU':
            window = tuple(float(v) for v in t.get('window',
                                                   (-1024., 1050.)))
        elif t['type'] == 'ResampleToSpacing':
            resample_spacing = float(t.get('spacing', .8))
        elif t['type'] == 'PackDetInputs' and 'meta_keys' in t:
            # ClipBlackBorder's offset must come back with the predictions
            t['meta_keys'] = tuple(t['meta_keys']) + ('crop_offset', )
        out.append(t)
    source = 'argument'
    if pixel_spacing is None:
        if resample_spacing is not None:
            pixel_spacing, source = resample_spacing, 'ResampleToSpacing'
        else:
            pixel_spacing, source = DEFAULT_PIXEL_SPACING, 'default'
            print_log(
                f'{cfg_name}: the test pipeline has no ResampleToSpacing; '
                f'slices are resampled to {DEFAULT_PIXEL_SPACING} mm/px '
                '(DeepLesion at 512 px). Pass the pixel spacing the model '
                'was trained at if it differs (e.g. --pixel-spacing 1.4 '
                'for the demo DeepLesion set)',
                logger='current', level=logging.WARNING)
    if not (np.isfinite(pixel_spacing) and pixel_spacing > 0):
        raise ValueError(f'pixel_spacing must be > 0 mm, got '
                         f'{pixel_spacing}')
    return VolumeInferenceSettings(
        num_slices=num_slices, interval_mm=interval,
        pixel_spacing=float(pixel_spacing), window=window, pipeline=out,
        pixel_spacing_source=source)


def build_volume_pipeline(settings: VolumeInferenceSettings) -> Compose:
    """The settings' pipeline, built from mmdet's ``TRANSFORMS`` registry
    (whatever the current default scope)."""
    from mmdet.registry import TRANSFORMS
    return Compose([TRANSFORMS.build(t) for t in settings.pipeline])
