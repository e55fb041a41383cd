# Copyright (c) mmlesion contributors. All rights reserved.
"""A 2.5D detector over a scan file: check the inputs, load the scan and the
model, detect (:func:`~mmlesion.apis.whole_scan.infer.infer_volume`) and
write the results (:func:`~mmlesion.apis.whole_scan.write.
write_volume_results`, DICOM SR / SEG).

:func:`run_volume_inference` is one scan (``tools/infer_volume.py`` with one
scan); its parts are the steps a batch of scans shares
(:mod:`mmlesion.apis.whole_scan.batch`): :func:`volume_run_config` (checked
before anything slow), :func:`load_volume_run` (the model, once) and
:func:`detect_and_write` (once per scan).
"""
import copy
from typing import List, Optional, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from mmlesion.datasets.volumes import CTVolume, load_ct_volume

from .infer import infer_volume
from .model import demo_model_warning, load_volume_detector, run_provenance
from .read import check_resampled_size
from .results import ScanResult
from .settings import VolumeInferenceSettings, volume_settings_from_config
from .slices import check_workers
from .write import (check_out_dir, check_out_dir_apart, remove_stale_staging,
                    write_volume_results)
from .write_dicom import prepare_dicom_results, write_dicom_results


def run_volume_inference(config: Union[str, Config],
                         checkpoint: Optional[str],
                         scan: str,
                         out_dir: Optional[str] = None,
                         series_uid: Optional[str] = None,
                         pixel_spacing: Optional[float] = None,
                         device: str = 'cpu',
                         overwrite: bool = False,
                         model: Optional[torch.nn.Module] = None,
                         cfg_name: Optional[str] = None,
                         experts: Optional[List[int]] = None,
                         fpr_config: Optional[str] = None,
                         fpr_checkpoint: Optional[str] = None,
                         dicom: str = 'auto',
                         allow_partial_load: bool = False,
                         **kwargs) -> ScanResult:
    """Load a model and a scan, detect, and (optionally) write the files.

    Args:
        config (str | Config): a 2.5D config.
        checkpoint (str, optional): its weights (None: random weights, for
            tests of the plumbing).
        scan (str): NIfTI / .mhd / DICOM folder (:func:`load_ct_volume`).
        out_dir (str, optional): write the results there.
        series_uid (str, optional): the DICOM series of a folder with
            several.
        pixel_spacing (float, optional): see
            :func:`volume_settings_from_config`.
        device (str): torch device. Defaults to 'cpu'.
        overwrite (bool): replace earlier results in ``out_dir``.
        model (nn.Module, optional): an already built model (then
            ``checkpoint`` is ignored).
        cfg_name (str, optional): the config's name in errors.
        experts (list[int], optional): the experts a LENS model fuses
            (:func:`~mmlesion.apis.series_inference.set_lens_experts`).
        fpr_config (str, optional): a LENS FPR config: re-score the 3D
            findings with Eq. 2 (see :func:`infer_volume`).
        fpr_checkpoint (str, optional): its weights.
        dicom (str): DICOM SR and SEG of the findings (with ``out_dir``):
            ``'auto'`` for a DICOM series input, ``'yes'`` (an error if
            impossible) or ``'no'``; see
            :mod:`mmlesion.apis.whole_scan.write_dicom`.
        allow_partial_load (bool): accept a ``checkpoint`` that does not
            fit the model exactly (only logged). Defaults to False.
        **kwargs: :func:`infer_volume` options and ``max_pictures``.

    Returns:
        ScanResult: the :func:`infer_volume` result, with ``model_warning``
        (:data:`~mmlesion.apis.whole_scan.model.DEMO_MODEL_WARNING` for
        weights trained on the synthetic demo data, else None; see
        :mod:`~mmlesion.apis.whole_scan.model`) and ``paths`` if
        written.
    """
    cfg, settings = volume_run_config(config, pixel_spacing, cfg_name,
                                      experts, fpr_config, fpr_checkpoint)
    cfg_name = _config_name(config, cfg_name)
    check_workers(kwargs.get('workers', 0),  # fail before the slow part
                  kwargs.get('worker_type', 'thread'))
    if out_dir is not None:
        # a refused run also removes what a killed one left (never a path
        # the user gave), and writes nothing into the scan it reads
        remove_stale_staging(out_dir, keep=[
            scan, checkpoint, fpr_config, fpr_checkpoint,
            config if isinstance(config, str) else None])
        check_out_dir_apart(out_dir, scan)
        check_out_dir(out_dir, overwrite)
    volume = load_ct_volume(scan, series_uid=series_uid)
    check_resampled_size(volume, settings, scan)  # before any allocation
    dicom_plan = prepare_dicom_results(volume, dicom, out_dir, overwrite)
    model, fpr, run_info = load_volume_run(
        cfg, config, checkpoint, device, cfg_name, experts, fpr_config,
        fpr_checkpoint, allow_partial_load, model)
    return detect_and_write(model, volume, settings, run_info, fpr=fpr,
                            out_dir=out_dir, overwrite=overwrite,
                            dicom_plan=dicom_plan, **kwargs)


