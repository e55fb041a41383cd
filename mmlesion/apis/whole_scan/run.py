# Copyright (c) mmlesion contributors. All rights reserved.
"""A 2.5D detector over a scan file (:func:`run_volume_inference`), in the
steps a batch shares: :func:`volume_run_config` (checked before anything
slow), :func:`load_volume_run` (once), :func:`detect_scan` and
:func:`write_scan` (per scan).
"""
import contextlib
import copy
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional, Union

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from mmlesion.datasets.volumes import CTVolume
from mmlesion.utils.huge_pages import numpy_huge_pages

from .backend import BackendKey, use_backend
from .infer import ScanSteps, infer_volume
from ..detector_loader import DetectorLoadSettings, init_lesion_detector
from .model import (check_operating_point, checkpoint_data_convention,
                    checkpoint_meta, choose_operating_point,
                    demo_model_warning, read_checkpoint, run_provenance,
                    scan_length_warning)
from .read import ScanSource, read_scan
from .results import DicomStatus, OperatingPoint, RunProvenance, ScanResult
from .settings import (DetectionSettings, FindingRescorer, RunSettings,
                       VolumeInferenceSettings, volume_settings_from_config)
from .slices import check_workers
from .write import (OutDirLock, check_out_dir, check_out_dir_apart,
                    remove_stale_staging, write_volume_results)
from .write_dicom import (DicomPlan, prepare_dicom_results,
                          write_dicom_results)


@dataclass
class RunInfo:
    """What every scan's result of a run records (:func:`load_volume_run`).

    Args:
        cfg_name (str): the config's name.
        checkpoint (str, optional): the weights' path.
        model_warning (str, optional): :func:`~mmlesion.apis.whole_scan.
            model.demo_model_warning`.
        provenance (RunProvenance): :func:`~mmlesion.apis.whole_scan.model.
            run_provenance`.
        model_settings (dict): what the run's model adjustments record.
        operating_point (OperatingPoint, optional): the findings kept
            (:func:`~mmlesion.apis.whole_scan.model.
            choose_operating_point`); None keeps every finding.
    """
    cfg_name: str
    checkpoint: Optional[str]
    model_warning: Optional[str]
    provenance: RunProvenance
    model_settings: Dict[str, Any] = field(default_factory=dict)
    operating_point: Optional[OperatingPoint] = None


@dataclass(frozen=True)
class RunConfig:
    """A run's config and the detector's input convention
    (:func:`volume_run_config`).

    Args:
        cfg (Config): the config, a method's adjustments made.
        settings (VolumeInferenceSettings): the detector's input
            convention.
        checkpoint (dict, optional): the checkpoint, read once for its
            meta (:func:`load_volume_run`'s ``preloaded``); None without a
            local one.
    """
    cfg: Config
    settings: VolumeInferenceSettings
    checkpoint: Optional[dict] = None


@dataclass(frozen=True)
class LoadedRun:
    """What a run loads once for all its scans (:func:`load_volume_run`).

    Args:
        model (nn.Module): the detector, in eval mode.
        rescorer (FindingRescorer, optional): the loaded re-scorer.
        info (RunInfo): what every scan's result records.
    """
    model: torch.nn.Module
    rescorer: Optional[FindingRescorer]
    info: RunInfo


def run_volume_inference(config: Union[str, Config],
                         checkpoint: Optional[str],
                         scan: Union[str, ScanSource],
                         out_dir: Optional[str] = None,
                         run_settings: Optional[RunSettings] = None,
                         model: Optional[torch.nn.Module] = None
                         ) -> ScanResult:
    """Load a model and a scan, detect, and (optionally) write the files.

    Args:
        config (str | Config): a 2.5D config.
        checkpoint (str, optional): its weights (None: random weights).
        scan (str | ScanSource): NIfTI / .mhd / DICOM folder
            (:func:`~mmlesion.datasets.volumes.load_ct_volume`), or a
            :class:`~.read.ScanSource` naming the DICOM series of a folder
            with several.
        out_dir (str, optional): write the results there.
        run_settings (RunSettings, optional): how the model is loaded, the
            scan detected and the results written. Defaults to
            ``RunSettings()``.
        model (nn.Module, optional): an already built model (then
            ``checkpoint`` is ignored).

    Raises:
        OutDirBusyError: another run writes into ``out_dir``
            (:class:`~mmlesion.apis.whole_scan.write.OutDirLock`).

    Returns:
        ScanResult: the :func:`infer_volume` result, with ``model_warning``
        (:func:`~mmlesion.apis.whole_scan.model.demo_model_warning`),
        ``provenance`` and, if written, ``dicom`` and ``paths``.
    """
    source = scan if isinstance(scan, ScanSource) else ScanSource(scan)
    scan = source.path
    run = run_settings or RunSettings()
    run_config = volume_run_config(config, run,
                                   checkpoint if model is None else None)
    # fail before the slow part
    check_workers(run.detection.workers, run.detection.worker_type)
    with contextlib.ExitStack() as stack:
        if out_dir is not None:
            # a refused run also removes what a killed one left
            remove_stale_staging(out_dir, keep=[
                scan, checkpoint, *run.rescorer_files().values(),
                config if isinstance(config, str) else None])
            check_out_dir_apart(out_dir, scan)
            check_out_dir(out_dir, run.overwrite)
            # one run per --out-dir until this one ends
            stack.enter_context(OutDirLock(out_dir, single=True))
        stack.enter_context(numpy_huge_pages(run.huge_pages))
        return _run_scan(run_config, config, checkpoint, source, out_dir,
                         run, model)


