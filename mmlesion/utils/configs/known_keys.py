# Copyright (c) mmlesion contributors. All rights reserved.
"""What a config may hold: the top-level keys the Runner and the tools
read, the keys of mmengine's plain dicts, the builders' own keys, and the
class a ``type`` names in mmdet's registries."""
import dataclasses
import difflib
import functools
import inspect
import logging
import re
import reprlib
from typing import (Any, Iterable, Iterator, List, Mapping, Optional, Set,
                    Tuple)

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
    """Top-level keys a config may set: ``Runner.__init__``'s arguments
    plus :data:`EXTRA_KNOWN_KEYS`."""
    runner_args = set(inspect.signature(Runner.__init__).parameters)
    return frozenset(runner_args - {'self'}) | EXTRA_KNOWN_KEYS


def _read_after_set(key: str, text: str) -> bool:
    """Whether the config files read ``key`` as a variable (a value, not a
    keyword) after its last top-level assignment (``cfg.text`` holds the
    bases first, and a base never sees a later file's variable)."""
    name = re.escape(key)
    sets = list(re.finditer(rf'^{name}\s*=(?!=)', text, re.M))
    return re.search(rf'(?<![\w\'"]){name}\b(?!\s*=(?!=))',
                     text[sets[-1].end():] if sets else text) is not None


#: Top-level dicts of the Runner's own settings: a top-level variable named
#: as one of their keys (or as a dataloader's own key) belongs there.
RUNNER_SECTIONS = ('train_cfg', 'val_cfg', 'test_cfg', 'optim_wrapper',
                   'param_scheduler', 'auto_scale_lr', 'randomness',
                   'env_cfg', 'default_hooks')


