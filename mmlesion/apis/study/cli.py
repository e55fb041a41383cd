# Copyright (c) mmlesion contributors. All rights reserved.
"""Command-line options shared by every study tool."""
import argparse
import os.path as osp
from typing import Optional

from mmengine.config import DictAction

from .rows import StudySettings
from .study_data import ensure_study_data


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
    parser.add_argument(
        '--generate-data',
        action='store_true',
        help='generate the study data (real DeepLesion lesion sizes, '
        'mmlesion.apis.study.study_data) into <work-dir>/data_deeplesion '
        'and run on it (default: the configs\' data root or --data-root)')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='smoke test: tiny generated data (<work-dir>/data_quick), one '
        'seed, one epoch; the numbers mean nothing')
    return parser


def settings_from_args(args: argparse.Namespace,
                       data_root: Optional[str] = None) -> StudySettings:
    """:class:`StudySettings` from the options of
    :func:`add_study_arguments` (``data_root`` overrides ``--data-root``).

    ``--quick`` runs one seed for one epoch on the ``'quick'`` data preset,
    ``--generate-data`` on the ``'deeplesion'`` preset (both generated into
    the work dir once, :func:`~.study_data.ensure_study_data`) unless a data
    root is given."""
    if data_root is None:
        data_root = args.data_root
    quick = getattr(args, 'quick', False)
    if data_root is None and (quick or getattr(args, 'generate_data', False)):
        preset = 'quick' if quick else 'deeplesion'
        data_root = ensure_study_data(
            osp.join(args.work_dir, f'data_{preset}'), preset)
    return StudySettings(
        work_dir=args.work_dir,
        seeds=(args.seed, ) if quick else (args.seeds or (args.seed, )),
        data_root=data_root,
        max_epochs=1 if quick else args.max_epochs,
        cfg_options=args.cfg_options,
        skip_train=args.skip_train,
        keep_going=args.keep_going,
        overwrite=args.overwrite)
