# Copyright (c) mmlesion contributors. All rights reserved.
"""Warn about top-level config keys that nothing reads (typos)."""
import difflib
import inspect
import logging
import re
from typing import Iterable, List

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
        known = sorted(known_config_keys())
        items = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
            items.append(f'{key} (did you mean {close[0]}?)'
                         if close else key)
        print_log(
            f'{source}: {len(unknown)} top-level key(s) that neither the '
            'runner nor any config field uses, so they have no effect: '
            f'{", ".join(items)}',
            logger='current',
            level=logging.WARNING)
    return unknown