def _run_scan(run_config: RunConfig, config: Union[str, Config],
              checkpoint: Optional[str], scan: ScanSource,
              out_dir: Optional[str], run: RunSettings,
              model: Optional[torch.nn.Module]) -> ScanResult:
    """Read, load the model, detect and write."""
    cfg, settings = run_config.cfg, run_config.settings
    volume = read_scan(scan.path, settings, scan.series_uid)
    dicom_plan = prepare_dicom_results(volume, run.dicom, out_dir,
                                       run.overwrite)
    loaded = load_volume_run(cfg, config, checkpoint, run, model,
                             preloaded=run_config.checkpoint)
    result = detect_scan(loaded.model, volume, settings, loaded.info,
                         run.detection, ScanSteps(loaded.rescorer))
    if out_dir is not None:
        write_scan(result, volume, loaded.info,
                   ScanOutput(out_dir, run.overwrite, dicom_plan,
                              run.max_pictures))
    return result


def volume_run_config(config: Union[str, Config],
                      run_settings: Optional[RunSettings] = None,
                      checkpoint: Optional[str] = None) -> RunConfig:
    """The config (``run_settings.adjustments`` made) and the detector's
    input convention (with the checkpoint's record), checked before
    anything slow runs.

    Args:
        config (str | Config): a 2.5D config.
        run_settings (RunSettings, optional): ``pixel_spacing``,
            ``interval_mm``, ``cfg_name`` and ``adjustments``.
        checkpoint (str, optional): the weights to be loaded (None: no
            record read).

    Raises:
        ValueError: not a 2.5D config, an adjustment the config cannot
            take (e.g. a bad expert), or the checkpoint's operating-point
            record is malformed
            (:func:`~mmlesion.apis.whole_scan.model.check_operating_point`).
    """
    run = run_settings or RunSettings()
    read = read_checkpoint(checkpoint)  # its one read, the model's too
    meta = checkpoint_meta(read)
    check_operating_point(checkpoint, meta, run)
    cfg_name = _config_name(config, run.cfg_name)
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    settings = volume_settings_from_config(
        cfg, run.pixel_spacing, cfg_name, interval_mm=run.interval_mm,
        trained=checkpoint_data_convention(meta))
    if run.adjustments:
        cfg = copy.deepcopy(cfg)
    for adjustment in run.adjustments:
        adjustment.adjust_config(cfg, cfg_name)
    return RunConfig(cfg, settings, read)


def load_volume_run(cfg: Config,
                    config: Union[str, Config],
                    checkpoint: Optional[str],
                    run_settings: Optional[RunSettings] = None,
                    model: Optional[torch.nn.Module] = None,
                    preloaded: Optional[dict] = None) -> LoadedRun:
    """Load the re-scorer (with ``rescorer``), the detector (unless
    given) and what every scan's result records.

    Args:
        cfg (Config): from :func:`volume_run_config`.
        config (str | Config): as the user gave it (a path is recorded).
        checkpoint (str, optional): the weights (None: random weights).
        run_settings (RunSettings, optional): ``device``, ``cfg_name``,
            ``adjustments``, ``rescorer``, ``allow_partial_load`` and
            ``backend``.
        model (nn.Module, optional): an already built detector.
        preloaded (dict, optional): :attr:`RunConfig.checkpoint`.

    Returns:
        LoadedRun: the model (eval mode), the loaded re-scorer or None, and
        the :class:`RunInfo` for :func:`detect_scan` and
        :func:`write_scan`.
    """
    run = run_settings or RunSettings()
    if run.rescorer is not None:
        run.rescorer.load(run.device)
    checkpoint_meta: dict = {}
    model_given, sha256 = model, None
    if model is None:
        loaded = init_lesion_detector(
            cfg, checkpoint,
            DetectorLoadSettings(device=run.device,
                                 allow_partial=run.allow_partial_load),
            preloaded=preloaded)
        model, checkpoint_meta = loaded.model, loaded.checkpoint_meta
        sha256 = loaded.checkpoint_sha256  # hashed once, by the load
    model.eval()
    model_settings: Dict[str, Any] = {}
    for adjustment in run.adjustments:
        adjustment.adjust_model(model)
        model_settings.update(adjustment.record())
    cfg_name = _config_name(config, run.cfg_name)
    run_info = RunInfo(
        cfg_name=cfg_name, checkpoint=checkpoint,
        model_warning=demo_model_warning(cfg, checkpoint_meta),
        provenance=run_provenance(
            cfg, cfg_name if isinstance(config, str) else None,
            checkpoint if model_given is None else None, sha256,
            **run.rescorer_files()),
        model_settings=model_settings,
        operating_point=choose_operating_point(checkpoint_meta, run,
                                               checkpoint))
    if run.backend != 'torch':  # the convolutions exported, once
        record = run_info.provenance.checkpoint
        status = use_backend(model, run.backend, BackendKey(
            record and record.path, record and record.sha256,
            run_info.provenance.config.text, dict(model_settings)))
        model_settings['backend'] = status.backend  # findings.json's
    return LoadedRun(model, run.rescorer, run_info)


