# Copyright (c) mmlesion contributors. All rights reserved.
"""Options shared by several tools.

Each ``add_*`` function adds one group of options to a tool's parser; the
code that acts on them lives in ``mmlesion`` (named in each docstring).
Where an option needs a value of the library (an environment variable's
name, a default), it is imported from the library's module where it is
defined, when it is needed: a switch imports its variable when it is given
(:func:`trust_env` and the like), a config path's check the configs folder
when the file is missing. Building these options imports nothing of
``mmlesion``, so ``--help`` of a tool that needs no library default does
not load torch, mmcv or mmdet.
"""
import argparse
import difflib
import os
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

from mmengine.config import DictAction

from .env_switch import add_env_switch


# The variable of --trust-checkpoint, imported from the library's module
# that reads it when the switch is given (never for --help).
def trust_env() -> str:
    """:data:`mmlesion.utils.checkpoints.loader.TRUST_ENV`
    (``--trust-checkpoint``)."""
    from mmlesion.utils.checkpoints.loader import TRUST_ENV
    return TRUST_ENV


def add_trust_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--trust-checkpoint`` to a tool that loads checkpoints.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
    """
    add_env_switch(
        parser, '--trust-checkpoint', trust_env,
        'unpickle checkpoints fully even where they name objects outside '
        'the safe allow-list: this can run code from the file. Only for '
        'files you made or trust')


def add_fold_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--fold K`` (see :func:`mmlesion.utils.apply_cv_fold`).

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
    """
    parser.add_argument(
        '--fold',
        type=int,
        help='cross-validation fold (held-out part) of every dataset that '
        'takes one, with the per-fold paths of the config '
        '(mmlesion.utils.apply_cv_fold); the default work dir gets a '
        '_foldK suffix')


def add_scan_check_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--force-ct``, ``--resample-nonuniform``, ``--allow-outside-data``
    (read by :func:`scan_check_flags`).

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
    """
    parser.add_argument(
        '--force-ct', action='store_true',
        help='read scans that do not look like CT in Hounsfield units (DICOM '
        'Modality not CT, no air below -200 HU, a label map)')
    parser.add_argument(
        '--resample-nonuniform', action='store_true',
        help='interpolate DICOM series with missing, duplicated or unevenly '
        'spaced slices onto a uniform grid instead of refusing them')
    parser.add_argument(
        '--allow-outside-data', action='store_true',
        help="read .mhd data files outside the header's folder and scans "
        'outside the data root of an annotation file')


def scan_check_flags(args: argparse.Namespace) -> Dict[str, bool]:
    """The switches :func:`add_scan_check_arguments`'s flags turn on
    (:func:`mmlesion.datasets.volumes.scan_switches.switches_given`).

    Args:
        args (argparse.Namespace): the parsed arguments.

    Returns:
        dict: e.g. ``{'force_ct': True}``; empty when none was given.
    """
    from mmlesion.datasets.volumes.scan_switches import switches_given
    return switches_given(args)


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction``; a pair without ``=`` stops in one line
    (``parser.error``) instead of a traceback."""

    def __call__(self, parser, namespace, values, option_string=None):
        for pair in values:
            if '=' not in pair:
                parser.error(
                    f'{option_string} {pair!r}: not KEY=VALUE; give e.g. '
                    'max_iters=500 (a list as key="[a,b]", no spaces '
                    'around =)')
        super().__call__(parser, namespace, values, option_string)


def tool_config(args: argparse.Namespace):
    """The config of ``tools/train.py`` / ``tools/test.py`` with their
    command line merged in: the file (a broken ``_base_`` chain: one line),
    the launcher, ``--cfg-options`` (checked: typos in nested keys, values
    of the wrong kind; a new ``data_root`` also moves the datasets that used
    the config's own), the scan checks (``--force-ct`` and the like),
    ``--fold`` and the work dir (``--work-dir``, else the config's, else
    ``./work_dirs/<config name>[_fold<k>]``).

    Returns:
        mmengine.config.Config: the merged config.
    """
    import os.path as osp

    from mmlesion.datasets.volumes.scan_switches import set_scan_checks
    from mmlesion.utils import apply_cv_fold
    from mmlesion.utils.configs.cfg_options import apply_cfg_options
    from mmlesion.utils.configs.loading import load_config
    cfg = load_config(args.config)
    cfg.launcher = args.launcher
    apply_cfg_options(cfg, args.cfg_options, source=args.config)
    set_scan_checks(cfg, scan_check_flags(args))
    if args.fold is not None:
        apply_cv_fold(cfg, args.fold, source=args.config)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
        if args.fold is not None:
            cfg.work_dir += f'_fold{args.fold}'
    return cfg


