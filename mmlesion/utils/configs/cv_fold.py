# Copyright (c) mmlesion contributors. All rights reserved.
"""Pick the cross-validation fold of a config (``--fold K`` of the tools).

The LUNA16 configs (10-fold cross-validation by official subset, 3D
Aggregated Faster R-CNN Sec. IV-A) write ``fold=fold`` into their dataset
dicts when the base is parsed, so ``--cfg-options fold=3`` never reaches
them: :func:`apply_cv_fold` sets the fold after parsing, and rewrites the
``fold<k>`` token of the per-fold paths under :data:`PER_FOLD_KEYS`
(refusing a path that names another fold).
"""
import inspect
import re
from typing import Any, Iterator, List, Optional, Tuple

from mmengine.config import Config

from .known_keys import config_values

#: Keys whose string values may name per-fold files (see the module doc).
PER_FOLD_KEYS = ('load_from', 'resume_from', 'hard_regions_file')

_FOLD_TOKEN = re.compile(r'(?<![A-Za-z])fold(\d+)(?!\d)')


def _dataset_num_folds(ds: dict, where: str, source: str) -> int:
    """``num_folds`` of a fold-taking dataset dict (its value or default)."""
    if 'num_folds' in ds:
        return int(ds['num_folds'])
    ds_type = ds['type']
    cls = ds_type if inspect.isclass(ds_type) else None
    if cls is None:
        # mmlesion's child of mmdet's DATASETS (imports mmlesion.datasets
        # on the first lookup, and searches mmdet's and mmengine's too)
        from mmlesion.registry import DATASETS
        cls = DATASETS.get(ds_type)
    if cls is not None:
        param = inspect.signature(cls.__init__).parameters.get('num_folds')
        if param is not None and param.default is not inspect.Parameter.empty:
            return int(param.default)
    raise ValueError(f'{source}: {where} (type {ds_type!r}) takes a fold but '
                     'its num_folds is neither set nor a default of the '
                     'class, so the fold cannot be checked; set num_folds')


def _walk(node: Any, where: str) -> Iterator[Tuple[str, dict]]:
    """``(dotted path, dict)`` of every dict under ``node``, depth first."""
    return ((path.lstrip('.'), value)
            for path, value in config_values(node, where)
            if isinstance(value, dict))


def find_fold_datasets(cfg: Config) -> List[Tuple[str, dict]]:
    """Dataset dicts of ``cfg`` that take a fold (``type`` and ``fold``
    keys), inside wrappers too, each once.

    Args:
        cfg (Config): a parsed config.

    Returns:
        list[tuple[str, dict]]: dotted path in the config and the dict.
    """
    found, seen = [], set()
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for where, node in _walk(cfg.get(key), key):
            if 'type' in node and 'fold' in node and id(node) not in seen:
                seen.add(id(node))
                found.append((where, node))
    return found


def _rewrite_paths(cfg: Config, old: int, new: int,
                   source: str) -> List[str]:
    """Rewrite ``fold<old>`` tokens under :data:`PER_FOLD_KEYS`."""
    edits = []
    for where, node in _walk(cfg._cfg_dict, ''):
        for key in PER_FOLD_KEYS:
            value = node.get(key) if key in node else None
            if not isinstance(value, str):
                continue
            other = {int(k) for k in _FOLD_TOKEN.findall(value)} - {old, new}
            if other:
                raise ValueError(
                    f'{source}: {where + "." if where else ""}{key}='
                    f'{value!r} names fold {sorted(other)} but the datasets '
                    f'use fold {old}; fix the config before choosing a fold')
            new_value = _FOLD_TOKEN.sub(f'fold{new}', value)
            if new_value != value:
                edits.append((node, key, new_value,
                              f'{where + "." if where else ""}{key}'))
    for node, key, new_value, _ in edits:  # all checked: now rewrite
        node[key] = new_value
    return [name for *_, name in edits]


def apply_cv_fold(cfg: Config, fold: int,
                  source: Optional[str] = None) -> Config:
    """Set the cross-validation fold of every fold-taking dataset of
    ``cfg``, of its top-level ``fold`` variable and of its per-fold paths,
    in place.

    Args:
        cfg (Config): a parsed config.
        fold (int): the held-out fold.
        source (str, optional): the config's name for error messages.
            Defaults to ``cfg.filename``.

    Returns:
        Config: ``cfg``.

    Raises:
        ValueError: no dataset takes a fold, the datasets disagree on their
            current fold, ``fold`` is out of range for a dataset, or a
            per-fold path names another fold than the datasets.
    """
    source = source or getattr(cfg, 'filename', None) or 'config'
    if isinstance(fold, bool) or not isinstance(fold, int):
        raise TypeError(f'{source}: fold must be an int, got {fold!r}')
    datasets = find_fold_datasets(cfg)
    if not datasets:
        raise ValueError(
            f'{source}: no dataset of train/val/test_dataloader takes a '
            "'fold' (e.g. CrossValVolumeDataset), so --fold has nothing to "
            'set')
    current = {int(ds['fold']) for _, ds in datasets}
    if len(current) > 1:
        raise ValueError(
            f'{source}: the datasets use different folds ' + ', '.join(
                f"{w}.fold={ds['fold']}" for w, ds in datasets))
    for where, ds in datasets:
        num_folds = _dataset_num_folds(ds, where, source)
        if not 0 <= fold < num_folds:
            raise ValueError(f'{source}: fold {fold} out of range for {where}'
                             f' ({ds["type"]}, num_folds={num_folds}): '
                             f'choose 0 .. {num_folds - 1}')
    _rewrite_paths(cfg, current.pop(), fold, source)
    for _, ds in datasets:
        ds['fold'] = fold
    if isinstance(cfg.get('fold'), int):
        cfg.fold = fold
    return cfg


def config_num_folds(cfg: Config, source: Optional[str] = None) -> int:
    """Number of folds of a config (its first fold-taking dataset).

    Args:
        cfg (Config): a parsed config.
        source (str, optional): the config's name for error messages.

    Returns:
        int: ``num_folds`` of the dataset (or its class default).

    Raises:
        ValueError: no dataset takes a fold.
    """
    source = source or getattr(cfg, 'filename', None) or 'config'
    datasets = find_fold_datasets(cfg)
    if not datasets:
        raise ValueError(f'{source}: no dataset of train/val/test_dataloader '
                         "takes a 'fold' (e.g. CrossValVolumeDataset)")
    where, ds = datasets[0]
    return _dataset_num_folds(ds, where, source)
