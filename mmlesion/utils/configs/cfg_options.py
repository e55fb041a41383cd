# Copyright (c) mmlesion contributors. All rights reserved.
"""``--cfg-options`` checked (typos, values of the wrong kind), then
merged (:func:`apply_cfg_options`)."""
import logging
import reprlib
from typing import Any, Iterable, List, Mapping, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from .class_signature import signature_of
from .known_keys import (BUILDER_KEYS, TYPO_CUTOFF, closest, config_values,
                         plain_dict_keys, registered, type_name,
                         unread_option_error)
from .planned_variables import (PlannedOptionError, rerun_with,
                                split_planned)


class ConfigOptionError(ValueError):
    """A ``--cfg-options`` key or value that would not do what it says."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_value_type(key: str, old: Any, new: Any, source: str,
                      what: str = 'the config has') -> None:
    """Refuse a value of another kind where the config holds a number or
    a bool (a string reaches torch and fails deep inside, or a non-empty
    string counts as True)."""
    if new is None or old is None:
        return
    if _is_number(old) and not _is_number(new):
        raise ConfigOptionError(
            f'{source}: --cfg-options {key}={new!r}: {what} a number here '
            f'({key}={old!r}), got a {type(new).__name__}; give a number, '
            f'e.g. {key}={old!r}')
    if isinstance(old, bool) and not (isinstance(new, bool) or
                                      new in (0, 1)):
        raise ConfigOptionError(
            f'{source}: --cfg-options {key}={new!r}: {what} True or False '
            f'here ({key}={old!r}), got a {type(new).__name__}')


def _check_new_key(path: List[str], node: Mapping, key: str,
                   full_key: str, value: Any, source: str
                   ) -> Optional[str]:
    """Decide about ``key``, absent from the dict ``node`` at ``path``.

    Returns:
        str | None: a warning to log, or None (the key is accepted).

    Raises:
        ConfigOptionError: the key is a typo or the component does not
            take it.
    """
    where = '.'.join(path) or 'the config'
    existing = [str(k) for k in node.keys()]
    if 'type' in node:  # a component: its constructor decides
        obj = registered(node['type'])
        if obj is not None:
            sig = signature_of(obj)
            accepted = set(sig.names) | BUILDER_KEYS | set(existing)
            open_ended = sig.open_ended
            if key in accepted:
                if full_key.endswith(key):  # the leaf: check its default
                    param = sig.params.get(key)
                    default = (None if param is None
                               or param.default is param.empty else
                               param.default)
                    _check_value_type(full_key, default,
                                      value, source,
                                      what=f'{type_name(node)} expects')
                return None
            close = closest(key, accepted,
                            cutoff=TYPO_CUTOFF if open_ended else .7)
            if not open_ended or close:
                hint = f'; did you mean {".".join(path + [close])}?' \
                    if close else ''
                raise ConfigOptionError(
                    f'{source}: --cfg-options {full_key}: {where} '
                    f'({type_name(node)}) has no {key!r} and '
                    f'{type_name(node)} takes no such argument{hint}')
            return (f'--cfg-options {full_key}: new key {key!r} for '
                    f'{where} ({type_name(node)} passes it on; nothing '
                    'checks that it is used)')
        close = closest(key, existing, cutoff=TYPO_CUTOFF)
    else:
        known = plain_dict_keys(where)
        if known is not None:
            if key in known:
                return None
            close = closest(key, set(known) | set(existing))
            raise ConfigOptionError(
                f'{source}: --cfg-options {full_key}: {where} has no '
                f'{key!r} (it takes {", ".join(sorted(known))})' +
                (f'; did you mean {".".join(path + [close])}?'
                 if close else ''))
        close = closest(key, existing, cutoff=TYPO_CUTOFF)
    if close:
        raise ConfigOptionError(
            f'{source}: --cfg-options {full_key}: the config has no '
            f'{full_key}; did you mean {".".join(path + [close])}? (a new '
            'key would be ignored silently)')
    return (f'--cfg-options {full_key}: not in the config, added as a new '
            f'key of {where} (nothing checks that it is read)')


def check_cfg_options(cfg: Config,
                      options: Mapping[str, Any],
                      source: str = 'config') -> List[str]:
    """Check ``--cfg-options`` against the config before they are merged.

    mmengine's ``merge_from_dict`` creates whatever dotted key it is given,
    so a typo would be ignored silently. A new value must be of the kind
    the config holds (number, bool); a new key must be an argument of the
    component (``type``), a known key of a plain dict, or no near-typo of
    an existing key; a top-level key must be one something reads.

    Args:
        cfg (Config): the config before the options are merged.
        options (Mapping): ``--cfg-options`` as parsed (dotted keys).
        source (str): the config's path, named in errors.

    Returns:
        list[str]: warnings about accepted new keys (also logged).

    Raises:
        ConfigOptionError: naming the option, the closest existing key or
            the expected kind of value.
    """
    warnings = []
    for full_key, value in options.items():
        parts = str(full_key).split('.')
        node: Any = cfg._cfg_dict if isinstance(cfg, Config) else cfg
        unread = unread_option_error(cfg, str(full_key), value)
        if unread is not None:  # a top-level key nothing reads
            raise ConfigOptionError(unread)
        if len(parts) == 1:
            if parts[0] in cfg:
                _check_value_type(full_key, cfg[parts[0]], value, source)
            continue
        if parts[0] not in cfg:
            # a top-level key the config lacks (an unknown one is refused
            # above): mmengine's own plain dicts (randomness, env_cfg...)
            # still have known keys
            if plain_dict_keys(parts[0]) is not None:
                _check_new_key(parts[:1], {}, parts[1], full_key, None,
                               source)
            continue
        for depth, part in enumerate(parts):
            path = parts[:depth]
            if isinstance(node, (list, tuple)):
                if not (part.isdigit() and int(part) < len(node)):
                    raise ConfigOptionError(
                        f'{source}: --cfg-options {full_key}: '
                        f'{".".join(path)} is a list of {len(node)} '
                        f'item(s); {part!r} is not an index of it (0 to '
                        f'{len(node) - 1})')
                node = node[int(part)]
                continue
            if not isinstance(node, Mapping):
                raise ConfigOptionError(
                    f'{source}: --cfg-options {full_key}: '
                    f'{".".join(path)} is {reprlib.repr(node)} '
                    f'({type(node).__name__}), not a dict that could hold '
                    f'{part!r}')
            if part not in node:
                warning = _check_new_key(path, node, part, full_key,
                                         value if depth == len(parts) - 1
                                         else None, source)
                if warning:
                    warnings.append(warning)
                break
            node = node[part]
        else:
            _check_value_type(full_key, node, value, source)
    for warning in warnings:
        print_log(f'{source}: {warning}', logger='current',
                  level=logging.WARNING)
    return warnings


#: Parts of a config whose paths follow the top-level ``data_root``.
DATA_ROOT_SECTIONS = ('train_dataloader', 'val_dataloader', 'test_dataloader',
                      'val_evaluator', 'test_evaluator')


def strings_under(node: Any, prefix: str) -> Iterable[Tuple[str, str]]:
    """(dotted path, value) of every string under ``node``."""
    return ((path, value) for path, value in config_values(node, prefix)
            if isinstance(value, str))


def _get_path(cfg: Any, path: str) -> Any:
    node = cfg
    for part in path.split('.'):
        if isinstance(node, (list, tuple)):
            node = node[int(part)]
        else:
            node = node[part]
    return node


def _set_path(cfg: Any, path: str, value: Any) -> None:
    parent, _, last = path.rpartition('.')
    node = _get_path(cfg, parent)
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def propagate_data_root(cfg: Config, old_root: Any,
                        before: Mapping[str, str],
                        source: str = 'config') -> List[str]:
    """After ``--cfg-options data_root=NEW``: move the dataset paths along
    (mmengine substituted ``data_root`` while parsing), except those the
    options set themselves.

    Args:
        cfg (Config): the config after the options are merged.
        old_root (str): ``data_root`` before the options.
        before (Mapping[str, str]): dotted path -> string, the paths under
            :data:`DATA_ROOT_SECTIONS` before the options.
        source (str): named in the log.

    Returns:
        list[str]: the rewritten dotted paths.
    """
    new_root = cfg.get('data_root')
    if not isinstance(old_root, str) or not old_root or not isinstance(
            new_root, str) or new_root == old_root:
        return []
    changed = []
    for path, value in before.items():
        rest = value[len(old_root):]
        if not value.startswith(old_root) or not (
                rest == '' or old_root.endswith(('/', '\\'))
                or rest[0] in '/\\'):
            continue
        try:
            current = _get_path(cfg, path)
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if current != value:  # set by the options themselves
            continue
        if rest[:1] in ('/', '\\') and new_root.endswith(('/', '\\')):
            rest = rest[1:]
        new_value = new_root + rest
        _set_path(cfg, path, new_value)
        changed.append(path)
    if changed:
        print_log(
            f'{source}: --cfg-options data_root={new_root}: also applied to '
            f'{", ".join(changed)} (they held the config\'s data_root '
            f'{old_root})',
            logger='current', level=logging.INFO)
    else:
        print_log(
            f'{source}: --cfg-options data_root={new_root}: no dataset or '
            f'evaluator of the config uses its data_root {old_root}; set '
            'the paths themselves, e.g. '
            'test_dataloader.dataset.data_root=...',
            logger='current', level=logging.WARNING)
    return changed


def apply_cfg_options(cfg: Config,
                      options: Optional[Mapping[str, Any]],
                      source: str = 'config') -> Config:
    """Check and merge ``--cfg-options`` into ``cfg`` (in place).

    A planned variable (:mod:`.planned_variables`) runs the config file
    again with its value; the others are checked
    (:func:`check_cfg_options`), merged, and a new ``data_root`` carried
    along (:func:`propagate_data_root`).

    Args:
        cfg (Config): the loaded config.
        options (Mapping, optional): ``--cfg-options`` as parsed.
        source (str): the config's path, named in errors.

    Returns:
        Config: ``cfg``.
    """
    if not options:
        return cfg
    planned, options = split_planned(cfg, options)
    if planned:  # a planned variable: the file runs again with its value
        try:
            new = rerun_with(cfg, planned, source)
        except PlannedOptionError as err:
            raise ConfigOptionError(str(err)) from err
        for attr in ('_cfg_dict', '_text'):
            object.__setattr__(cfg, attr, getattr(new, attr))
        print_log(f'{source}: --cfg-options {", ".join(planned)}: the '
                  'config ran again with the planned value(s) given',
                  logger='current', level=logging.INFO)
    if not options:
        return cfg
    check_cfg_options(cfg, options, source)
    old_root = cfg.get('data_root')
    before = {}
    if 'data_root' in options and isinstance(old_root, str):
        for section in DATA_ROOT_SECTIONS:
            if section in cfg:
                before.update(strings_under(cfg[section], section))
    cfg.merge_from_dict(dict(options))
    if 'data_root' in options:
        propagate_data_root(cfg, old_root, before, source)
    return cfg