def _unscoped(value: Any) -> Any:
    """``value`` without ``_scope_`` keys, tuples as lists (as compared)."""
    if isinstance(value, Mapping):
        return {k: _unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [_unscoped(v) for v in value]
    return value


def config_values(node: Any, path: str) -> Iterator[Tuple[str, Any]]:
    """``(dotted path, value)`` of ``node`` and of everything in it (list
    items by index), ``node`` first."""
    yield path, node
    items = node.items() if isinstance(node, Mapping) else enumerate(
        node) if isinstance(node, (list, tuple)) else ()
    for child, value in items:
        yield from config_values(value, f'{path}.{child}')


#: Top-level keys only a training reads: ``tools/test.py`` builds none of
#: them, so a setting that belongs there changes nothing a test does.
TRAINING_ONLY_KEYS = frozenset({
    'train_cfg', 'val_cfg', 'train_dataloader', 'val_dataloader',
    'val_evaluator', 'optim_wrapper', 'param_scheduler', 'auto_scale_lr',
    'resume', 'allow_partial_load', 'load_from_allowed_missing'
})
#: Top-level keys a ``--cfg-options`` may set although nothing reads them
#: as such: ``apply_cfg_options`` carries ``data_root`` to the datasets.
OPTION_HANDLED_KEYS = frozenset({'data_root'})


@dataclasses.dataclass(frozen=True)
class UnreadKey:
    """A top-level key that has no effect (:func:`find_unknown_config_keys`).
    """
    key: str
    hint: str  #: where it belongs or the closest known key

    def __str__(self) -> str:
        return f'{self.key} ({self.hint})'


def _read_values(cfg: Config, known: Iterable[str]) -> List[Tuple[str, Any]]:
    """``(dotted path, value)`` of everything under the keys ``known``."""
    return [pair for key in cfg.keys() if key in known
            for pair in config_values(_unscoped(cfg[key]), key)]


def _places(key: str, read: Iterable[Tuple[str, Any]]
            ) -> List[Tuple[str, Any]]:
    """Where a top-level ``key`` belongs: the Runner settings (or a
    dataloader's own key) of that name among ``read``."""
    return [(path, old) for path, old in read
            if path.rpartition('.')[2] == key and (
                path.split('.')[0] in RUNNER_SECTIONS or re.fullmatch(
                    rf'\w+_dataloader\.{re.escape(key)}', path))]


def find_unknown_config_keys(cfg: Config, extra_known: Iterable[str] = (),
                             options: Iterable[str] = (),
                             testing: bool = False) -> List[UnreadKey]:
    """Top-level keys of ``cfg`` that look like a mistake and have no effect.

    Of the keys nothing reads, a Runner setting given at the top level
    (``max_epochs = 2`` where ``train_cfg.max_epochs`` is 36) and a
    near-miss of a read key (``trian_cfg``) are reported; other unread
    helper variables are quiet.

    Args:
        cfg (Config): the loaded config.
        extra_known (Iterable[str]): more keys to accept.
        options (Iterable[str]): keys set by ``--cfg-options``: the files
            were run before them, so a file reading the variable does not
            count (``--cfg-options max_epochs=2``).
        testing (bool): only what a test reads counts: a key that belongs
            in a section of :data:`TRAINING_ONLY_KEYS` (the saved config of
            a run given ``--cfg-options train_cfg.max_epochs=1`` keeps its
            ``max_epochs = 36``) is quiet.

    Returns:
        list[UnreadKey]: in config order.
    """
    known = known_config_keys() | set(extra_known)
    text = cfg.text if isinstance(getattr(cfg, 'text', None), str) else ''
    unread = [key for key in cfg.keys() if key not in known and (
        key in options or not _read_after_set(key, text))]
    # what the run reads: a test builds no training section
    used = known - TRAINING_ONLY_KEYS if testing else known
    read = _read_values(cfg, used) if unread else []
    found = []
    for key in unread:
        value = _unscoped(cfg[key])
        places = _places(key, read)
        close = closest(key, set(cfg.keys()) & used, cutoff=.75)
        if places and all(old != value for _, old in places):
            found.append(UnreadKey(
                key, f'{reprlib.repr(value)} here; it belongs in '
                f'{places[0][0]}, which is {reprlib.repr(places[0][1])}'))
        elif not places and close and all(old != value for _, old in read):
            found.append(UnreadKey(key, f'did you mean {close}?'))
    return found


def _as_given(value: Any) -> str:
    """A ``--cfg-options`` value as written on the command line."""
    if isinstance(value, (list, tuple)):
        inner = ','.join(_as_given(v) for v in value)
        return f'[{inner}]' if isinstance(value, list) else f'({inner})'
    return str(value)


def unread_option_error(cfg: Config, option: str,
                        value: Any) -> Optional[str]:
    """Why ``--cfg-options option=value`` would change nothing because
    nothing reads its top-level key (the files' variables were read before
    the options are merged), or None where something does.

    Args:
        cfg (Config): the config before the options are merged.
        option (str): the option's dotted key (``max_epochs``,
            ``trian_cfg.max_epochs``).
        value: its parsed value.

    Returns:
        str | None: one line naming the option as given and the key it
        meant (``did you mean train_cfg.max_epochs=2?``) where one is
        found.
    """
    key, dot, rest = option.partition('.')
    known = known_config_keys()
    if key in known or key in OPTION_HANDLED_KEYS or (dot and key in cfg):
        return None
    shown = _as_given(value)
    places = [] if dot else _places(key, _read_values(cfg, known))
    close = closest(key, known, cutoff=.75)
    if places:
        hint = f'did you mean {places[0][0]}={shown}?'
    elif close:
        hint = f'did you mean {close}{dot}{rest}={shown}?'
    elif option == 'fold':
        hint = f'choose the fold with --fold {shown}'
    else:
        hint = ('give the dotted key of the setting that reads it, e.g. '
                'model.test_cfg.rcnn.score_thr=0.1')
    return (f'--cfg-options {option}={shown}: nothing reads a top-level '
            f'{key!r} (options are merged after the config files ran, so '
            f'their variables keep their values); {hint}')


def check_config_keys(cfg: Config,
                      extra_known: Iterable[str] = (),
                      source: str = 'config',
                      options: Iterable[str] = (),
                      testing: bool = False) -> List[str]:
    """Warn in one line about the top-level keys of ``cfg`` that have no
    effect (:func:`find_unknown_config_keys`).

    Args:
        cfg (Config): the loaded config.
        extra_known (Iterable[str]): more keys to accept.
        source (str): what to name in the warning (the config's path).
        options (Iterable[str]): keys set by ``--cfg-options``.
        testing (bool): check only what a test reads
            (``tools/test.py``; see :func:`find_unknown_config_keys`).

    Returns:
        list[str]: the keys (empty if none; then nothing is logged).
    """
    items = find_unknown_config_keys(cfg, extra_known, options, testing)
    if items:
        print_log(
            f'{source}: {len(items)} top-level key(s) that nothing reads, '
            f'so they have no effect: {", ".join(map(str, items))}',
            logger='current',
            level=logging.WARNING)
    return [item.key for item in items]


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
        if '.' not in type_name and not _holds(registry, type_name):
            continue  # Registry.get would import the name as a module: slow
        try:
            obj = registry.get(type_name)
        except Exception:  # a scope that is not installed
            obj = None
        if obj is not None and all(obj is not f for f in found):
            found.append(obj)
    return found[0] if len(found) == 1 else None


def _holds(registry: Any, name: str) -> bool:
    """Whether ``registry`` or an ancestor registers ``name``: where
    ``Registry.get`` finds a name without a scope."""
    registry.import_from_location()
    while registry is not None:
        if name in registry.module_dict:
            return True
        registry = registry.parent
    return False


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
