# Copyright (c) mmlesion contributors. All rights reserved.
"""What a config may hold: the top-level keys mmengine's Runner and the
tools read (:func:`check_config_keys` warns about the others), the keys of
mmengine's plain dicts, the builders' own keys, and the class a ``type``
names in mmdet's registries. Read by :mod:`.cfg_options` and
:mod:`.whole_config`."""
import difflib
import functools
import inspect
import logging
import re
from typing import Any, Iterable, List, Mapping, Optional, Set

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import Runner

#: Top-level keys read by mmengine's Runner besides its ``__init__``
#: arguments (``Runner.from_cfg``, ``wrap_model``, ``train``), by the
#: config system and by mmdet / mmlesion tools.
EXTRA_KNOWN_KEYS = frozenset({
    '_base_', 'custom_imports', 'runner_type', 'model_wrapper_cfg',
    'find_unused_parameters', 'sync_bn', 'compile',
    'activation_checkpointing', 'efficient_conv_bn_eval', 'tta_model',
    'tta_pipeline', 'launcher', 'work_dir', 'resume', 'load_from',
    'allow_partial_load',  # tools/train.py: load_from may not fit exactly
    'load_from_allowed_missing',  # tools/train.py: key prefixes load_from
    # may lack (a training stage's checkpoint)
    'searched_config_base'  # tools/search_alb.py: config it writes for
})


def known_config_keys() -> frozenset:
    """Top-level keys a config may set for ``tools/train.py`` / ``test.py``.

    Returns:
        frozenset: ``Runner.__init__``'s arguments plus
        :data:`EXTRA_KNOWN_KEYS`.
    """
    runner_args = set(inspect.signature(Runner.__init__).parameters)
    runner_args.discard('self')
    return frozenset(runner_args) | EXTRA_KNOWN_KEYS


def _is_referenced(key: str, text: str) -> bool:
    """Whether ``key`` is read as a variable somewhere in the config text.

    Config files define helper variables (``train_pipeline``,
    ``max_epochs``...) that other fields use; mmengine substitutes them
    while parsing, so a variable counts as used when its name occurs as a
    value (``pipeline=train_pipeline``, ``{{_base_.train_pipeline}}``,
    ``_base_.train_pipeline``), not as an assignment target or a keyword
    (``max_epochs=12`` inside ``train_cfg``).
    """
    name = re.escape(key)
    return re.search(rf'(?<![\w\'"]){name}\b(?!\s*=(?!=))',
                     text) is not None


def find_unknown_config_keys(cfg: Config,
                             extra_known: Iterable[str] = ()) -> List[str]:
    """Top-level keys of ``cfg`` that the runner ignores and no field uses.

    A key is unknown when it is neither read by the runner / tools
    (:func:`known_config_keys`, ``extra_known``) nor used as a variable by
    the config files (:func:`_is_referenced` on ``cfg.text``, which holds
    the text of the config and of all its bases). ``trian_cfg = dict(...)``
    is such a key: mmengine silently ignores it and trains with the base's
    ``train_cfg``. Keys added by ``--cfg-options`` count as unknown unless
    known, since no config text uses them.

    Args:
        cfg (Config): the loaded config.
        extra_known (Iterable[str]): more keys to accept.

    Returns:
        list[str]: the unknown keys, in config order.
    """
    known = known_config_keys() | set(extra_known)
    text = cfg.text if isinstance(getattr(cfg, 'text', None), str) else ''
    return [
        key for key in cfg.keys()
        if key not in known and not _is_referenced(key, text)
    ]


