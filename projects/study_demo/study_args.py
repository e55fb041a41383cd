# Copyright (c) mmlesion contributors. All rights reserved.
"""The options of every synthetic study tool, defined without importing
torch or mmlesion (a tool's ``--help`` answers at once); the code that acts
on them is :mod:`projects.study_demo.study`."""
import argparse

from mmlesion_cli.common_args import add_cfg_options_argument


def add_jobs_argument(parser: argparse.ArgumentParser) -> None:
    """``--jobs N``: run the seeds of a study in N processes side by side
    (:mod:`projects.study_demo.study.seed_jobs`).

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
    """
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='run the seeds in this many processes side by side (each '
        'OMP_NUM_THREADS = cores / jobs unless set; logs in '
        '<work-dir>/jobs/); the same numbers as one process')


def add_study_arguments(
        parser: argparse.ArgumentParser,
        work_dir: str,
        data_root: str = 'data/demo_deeplesion/',
        generated: str = 'data_deeplesion',
        generated_what: str = 'real DeepLesion lesion sizes',
        quick_data: str = 'data_quick',
        max_epochs_help: str = 'shorten / lengthen every row alike'
) -> argparse.ArgumentParser:
    """Add ``--work-dir``, ``--seed(s)``, ``--data-root``, ``--max-epochs``,
    ``--skip-train``, ``--keep-going``, ``--overwrite``, ``--cfg-options``,
    ``--jobs``, ``--generate-data`` and ``--quick`` to a study tool's
    parser.

    Args:
        parser (argparse.ArgumentParser): the tool's parser.
        work_dir (str): the default study folder.
        data_root (str): the configs' data root (shown in the help).
        generated (str): the folder under the work dir that
            ``--generate-data`` writes (shown in the help).
        generated_what (str): what the generated data is (help).
        quick_data (str): the folder of the ``--quick`` data (help).
        max_epochs_help (str): the help of ``--max-epochs``.

    Returns:
        argparse.ArgumentParser: ``parser``.
    """
    parser.add_argument(
        '--work-dir',
        default=work_dir,
        help='study folder: <row>/seed_<s>/ per run, summary.{json,md} '
        'and summary_froc.png (a row/seed with a result is not run again)')
    parser.add_argument(
        '--seed', type=int, default=0,
        help='random seed of every row (one run each)')
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
        help=f'study data folder (default: the configs\' {data_root})')
    parser.add_argument(
        '--max-epochs',
        type=int,
        default=None,
        help=max_epochs_help)
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
    add_cfg_options_argument(parser)
    add_jobs_argument(parser)
    parser.add_argument(
        '--generate-data',
        action='store_true',
        help=f'generate the study data ({generated_what}, '
        f'projects.study_demo.study_data) into <work-dir>/{generated} '
        'and run on it (default: the configs\' data root or --data-root)')
    parser.add_argument(
        '--quick',
        action='store_true',
        help=f'smoke test: tiny generated data (<work-dir>/{quick_data}), '
        'one seed, one epoch; the numbers mean nothing')
    return parser
