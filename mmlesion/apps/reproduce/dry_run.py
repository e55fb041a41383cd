# Copyright (c) mmlesion contributors. All rights reserved.
"""What ``tools/reproduce.py --dry-run`` prints besides the hours: the
commands as one would type them from the repository root
(:func:`display_command`), and the inputs that are not there
(:func:`missing_input_lines`): files or folders a stage reads that no stage
of the plan writes; ``tools/reproduce.py`` checks them before the first
stage too.
"""
import os
import os.path as osp
import re
import shlex
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

from .plan import (Row, Stage, parse_cfg_options, parsed_config,
                   repo_root)

#: options whose value is a file or folder the stage reads
INPUT_OPTIONS = ('--annotations', '--excluded', '--seriesuids', '--ann-3d',
                 '--load-from', '--mined')
#: options whose value is a folder the stage writes into
OUTPUT_FOLDER_OPTIONS = ('--work-dir', '--out-dir', '--train-work-dir',
                         '--export-2d')
#: prefixes of a stage argument that hold a path after them
_PATH_PREFIXES = ('@last:', '@best:')


def display_path(path: str, base: str) -> str:
    """``path`` relative to ``base`` when it is an absolute path inside it.

    Args:
        path (str): a path (or any argument).
        base (str): the folder the commands run from.

    Returns:
        str: the relative path, or ``path`` unchanged.
    """
    if not osp.isabs(path):
        return path
    base = osp.abspath(base)
    try:
        inside = osp.commonpath([base, osp.abspath(path)]) == base
    except ValueError:  # another drive
        return path
    if not inside:
        return path
    rel = osp.relpath(path, base)
    return rel + os.sep if path.endswith(os.sep) and rel != '.' else rel


def display_arg(arg: str, base: str) -> str:
    """A command argument with its path part shown by
    :func:`display_path` (``@last:DIR``, ``key=PATH`` included)."""
    for prefix in _PATH_PREFIXES:
        if arg.startswith(prefix):
            return prefix + display_path(arg[len(prefix):], base)
    key, eq, value = arg.partition('=')
    if eq and not key.startswith('-') and os.sep not in key:
        return f'{key}={display_path(value, base)}'
    return display_path(arg, base)


#: how a shell finds the checkpoint an ``@last:`` / ``@best:`` argument
#: names once the training has run (as ``execute.resolve`` does)
_SHELL_CHECKPOINT = {'@last:': '"$(cat {}/last_checkpoint)"',
                     '@best:': '"$(ls {}/best_*.pth)"'}


def shell_word(arg: str, base: str) -> str:
    """An argument as a shell word: :func:`display_arg`, quoted; an
    ``@last:DIR`` (``@best:DIR``) argument as the command substitution that
    reads the checkpoint DIR/last_checkpoint names (the one DIR/best_*.pth)
    when the line runs, so that the pasted line runs after its training."""
    for prefix, form in _SHELL_CHECKPOINT.items():
        if arg.startswith(prefix):
            folder = display_path(arg[len(prefix):], base).rstrip(os.sep)
            return form.format(shlex.quote(folder or os.sep))
    return shlex.quote(display_arg(arg, base))


def display_command(stage: Stage, base: str) -> str:
    """The stage as one shell line, its paths inside ``base`` relative,
    each checkpoint read by the shell when the line runs
    (:func:`shell_word`).

    Args:
        stage (Stage): the stage.
        base (str): the folder the commands run from.

    Returns:
        str: the command (``stage.command`` with shorter paths), which runs
        as pasted from ``base`` once the stages before it have run.
    """
    return ' '.join(shell_word(a, base) for a in stage.argv)


def _cfg_options(argv: Sequence[str]) -> List[str]:
    """The ``--cfg-options`` of a command (empty without)."""
    if '--cfg-options' not in argv:
        return []
    out = []
    for arg in argv[argv.index('--cfg-options') + 1:]:
        if arg.startswith('--'):
            break
        out.append(arg)
    return out


def _argument_paths(argv: Sequence[str]) -> List[str]:
    """The positional arguments after the script and the values of
    :data:`INPUT_OPTIONS` (paths or not)."""
    start = next((i for i, arg in enumerate(argv)
                  if arg.startswith('tools/') and arg.endswith('.py')), None)
    if start is None:  # no tools/ script
        return []
    out = []
    for arg in argv[start + 1:]:
        if arg.startswith('-'):
            break
        out.append(arg)
    out += [argv[i + 1] for i, arg in enumerate(argv[:-1])
            if arg in INPUT_OPTIONS]
    return [a for a in out if not a.startswith(_PATH_PREFIXES)]


