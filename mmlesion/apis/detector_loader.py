# Copyright (c) mmlesion contributors. All rights reserved.
"""The one way mmlesion builds a detector from a config and loads its
weights: :func:`init_lesion_detector` (mmlesion's
:func:`mmdet.apis.init_detector`), used by every path that runs a trained
model, so the checks, the registry scope, the device and the checkpoint's
safety checks are the same everywhere.
"""
import os.path as osp
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
from mmengine.config import Config

from mmlesion.utils.checkpoints.checksum import read_checksum
from mmlesion.utils.checkpoints.loader import (load_model_checkpoint,
                                               trusting_checkpoints)
from mmlesion.utils.configs.cfg_options import apply_cfg_options


@dataclass(frozen=True)
class DetectorLoadSettings:
    """How :func:`init_lesion_detector` builds and loads a detector.

    Args:
        device (str): torch device the model is moved to.
        cfg_options (dict, optional): ``--cfg-options`` merged into the
            config first, checked (:func:`~mmlesion.utils.configs.cfg_options.
            apply_cfg_options`: a typo or a value of the wrong kind raises).
        allow_partial (bool): accept a checkpoint that fits the model only
            partly (the keys that do not fit are logged).
        init_weights (bool): run ``model.init_weights()`` (pretrained
            backbones included) before any checkpoint is loaded (default,
            as ``init_detector``: the backbone's ``init_cfg`` set to None).
        trust_checkpoint (bool): unpickle the checkpoint fully even where
            it names objects outside the allow-list (``--trust-checkpoint``;
            False: ``MMLESION_TRUST_CHECKPOINTS`` decides).
    """
    device: str = 'cpu'
    cfg_options: Optional[Dict[str, Any]] = None
    allow_partial: bool = False
    init_weights: bool = False
    trust_checkpoint: bool = False


@dataclass
class LoadedDetector:
    """What :func:`init_lesion_detector` gives back.

    Args:
        model (nn.Module): the detector with its weights, in eval mode on
            the settings' device; ``model.cfg`` is :attr:`cfg` and
            ``model.dataset_meta`` the class names (the checkpoint's, else
            the config's test dataset's).
        cfg (Config): the config the model was built from (options merged).
        checkpoint_meta (dict): the checkpoint's ``meta`` (``{}`` without
            a checkpoint or meta).
        checkpoint_sha256 (str, optional): the SHA-256 the load verified
            against the checkpoint's sidecar (None without one: not
            hashed).
    """
    model: torch.nn.Module
    cfg: Config
    checkpoint_meta: Dict[str, Any] = field(default_factory=dict)
    checkpoint_sha256: Optional[str] = None


def config_metainfo(cfg: Config) -> dict:
    """``metainfo`` of a config's test dataset (inside any wrappers), else
    ``METAINFO`` of its class.

    Args:
        cfg (Config): the detector's config.

    Returns:
        dict: e.g. ``{'classes': ('lesion', ), 'palette': [...]}``.
    """
    from mmdet.registry import DATASETS
    dataset = cfg.test_dataloader.dataset
    while not dataset.get('metainfo') and ('dataset' in dataset
                                           or 'datasets' in dataset):
        dataset = dataset.get('dataset') or dataset['datasets'][0]
    if dataset.get('metainfo'):
        return dict(dataset['metainfo'])
    return dict(getattr(DATASETS.get(dataset['type']), 'METAINFO', {}))


def _config(config: Union[str, Path, Config],
            settings: DetectorLoadSettings) -> Config:
    """The config, read if a path, options merged, checked for a model."""
    if isinstance(config, (str, Path)):
        name = str(config)
        if not osp.isfile(name):
            raise FileNotFoundError(f'{name}: config file not found')
        cfg = Config.fromfile(name)
    elif isinstance(config, Config):
        name, cfg = config.filename or '<config>', config
    else:
        raise TypeError('config must be a file path or a Config, not '
                        f'{type(config).__name__}')
    if settings.cfg_options:
        apply_cfg_options(cfg, settings.cfg_options, source=name)
    if not isinstance(cfg.get('model'), dict):
        raise ValueError(f'{name}: has no model (not a detector config)')
    return cfg


def _build(cfg: Config, init_weights: bool) -> torch.nn.Module:
    """The config's model on the CPU, without loaded weights."""
    from mmdet.registry import MODELS
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    if not init_weights and 'init_cfg' in cfg.model.get('backbone', {}):
        cfg.model.backbone.init_cfg = None
    scope = cfg.get('default_scope', 'mmdet')
    if scope is not None:
        init_default_scope(scope)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    if init_weights:
        model.init_weights()
    try:
        meta = config_metainfo(cfg)
    except (AttributeError, KeyError, TypeError):  # no test dataset config
        meta = {}
    meta.setdefault('palette', 'random')
    model.dataset_meta = meta
    model.cfg = cfg
    return model


def init_lesion_detector(
        config: Union[str, Path, Config],
        checkpoint: Optional[str] = None,
        settings: Optional[DetectorLoadSettings] = None,
        preloaded: Optional[dict] = None) -> LoadedDetector:
    """Build the detector of a config and load its weights, checked:
    :func:`mmdet.apis.init_detector`, but built in the config's own
    ``default_scope`` (the one the ``Runner`` trained it in), the weights
    through :func:`~mmlesion.utils.checkpoints.loader.
    load_model_checkpoint` (allow-list, ``.sha256`` sidecar, NaN / Inf and
    an inexact fit refused), and the class names the checkpoint's, else the
    config's test dataset's (never mmdet's COCO default). A given
    :class:`Config` is changed in place, as ``init_detector`` changes it.

    Args:
        config (str | Path | Config): the detector's config, or its path.
        checkpoint (str, optional): its weights, a path or URL (None:
            random weights, or the config's initialisation with
            ``settings.init_weights``).
        settings (DetectorLoadSettings, optional): how to load it.
        preloaded (dict, optional): ``checkpoint`` already read in full:
            not read again, and emptied once its weights are in the model
            (no second copy).

    Returns:
        LoadedDetector: the model, its config and the checkpoint's meta.

    Raises:
        FileNotFoundError: the config or the checkpoint does not exist.
        ValueError: the config has no model, or a bad ``cfg_options``.
        CheckpointMismatchError: the checkpoint does not fit the model.
        UntrustedCheckpointError: the checkpoint names objects outside the
            allow-list and is not trusted.
        CorruptCheckpointError: an unreadable checkpoint or NaN weights.
    """
    settings = settings or DetectorLoadSettings()
    cfg = _config(config, settings)
    model = _build(cfg, settings.init_weights)
    meta: Dict[str, Any] = {}
    sha256 = None
    if checkpoint:
        with trusting_checkpoints(settings.trust_checkpoint):
            ckpt = load_model_checkpoint(
                model, checkpoint, allow_partial=settings.allow_partial,
                preloaded=preloaded)
        meta = ckpt.get('meta') or {}
        if preloaded is not None:  # the weights are the model's now
            preloaded.clear()
        if osp.isfile(checkpoint):  # the sidecar the load just verified
            sha256 = read_checksum(checkpoint)
        dataset_meta = meta.get('dataset_meta')
        if dataset_meta:
            model.dataset_meta = {k.lower(): v
                                  for k, v in dataset_meta.items()}
        elif meta.get('CLASSES'):  # checkpoints of mmdet < 3
            model.dataset_meta = dict(model.dataset_meta,
                                      classes=meta['CLASSES'])
    return LoadedDetector(model.to(settings.device).eval(), cfg, meta,
                          sha256)