def check_config_keys(cfg: Config,
                      extra_known: Iterable[str] = (),
                      source: str = 'config') -> List[str]:
    """Warn, listing them, about unknown top-level keys of ``cfg``.

    Used by ``tools/train.py`` and ``tools/test.py`` on the final config
    (after ``--cfg-options``). Each unknown key is listed with the closest
    known key, e.g. ``trian_cfg (did you mean train_cfg?)``.

    Args:
        cfg (Config): the loaded config.
        extra_known (Iterable[str]): more keys to accept.
        source (str): what to name in the warning (the config's path).

    Returns:
        list[str]: the unknown keys (empty if none; then nothing is logged).
    """
    unknown = find_unknown_config_keys(cfg, extra_known)
    if unknown:
        items = []
        for key in unknown:
            close = closest(key, known_config_keys(), cutoff=.75)
            items.append(f'{key} (did you mean {close}?)' if close else key)
        print_log(
            f'{source}: {len(unknown)} top-level key(s) that neither the '
            'runner nor any config field uses, so they have no effect: '
            f'{", ".join(items)}',
            logger='current',
            level=logging.WARNING)
    return unknown


#: Keys of plain (untyped) config dicts that mmengine reads, by path.
PLAIN_DICT_KEYS = {
    'env_cfg': {'cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit'},
    'env_cfg.mp_cfg': {'mp_start_method', 'opencv_num_threads'},
    'randomness': {'seed', 'diff_rank_seed', 'deterministic'},
    'auto_scale_lr': {'enable', 'base_batch_size'},
}
#: Keys of typed dicts that the builder, not the class, consumes.
BUILDER_KEYS = {'type', '_scope_', 'priority', 'constructor',
                'paramwise_cfg'}
#: Similarity (difflib ratio) from which a new key counts as a typo.
TYPO_CUTOFF = .8


def plain_dict_keys(path: str) -> Optional[Set[str]]:
    """Known keys of the untyped dict at ``path`` (None: not known)."""
    if path in PLAIN_DICT_KEYS:
        return PLAIN_DICT_KEYS[path]
    names: Set[str] = set()
    if path == 'env_cfg.dist_cfg':
        import torch.distributed as torch_dist
        names = {'backend', 'timeout'} | set(
            inspect.signature(torch_dist.init_process_group).parameters)
    elif path in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        from torch.utils.data import DataLoader
        # Runner.build_dataloader pops the first ones itself
        names = {'dataset', 'sampler', 'batch_sampler', 'collate_fn',
                 'worker_init_fn', 'num_batch_per_epoch',
                 'disable_subprocess_warning'} | set(
                     inspect.signature(DataLoader.__init__).parameters)
    else:
        return None
    return {n for n in names if n != 'self' and not n.startswith('_')}


def _mmdet_registries() -> List[Any]:
    """mmdet's registries (each also searches mmengine's, its parent)."""
    import mmdet.registry as mmdet_registry
    from mmengine.registry import Registry
    return [
        getattr(mmdet_registry, name) for name in dir(mmdet_registry)
        if isinstance(getattr(mmdet_registry, name), Registry)
        and not name.startswith('MMENGINE_')
    ]


def registered(type_name: Any) -> Optional[Any]:
    """The class (or function) a config ``type`` names, if unambiguous."""
    if not isinstance(type_name, str):
        return type_name if callable(type_name) else None
    # cached while nothing new is registered (a miss imports modules)
    size = sum(
        len(r.module_dict) + (len(r.parent.module_dict) if r.parent else 0)
        for r in _mmdet_registries())
    return _lookup_registered(type_name, size)


@functools.lru_cache(maxsize=None)
def _lookup_registered(type_name: str, registry_size: int) -> Optional[Any]:
    """:func:`registered` for a name, with the registries of that size."""
    found: List[Any] = []
    for registry in _mmdet_registries():
        try:
            obj = registry.get(type_name)
        except Exception:  # a scope that is not installed
            obj = None
        if obj is not None and all(obj is not f for f in found):
            found.append(obj)
    return found[0] if len(found) == 1 else None


def closest(key: str, names: Iterable[str],
            cutoff: float = .6) -> Optional[str]:
    """The name of ``names`` most like ``key``, if any is close enough
    (difflib's ratio of at least ``cutoff``)."""
    close = difflib.get_close_matches(
        key, sorted(str(n) for n in names), n=1, cutoff=cutoff)
    return close[0] if close else None


def type_name(node: Mapping) -> str:
    """How a message names the ``type`` of a config dict."""
    kind = node.get('type')
    return kind if isinstance(kind, str) else getattr(
        kind, '__name__', str(kind))