def volume_run_config(config: Union[str, Config],
                      pixel_spacing: Optional[float] = None,
                      cfg_name: Optional[str] = None,
                      experts: Optional[List[int]] = None,
                      fpr_config: Optional[str] = None,
                      fpr_checkpoint: Optional[str] = None
                      ) -> Tuple[Config, VolumeInferenceSettings]:
    """The config (with ``experts`` set) and the detector's input
    convention, checked before anything slow runs.

    Raises:
        ValueError: not a 2.5D config, a bad expert, or only one of
            ``fpr_config`` and ``fpr_checkpoint``.
    """
    from ..series_inference import set_lens_experts
    cfg_name = _config_name(config, cfg_name)
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    settings = volume_settings_from_config(cfg, pixel_spacing, cfg_name)
    if experts is not None:
        cfg = copy.deepcopy(cfg)
        set_lens_experts(cfg, experts, cfg_name)
    if (fpr_config is None) != (fpr_checkpoint is None):
        raise ValueError('--fpr-config and --fpr-checkpoint go together')
    return cfg, settings


def load_volume_run(cfg: Config,
                    config: Union[str, Config],
                    checkpoint: Optional[str],
                    device: str = 'cpu',
                    cfg_name: Optional[str] = None,
                    experts: Optional[List[int]] = None,
                    fpr_config: Optional[str] = None,
                    fpr_checkpoint: Optional[str] = None,
                    allow_partial_load: bool = False,
                    model: Optional[torch.nn.Module] = None) -> tuple:
    """Load the detector (unless given), the LENS FPR network (with
    ``fpr_config``) and what every scan's result records.

    Args:
        cfg (Config): from :func:`volume_run_config`.
        config (str | Config): as the user gave it (a path is recorded).
        checkpoint (str, optional): the weights (None: random weights).
        device (str): torch device.
        cfg_name (str, optional): the config's name in the results.
        experts (list[int], optional): the experts a LENS model fuses.
        fpr_config (str, optional): a LENS FPR config.
        fpr_checkpoint (str, optional): its weights.
        allow_partial_load (bool): accept a checkpoint that fits partly.
        model (nn.Module, optional): an already built detector.

    Returns:
        tuple: the model (eval mode), the ``(config, model)`` of the FPR or
        None, and ``run_info`` for :func:`detect_and_write`.
    """
    from ..lens_fpr_rescore import load_fpr_model
    fpr = None if fpr_config is None else load_fpr_model(
        fpr_config, fpr_checkpoint, device)
    checkpoint_meta: dict = {}
    model_given = model
    if model is None:
        model, checkpoint_meta = load_volume_detector(
            cfg, checkpoint, device, allow_partial_load)
    model.eval()
    if experts is not None:
        model.test_cfg.expert_fusion.experts = list(experts)
    run_info = dict(
        cfg_name=_config_name(config, cfg_name), checkpoint=checkpoint, experts=experts,
        model_warning=demo_model_warning(cfg, checkpoint_meta),
        provenance=run_provenance(
            cfg, cfg_name if isinstance(config, str) else None,
            checkpoint if model_given is None else None,
            fpr_config=fpr_config, fpr_checkpoint=fpr_checkpoint))
    return model, fpr, run_info


