# Copyright (c) mmlesion contributors. All rights reserved.
"""Resolve the pretrained-weight sources configs name, without downloading.

``torchvision://`` names resolve with mmengine's bundled table where
torchvision is missing or broken; :func:`check_pretrained_available`
stops an offline training in one line before the model is built.
"""
import difflib
import os.path as osp
import socket
from dataclasses import dataclass
from typing import Any, Dict, List, NamedTuple
from urllib.parse import urlparse

import mmengine
from mmengine.logging import print_log
from mmengine.runner.checkpoint import (CheckpointLoader, _get_mmengine_home,
                                        get_deprecated_model_names,
                                        get_external_models, get_mmcls_models,
                                        get_torchvision_models, load_from_http)

from ..configs.known_keys import config_values

TORCHVISION_PREFIXES = ('torchvision://', 'modelzoo://')
OPENMMLAB_PREFIXES = ('open-mmlab://', 'openmmlab://')
_torchvision_table: Dict[str, str] = {}


class ModelUrls(NamedTuple):
    """torchvision's model URL table and where it came from
    (``'torchvision X.Y'`` or ``'mmengine bundled table (reason)'``)."""
    urls: Dict[str, str]
    source: str


def torchvision_model_urls() -> ModelUrls:
    """The ``torchvision://`` name -> URL table and where it came from.

    Returns:
        tuple[dict, str]: the table and ``'torchvision X.Y'`` or
        ``'mmengine bundled table (reason)'``.
    """
    try:
        import torchvision
        table = get_torchvision_models()
        return ModelUrls(table, f'torchvision {torchvision.__version__}')
    except (ImportError, RuntimeError, OSError) as err:
        reason = f'{type(err).__name__}: {err}'.splitlines()[0][:160]
    if not _torchvision_table:
        _torchvision_table.update(
            mmengine.load(
                osp.join(mmengine.__path__[0], 'hub',
                         'torchvision_0.12.json')))
    return ModelUrls(dict(_torchvision_table), \
        f'mmengine bundled table (torchvision unusable: {reason})')


def _lookup(table: Dict[str, str], name: str, source: str,
            origin: str) -> str:
    if name not in table:
        close = difflib.get_close_matches(name, list(table), n=5)
        raise KeyError(f'{source!r}: no model {name!r} in the {origin}; '
                       f'close names: {close}')
    return table[name]


def resolve_checkpoint_source(source: str) -> str:
    """Return the URL or local path a checkpoint name stands for (nothing
    is downloaded or opened).

    Args:
        source (str): a checkpoint name as in ``init_cfg=dict(
            type='Pretrained', checkpoint=...)`` or ``load_from``.

    Returns:
        str: an ``http(s)://`` URL, or a local path (which may not exist
        yet, e.g. a ``work_dirs/`` checkpoint another config produces).

    Raises:
        KeyError: for a model name that the scheme's table lacks.
        ValueError: for an empty source.
    """
    if not isinstance(source, str) or not source:
        raise ValueError(f'checkpoint source must be a non-empty string, '
                         f'got {source!r}')
    if source.startswith(TORCHVISION_PREFIXES):
        name = source.split('://', 1)[1]
        table, origin = torchvision_model_urls()
        return _lookup(table, name, source, origin)
    if source.startswith(OPENMMLAB_PREFIXES):
        name = source.split('://', 1)[1]
        name = get_deprecated_model_names().get(name, name)
        url = _lookup(get_external_models(), name, source,
                      'OpenMMLab model zoo table')
        if url.startswith(('http://', 'https://')):
            return url
        return osp.join(_get_mmengine_home(), url)
    if source.startswith('mmcls://'):
        return _lookup(get_mmcls_models(), source[8:], source,
                       'mmcls model table')
    return source  # URLs, other mmengine schemes and local paths


def load_from_torchvision_name(filename: str, map_location=None):
    """mmengine loader for ``torchvision://`` / ``modelzoo://`` names that
    works without (or with a broken) torchvision."""
    table, origin = torchvision_model_urls()
    if not origin.startswith('torchvision'):
        print_log(
            f'{filename}: resolved with the {origin}. Install the '
            'torchvision build matching your torch for the newer names.',
            logger='current',
            level=30)
    url = _lookup(table, filename.split('://', 1)[1], filename, origin)
    return load_from_http(url, map_location=map_location)