@lru_cache(maxsize=None)
def _config_datasets(config: str) -> Tuple[Optional[str],
                                           Tuple[Tuple[str, str, str], ...]]:
    """A config's top-level ``data_root`` and, per dataset (or evaluator)
    of its dataloaders, ``(dotted prefix, data_root, ann_file)``."""
    from mmlesion.utils.configs.cfg_options import (DATA_ROOT_SECTIONS,
                                                    strings_under)
    cfg = parsed_config(config).to_dict()
    found: Dict[str, Dict[str, str]] = {}
    for section in DATA_ROOT_SECTIONS:
        for key, value in strings_under(cfg.get(section, {}), section):
            prefix, _, name = key.rpartition('.')
            if name in ('data_root', 'ann_file'):
                found.setdefault(prefix, {})[name] = value
    root = cfg.get('data_root')
    return (root if isinstance(root, str) else None, tuple(
        (prefix, v.get('data_root', ''), v.get('ann_file', ''))
        for prefix, v in found.items()))


def _moved(path: str, old_root: Optional[str], new_root) -> str:
    """``path`` under ``new_root`` when it was under ``old_root`` (what
    ``--cfg-options data_root=NEW`` does to the datasets)."""
    old = (old_root or '').rstrip('/')
    if not (old and isinstance(new_root, str) and
            (path == old or path.startswith(old + '/'))):
        return path
    rest = path[len(old):].lstrip('/')
    return osp.join(new_root, rest) if rest else new_root


def config_inputs(config: str, options: Sequence[str]) -> List[str]:
    """The annotation files (``data_root`` + ``ann_file``; the data root
    where a dataset names no file) a config reads with ``options``.

    Args:
        config (str): the config file, relative to the repository root.
        options (Sequence[str]): the stage's ``--cfg-options``.

    Returns:
        list[str]: the paths, relative to the repository root unless
        absolute, in the config's order, each once.
    """
    config_file = osp.join(repo_root(), config)
    if not osp.isfile(config_file):
        return []  # written by an earlier stage
    old_root, datasets = _config_datasets(config_file)
    opts = parse_cfg_options(options)
    out = []
    for prefix, root, ann in datasets:
        root = opts.get(f'{prefix}.data_root',
                        _moved(root, old_root, opts.get('data_root')))
        ann = opts.get(f'{prefix}.ann_file', ann)
        path = osp.join(root, ann) if ann else root
        if path and path not in out:
            out.append(path)
    return out


def stage_inputs(stage: Stage) -> List[str]:
    """What a stage reads: its config's annotation files and the paths of
    its arguments (:data:`INPUT_OPTIONS`, the positional ones).

    Args:
        stage (Stage): the stage.

    Returns:
        list[str]: the paths (some written by earlier stages).
    """
    out = []
    for arg in _argument_paths(stage.argv):
        if arg.endswith('.py'):
            out += config_inputs(arg, _cfg_options(stage.argv))
        elif os.sep in arg or '/' in arg:
            out.append(arg)
    return list(dict.fromkeys(out))


def _plan_writes(rows: Sequence[Row], base: str) -> Tuple[set, List[str]]:
    """The files the stages of ``rows`` write and the folders they write
    into (values of :data:`OUTPUT_FOLDER_OPTIONS`), absolute."""
    files, folders = set(), []
    for stage in (s for row in rows for s in row.stages):
        files.update(osp.normpath(osp.join(base, o)) for o in stage.outputs)
        folders += [osp.normpath(osp.join(base, stage.argv[i + 1]))
                    for i, arg in enumerate(stage.argv[:-1])
                    if arg in OUTPUT_FOLDER_OPTIONS]
    return files, folders


def missing_input_lines(rows: Sequence[Row], base: str) -> List[str]:
    """One line per input of the plan that is not there.

    Args:
        rows (Sequence[Row]): the planned rows.
        base (str): the folder the stages run from (relative inputs are
            read from there; the paths are shown relative to it).

    Returns:
        list[str]: ``missing: PATH (read by STAGES; N row(s)); get it:
        data/README.md#SECTION`` lines (where the data comes from:
        :func:`~mmlesion.datasets.data_layout.readme_section`).
    """
    from mmlesion.datasets.data_layout import readme_section
    files, folders = _plan_writes(rows, base)
    readers: Dict[str, Dict[str, None]] = {}
    row_keys: Dict[str, Dict[str, None]] = {}
    for row in rows:
        for stage in row.stages:
            for path in stage_inputs(stage):
                full = osp.normpath(osp.join(base, path))
                if osp.exists(full) or full in files or any(
                        osp.commonpath([f, full]) == f for f in folders):
                    continue
                name = re.sub(r'_fold\d+$', '_fold<k>', stage.name)
                readers.setdefault(path, {})[name] = None
                row_keys.setdefault(path, {})[row.key] = None
    return [f'missing: {display_path(path, base)} (read by '
            f'{_names(list(names))}; {len(row_keys[path])} row(s)); get it: '
            f'{readme_section(path)}' for path, names in readers.items()]


def _names(names: List[str], most: int = 5) -> str:
    """``a, b, c`` or, past ``most`` names, ``a, b, c, d, e and 3 more``."""
    if len(names) <= most:
        return ', '.join(names)
    return f'{", ".join(names[:most])} and {len(names) - most} more'