def _config_name(config: Union[str, Config], cfg_name: Optional[str]) -> str:
    """How the config is named in errors and results."""
    return cfg_name or (config if isinstance(config, str) else '<config>')


def detection_at(point: OperatingPoint,
                 detection: Optional[DetectionSettings] = None
                 ) -> DetectionSettings:
    """``detection`` keeping the findings at ``point``: its threshold (a
    validated one; else every finding is kept), on the findings' own
    scores with its lesion steps for a per-scan point."""
    detection = replace(detection or DetectionSettings(), keep_thr=(
        point.threshold if point.source == 'validation' else None))
    if point.fp_unit == 'scan':  # on the findings' own scores
        detection = replace(detection, keep_on='finding',
                            **(point.lesion_steps or {}))
    return detection


def detect_scan(model: torch.nn.Module,
                volume: CTVolume,
                settings: VolumeInferenceSettings,
                run_info: RunInfo,
                detection: Optional[DetectionSettings] = None,
                steps: ScanSteps = ScanSteps()) -> ScanResult:
    """:func:`infer_volume` on one loaded scan (``detection.keep_thr`` set
    to the run's operating point), with what the result records of the
    run."""
    point = run_info.operating_point
    if point is not None:  # what findings.json says is what is kept
        detection = detection_at(point, detection)
    logger = MMLogger.get_current_instance()
    logger.info(f"{volume.meta.get('path')}: {volume.shape_zyx} voxels at "
                f'{tuple(round(v, 3) for v in volume.spacing_zyx)} mm '
                f'(z, y, x) -> slices of {settings.interval_mm} mm at '
                f'{settings.pixel_spacing} mm/px')
    long_scan = scan_length_warning(point, volume)
    if long_scan:
        logger.warning(f"{volume.meta.get('path')}: {long_scan}")
    result = infer_volume(model, volume, settings, detection, steps)
    result.model_warning = run_info.model_warning
    result.provenance = copy.deepcopy(run_info.provenance)
    result.model_settings = copy.deepcopy(run_info.model_settings)
    result.operating_point = point
    return result


@dataclass(frozen=True)
class ScanOutput:
    """Where and how :func:`write_scan` writes a scan's results.

    Args:
        out_dir (str): the scan's output folder.
        overwrite (bool): replace a finished result there.
        dicom_plan (DicomPlan, optional): the DICOM SR / SEG to write
            (:func:`prepare_dicom_results`); None: none.
        max_pictures (int): pictures of the findings at most.
    """
    out_dir: str
    overwrite: bool = False
    dicom_plan: Optional[DicomPlan] = None
    max_pictures: int = 20


def write_scan(result: ScanResult,
               volume: CTVolume,
               run_info: RunInfo,
               output: ScanOutput) -> ScanResult:
    """Write a result of :func:`detect_scan` into ``output.out_dir`` (as
    one set: :func:`write_volume_results`, with the DICOM SR / SEG of
    ``output.dicom_plan``); sets ``result.dicom`` and ``result.paths``.

    Returns:
        ScanResult: ``result``.
    """
    out_dir, overwrite, max_pictures = (output.out_dir, output.overwrite,
                                        output.max_pictures)
    plan = output.dicom_plan or DicomPlan(
        None, DicomStatus(False, reason='not requested'))
    result.dicom, sources = plan.status, plan.sources
    model_info = dict(config=run_info.cfg_name,
                      checkpoint=run_info.checkpoint)
    record = run_info.provenance.checkpoint
    if record is not None:  # hashed once for the provenance: reused
        model_info['checkpoint_sha256'] = record.sha256
    result.paths = write_volume_results(
        result, out_dir, overwrite=overwrite, max_pictures=max_pictures,
        dicom_writer=None if sources is None else (
            lambda folder: write_dicom_results(
                result, volume, sources, folder, model_info)))
    return result