def register_torchvision_loader() -> None:
    """Install :func:`load_from_torchvision_name` for ``torchvision://``
    and ``modelzoo://``, for the whole process (called once by ``import
    mmlesion``)."""
    CheckpointLoader.register_scheme(
        prefixes=TORCHVISION_PREFIXES,
        loader=load_from_torchvision_name,
        force=True)


class PretrainedUnavailableError(RuntimeError):
    """The pretrained weights of a config cannot be had (one line)."""


@dataclass
class PretrainedWeights:
    """One ``init_cfg=dict(type='Pretrained', checkpoint=...)`` of a config.

    Attributes:
        key (str): where it is, e.g. ``'model.backbone.init_cfg'``.
        checkpoint (str): the name the config gives.
        resolved (str): its URL or local path
            (:func:`resolve_checkpoint_source`).
    """
    key: str
    checkpoint: str
    resolved: str


def pretrained_weights(cfg: Any) -> List[PretrainedWeights]:
    """The pretrained weights a config's model starts from.

    Args:
        cfg (Config | dict): the config (its ``model``).

    Returns:
        list[PretrainedWeights]: one per ``Pretrained`` init_cfg.

    Raises:
        PretrainedUnavailableError: a name its scheme's table lacks.
    """
    out = []
    for key, init in config_values(cfg.get('model'), 'model'):
        if not (isinstance(init, dict) and init.get('type') == 'Pretrained'
                and init.get('checkpoint')):
            continue
        source = init['checkpoint']
        try:
            resolved = resolve_checkpoint_source(source)
        except KeyError as err:  # a name the scheme's table lacks
            raise PretrainedUnavailableError(
                f'{key}.checkpoint: {err.args[0]}') from None
        out.append(PretrainedWeights(key, source, resolved))
    return out


def hub_cache_file(url: str) -> str:
    """Where torch's hub (and so mmengine's ``load_from_http``) keeps the
    file of ``url``: ``<torch.hub.get_dir()>/checkpoints/<file name>``."""
    import torch
    return osp.join(torch.hub.get_dir(), 'checkpoints',
                    osp.basename(urlparse(url).path))


def url_reachable(url: str, timeout_s: float = 3.0) -> bool:
    """Whether a TCP connection to the host of ``url`` opens (nothing is
    sent, nothing fetched)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == 'https' else 80)
    try:
        with socket.create_connection((parsed.hostname, port),
                                      timeout=timeout_s):
            return True
    except OSError:
        return False


def check_pretrained_available(cfg: Any, source: str) -> None:
    """Refuse, in one line, a config whose pretrained weights cannot be had:
    neither a local file nor in torch's hub cache, and the host of their
    URL does not answer.

    Args:
        cfg (Config | dict): the config to train.
        source (str): the config file, named in the message.

    Raises:
        PretrainedUnavailableError: naming the config, the init_cfg, the
            weights, the cache file looked for, and the two ways on (a
            local file in ``init_cfg.checkpoint``, or ``init_cfg=None``).
    """
    # a planned config (tools/plan_dataset.py) switches its backbone's
    # frozen stages and BN mode with its weights: set them together
    planned = 'pretrained' in (cfg.get('planned_names') or ())
    for weights in pretrained_weights(cfg):
        where = weights.resolved
        ways = (f'pass a local file with --cfg-options {weights.key}.'
                f'checkpoint=PATH, or train without pretrained weights with '
                + ('--cfg-options pretrained=False (every stage trained, BN '
                   'in training mode)' if planned else
                   f'--cfg-options {weights.key}=None'))
        if where.startswith(('http://', 'https://')):
            cached = hub_cache_file(where)
            if osp.isfile(cached) or url_reachable(where):
                continue
            raise PretrainedUnavailableError(
                f'{source}: the pretrained weights of {weights.key} '
                f'({weights.checkpoint}) are not in the torch hub cache '
                f'({cached}) and {urlparse(where).hostname} cannot be '
                f'reached (offline?): copy the file there, or {ways}')
        if '://' not in where and not osp.isfile(osp.expanduser(where)):
            raise PretrainedUnavailableError(
                f'{source}: the pretrained weights of {weights.key} '
                f'({weights.checkpoint}): no such file; {ways}')
