# Copyright (c) mmlesion contributors. All rights reserved.
"""The 2.5D detector of whole-scan inference, built from its config and
loaded with its weights, checked (used by
:func:`~mmlesion.apis.volume_run.run_volume_inference`; re-exported
by :mod:`mmlesion.apis.volume_inference`).
"""
from typing import Optional, Tuple

import torch
from mmengine.config import Config

from mmlesion.utils.checkpoint_loader import load_model_checkpoint


def build_volume_detector(cfg: Config) -> torch.nn.Module:
    """Build the detector of ``cfg`` as :func:`mmdet.apis.init_detector`
    does, without weights and without its COCO class names.

    ``init_detector(cfg, None)`` warns "checkpoint is None, use COCO
    classes by default" (and forces that warning on through
    ``warnings.simplefilter('once')``), which a user who gave a checkpoint
    must not read. Here the class names come from the config's test
    dataset (:func:`~mmlesion.apis.det_inferencer.config_metainfo`); a
    checkpoint's ``dataset_meta`` replaces them when loaded
    (:func:`init_volume_detector`).

    Args:
        cfg (Config): the detector's config. As in ``init_detector``, the
            backbone's ``init_cfg`` is set to None (no pretrained weights
            downloaded for a model whose weights are loaded next).

    Returns:
        nn.Module: the model on the CPU, with ``cfg`` and ``dataset_meta``.
    """
    from mmdet.registry import MODELS
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    from .det_inferencer import config_metainfo
    if 'init_cfg' in cfg.model.get('backbone', {}):
        cfg.model.backbone.init_cfg = None
    scope = cfg.get('default_scope', 'mmdet')
    if scope is not None:
        init_default_scope(scope)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    try:
        meta = config_metainfo(cfg)
    except (AttributeError, KeyError, TypeError):  # no test dataset config
        meta = {}
    meta.setdefault('palette', 'random')
    model.dataset_meta = meta
    model.cfg = cfg
    return model


def load_volume_detector(cfg: Config,
                         checkpoint: Optional[str],
                         device: str = 'cpu',
                         allow_partial: bool = False
                         ) -> Tuple[torch.nn.Module, dict]:
    """:func:`init_volume_detector`, also returning the checkpoint's meta.

    Args:
        cfg (Config): the detector's config.
        checkpoint (str, optional): its weights (None: random weights).
        device (str): torch device.
        allow_partial (bool): accept a checkpoint that fits only partly.

    Returns:
        tuple: the model (in eval mode on ``device``) and the checkpoint's
        ``meta`` (``{}`` without a checkpoint or meta).
    """
    model = build_volume_detector(cfg)
    meta = {}
    if checkpoint:
        ckpt = load_model_checkpoint(model, checkpoint,
                                     allow_partial=allow_partial)
        meta = ckpt.get('meta') or {}
        dataset_meta = meta.get('dataset_meta')
        if dataset_meta:
            model.dataset_meta = {k.lower(): v
                                  for k, v in dataset_meta.items()}
        elif meta.get('CLASSES'):  # checkpoints of mmdet < 3
            model.dataset_meta = dict(model.dataset_meta,
                                      classes=meta['CLASSES'])
    return model.to(device).eval(), meta


def init_volume_detector(cfg: Config,
                         checkpoint: Optional[str],
                         device: str = 'cpu',
                         allow_partial: bool = False) -> torch.nn.Module:
    """Build the detector of ``cfg`` and load its weights, checked.

    :func:`mmdet.apis.init_detector` loads with ``strict=False``, so a
    checkpoint of another model would only log a warning and the findings
    would come from randomly initialised heads. Here the weights go through
    :func:`mmlesion.utils.load_model_checkpoint` (allow-list, trust switch,
    and the key / shape check of ``tools/test.py``). The class names are
    the checkpoint's ``dataset_meta``, else the config's test dataset's
    (:func:`build_volume_detector`; never mmdet's COCO default).

    Args:
        cfg (Config): the detector's config.
        checkpoint (str, optional): its weights (None: random weights).
        device (str): torch device.
        allow_partial (bool): accept a checkpoint that fits only partly.

    Returns:
        nn.Module: the model, in eval mode on ``device``.
    """
    return load_volume_detector(cfg, checkpoint, device, allow_partial)[0]
