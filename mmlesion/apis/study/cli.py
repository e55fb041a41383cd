# Copyright (c) mmlesion contributors. All rights reserved.
"""Command-line options shared by every study tool."""
import argparse
from typing import Optional

from mmengine.config import DictAction

from .rows import StudySettings


def add_study_arguments(parser: argparse.ArgumentParser,
                        work_dir: str) -> argparse.ArgumentParser:
    """Add ``--work-dir``, ``--seed(s)``, ``--data-root``, ``--max-epochs``,
    ``--skip-train``, ``--keep-going``, ``--overwrite`` and
    ``--cfg-options`` to a study tool's parser.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
        work_dir (str): the default study folder.

    Returns:
        argparse.ArgumentParser: ``parser``.
    """
    parser.add_argument(
        '--work-dir',
        default=work_dir,
        help='study folder: <row>/seed_<s>/ per run, summary.{json,md} '
        'and summary_froc.png (a row/seed with a result is not run again)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=None,
        help='run every row with each of these seeds (mean ± std); '
        'overrides --seed')
    parser.add_argument(
        '--data-root',
        default=None,
        help='default: the configs\' data/demo_deeplesion/')
    parser.add_argument(
        '--max-epochs',
        type=int,
        default=None,
        help='shorten / lengthen every row alike')
    parser.add_argument(
        '--skip-train',
        action='store_true',
        help='only test the checkpoints of an earlier run')
    parser.add_argument(
        '--keep-going',
        action='store_true',
        help='report a failing row as "not run" and go on')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='re-run a row whose stored result was made with other settings')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser


def settings_from_args(args: argparse.Namespace,
                       data_root: Optional[str] = None) -> StudySettings:
    """:class:`StudySettings` from the options of
    :func:`add_study_arguments` (``data_root`` overrides ``--data-root``)."""
    return StudySettings(
        work_dir=args.work_dir,
        seeds=args.seeds or (args.seed, ),
        data_root=data_root if data_root is not None else args.data_root,
        max_epochs=args.max_epochs,
        cfg_options=args.cfg_options,
        skip_train=args.skip_train,
        keep_going=args.keep_going,
        overwrite=args.overwrite)