def _config_name(config: Union[str, Config], cfg_name: Optional[str]) -> str:
    """How the config is named in errors and results."""
    return cfg_name or (config if isinstance(config, str) else '<config>')


def detect_and_write(model: torch.nn.Module,
                     volume: CTVolume,
                     settings: VolumeInferenceSettings,
                     run_info: dict,
                     out_dir: Optional[str] = None,
                     overwrite: bool = False,
                     dicom_plan: Optional[dict] = None,
                     max_pictures: int = 20,
                     **kwargs) -> ScanResult:
    """One loaded scan through a loaded model: :func:`detect_scan`, then
    (with ``out_dir``) :func:`write_scan`.

    The part of :func:`run_volume_inference` that runs once per scan (the
    batch of :mod:`mmlesion.apis.whole_scan.batch` runs the two halves for
    every scan with one model, writing a scan while detecting the next).

    Args:
        model (nn.Module): the detector, in eval mode.
        volume (CTVolume): the scan.
        settings (VolumeInferenceSettings): the detector's convention.
        run_info (dict): what every scan's result records: ``cfg_name``,
            ``checkpoint``, ``experts`` (or None), ``model_warning`` and
            ``provenance`` (:func:`~mmlesion.apis.whole_scan.model.
            run_provenance`).
        out_dir (str, optional): write the results there.
        overwrite (bool): replace earlier results in ``out_dir``.
        dicom_plan (dict, optional): from :func:`~mmlesion.apis.whole_scan.
            write_dicom.prepare_dicom_results` (None: no DICOM results).
        max_pictures (int): findings drawn and listed in the report.
        **kwargs: :func:`infer_volume` options (``fpr``, ``resampled``,
            ``batch_size``, ...).

    Returns:
        ScanResult: as :func:`run_volume_inference`.
    """
    result = detect_scan(model, volume, settings, run_info, **kwargs)
    if out_dir is not None:
        write_scan(result, volume, run_info, out_dir, overwrite, dicom_plan,
                   max_pictures)
    return result


def detect_scan(model: torch.nn.Module,
                volume: CTVolume,
                settings: VolumeInferenceSettings,
                run_info: dict,
                **kwargs) -> ScanResult:
    """:func:`infer_volume` and what the result records of the run
    (``model_warning``, ``provenance``, the experts); see
    :func:`detect_and_write`."""
    logger = MMLogger.get_current_instance()
    logger.info(f"{volume.meta.get('path')}: {volume.shape_zyx} voxels at "
                f'{tuple(round(v, 3) for v in volume.spacing_zyx)} mm '
                f'(z, y, x) -> slices of {settings.interval_mm} mm at '
                f'{settings.pixel_spacing} mm/px')
    result = infer_volume(model, volume, settings, **kwargs)
    result.model_warning = run_info['model_warning']
    result.provenance = copy.deepcopy(run_info['provenance'])
    experts = run_info.get('experts')
    if experts is not None:
        result.experts = [int(e) for e in experts]
    return result


def write_scan(result: ScanResult,
               volume: CTVolume,
               run_info: dict,
               out_dir: str,
               overwrite: bool = False,
               dicom_plan: Optional[dict] = None,
               max_pictures: int = 20) -> ScanResult:
    """Write a result of :func:`detect_scan` into ``out_dir`` (as one set:
    :func:`write_volume_results`, with the DICOM SR / SEG of
    ``dicom_plan``); sets ``result.dicom`` and ``result.paths``.

    Returns:
        ScanResult: ``result``.
    """
    plan = dicom_plan or dict(sources=None, status=dict(
        written=False, reason='not requested'))
    result.dicom = plan['status']
    sources = plan['sources']
    model_info = dict(config=run_info['cfg_name'],
                      checkpoint=run_info['checkpoint'])
    result.paths = write_volume_results(
        result, out_dir, overwrite=overwrite, max_pictures=max_pictures,
        dicom_writer=None if sources is None else (
            lambda folder: write_dicom_results(
                result, volume, sources, folder, model_info)))
    return result