def add_cfg_options_argument(parser: argparse.ArgumentParser) -> None:
    """Add mmdet's ``--cfg-options key=value ...``.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=CfgOptionsAction,
        help='override settings of the config, key=value pairs (a list '
        'as key="[a,b]" or key=a,b; no white space)')


def add_display_window_argument(parser: argparse.ArgumentParser) -> None:
    """``--window LOW HIGH``: the display window of a tool's pictures
    (checked by :func:`mmlesion.visualization.lesion_visualizer.window_of`).

    Not given, it is ``None``: the tool draws with the library's
    soft-tissue window (:func:`display_window`).

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
    """
    parser.add_argument(
        '--window',
        type=float,
        nargs=2,
        metavar=('LOW', 'HIGH'),
        help='display window in HU (default: the soft-tissue window of '
        "mmlesion's pictures)")


def display_window(window: Optional[Sequence[float]]) -> Tuple[float, float]:
    """The ``--window`` of :func:`add_display_window_argument`, checked;
    the library's soft-tissue window when it was not given.

    Args:
        window (sequence[float], optional): ``args.window``.

    Returns:
        tuple[float, float]: ``(low, high)`` in HU.
    """
    from mmlesion.visualization.lesion_visualizer import (SOFT_TISSUE_WINDOW,
                                                          window_of)
    return window_of(SOFT_TISSUE_WINDOW if window is None else window)


def add_slurm_arguments(parser: argparse.ArgumentParser,
                        after: str) -> argparse._ArgumentGroup:
    """The options of ``--executor slurm`` (``tools/reproduce.py``,
    ``tools/luna16_cv.py``): partition, CPUs, memory, time limit,
    ``--no-wait`` and ``--status``.

    Args:
        parser: the tool's parser.
        after (str): what to run again after ``--no-wait`` (help text).

    Returns:
        the argument group (for tool-specific options).
    """
    slurm = parser.add_argument_group('Slurm (--executor slurm)')
    slurm.add_argument('--partition', help='Slurm partition')
    slurm.add_argument('--cpus-per-task', type=int, default=8,
                       help='CPUs of each job (default %(default)s)')
    slurm.add_argument('--mem-gb', type=int, default=32,
                       help='memory of each job, 0 for the partition\'s '
                       'default (default %(default)s)')
    slurm.add_argument('--max-minutes', type=int, default=1440,
                       help='longest time limit asked for; each job asks '
                       'twice its estimate, at least 30 minutes '
                       '(default %(default)s)')
    slurm.add_argument('--no-wait', action='store_true',
                       help=f'submit and return (then --status, and the '
                       f'same command again {after})')
    slurm.add_argument('--status', action='store_true',
                       help='print every submitted job: state, node, '
                       'elapsed time, log, last line of a failure')
    return slurm


#: Least :class:`difflib.SequenceMatcher` ratio of a name offered instead
#: of a missing file's.
_CLOSE_CUTOFF = .5


def closest_file(path: str, pattern: str,
                 root: Optional[Path] = None) -> Optional[str]:
    """The file whose name is closest to that of a missing file, if any is
    close enough (:data:`_CLOSE_CUTOFF`).

    Looked for in the folder of ``path`` (shown as given there) and, when
    ``root`` is given, anywhere under it (shown relative to the working
    folder, e.g. ``configs/demo/x.py`` in a clone, else as an absolute
    path; ``_base_`` folders, whose pieces no tool runs, left out).

    Args:
        path (str): the missing file, as given.
        pattern (str): the names looked at, e.g. ``'*.py'``.
        root (Path, optional): a folder searched recursively as well.

    Returns:
        str, optional: the closest path.
    """
    given = Path(path)
    found: Dict[Path, str] = {}
    if os.path.isdir(given.parent):
        found.update((p.resolve(), str(given.parent / p.name))
                     for p in sorted(given.parent.glob(pattern)))
    if root is not None and os.path.isdir(root):
        here = Path.cwd().resolve()
        for p in sorted(root.rglob(pattern)):
            if '_base_' not in p.relative_to(root).parts:
                p = p.resolve()
                found.setdefault(p, str(p.relative_to(here) if here in
                                        p.parents else p))
    scored = sorted(
        (-difflib.SequenceMatcher(None, given.name, key.name).ratio(), i,
         shown) for i, (key, shown) in enumerate(found.items()))
    return scored[0][2] if scored and -scored[0][0] >= _CLOSE_CUTOFF \
        else None


def missing_file_error(option: str, path: Optional[str], pattern: str,
                       fix: str, root: Optional[Path] = None) -> Optional[str]:
    """One line for a file argument that names no file, else ``None``.

    Args:
        option (str): how the file is given, e.g. ``'config'``.
        path (str, optional): the path as given (``None``: not given).
        pattern (str): names of such files, for "did you mean" (``'*.py'``).
        fix (str): what to give instead when no close name exists.
        root (Path, optional): searched for close names as well
            (:func:`closest_file`).

    Returns:
        str, optional: ``'<option> <path>: no such file; did you mean
        <closest>?'`` (or ``'; <fix>'``, or ``' is a folder; <fix>'``).
    """
    if path is None or os.path.isfile(path):
        return None
    if os.path.isdir(path):
        return f'{option} {path} is a folder; {fix}'
    close = closest_file(path, pattern, root)
    hint = f'did you mean {close}?' if close else fix
    return f'{option} {path}: no such file; {hint}'


def config_file_error(path: Optional[str],
                      option: str = 'config') -> Optional[str]:
    """One line for a config path that names no file, with the closest
    config of its folder or of mmlesion's configs (a clone's ``configs/``,
    an install's copy: :func:`~mmlesion.utils.configs.lookup.configs_dir`).

    Args:
        path (str, optional): the config as given.
        option (str): how it is given, e.g. ``'--fpr-config'``.

    Returns:
        str, optional: the error, ``None`` for an existing file.
    """
    if path is None or os.path.isfile(path):
        return None
    from mmlesion.utils.configs.lookup import configs_dir
    configs = configs_dir()
    return missing_file_error(
        option, path, '*.py', 'give a config file (.py), e.g. one under '
        f'{configs}', configs)


def checkpoint_file_error(path: Optional[str],
                          option: str = 'checkpoint') -> Optional[str]:
    """One line for a checkpoint path that names no file, with the closest
    ``.pth`` of its folder.

    Args:
        path (str, optional): the checkpoint as given.
        option (str): how it is given.

    Returns:
        str, optional: the error, ``None`` for an existing file.
    """
    return missing_file_error(
        option, path, '*.pth', 'give a .pth file that tools/train.py wrote '
        '(in its work dir, e.g. work_dirs/CONFIG_NAME/epoch_12.pth; the '
        "work dir's last_checkpoint names the newest)")


def work_dir_error(path: Optional[str],
                   option: str = '--work-dir') -> Optional[str]:
    """One line for a work dir that cannot be a folder: it, or a folder
    above it, is a file.

    Args:
        path (str, optional): the work dir as given (``None``: not given).
        option (str): how it is given.

    Returns:
        str, optional: the error, ``None`` when the folder exists or can be
        made.
    """
    if path is None:
        return None
    given = Path(path)
    for folder in (given, *given.parents):  # os.path: never raises
        if os.path.isdir(folder):
            return None
        if os.path.exists(folder):
            where = 'is a file' if folder == given else (
                f'is inside {folder}, a file')
            return (f'{option} {path} {where}; give a folder (it is '
                    'created if missing)')
    return None


def check_config_file(parser: argparse.ArgumentParser, option: str,
                      path: str) -> None:
    """Stop with :func:`config_file_error`'s line (the parser's usage,
    exit code 2) when a config file does not exist.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
        option (str): how the config is given, e.g. ``'--config'``.
        path (str): the path as given.
    """
    error = config_file_error(path, option)
    if error:
        parser.error(error)
