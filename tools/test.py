# Copyright (c) mmlesion contributors. All rights reserved.
"""Test (and evaluate) a lesion detector (mmdet's ``tools/test.py`` flags).

Example::

    python tools/test.py CONFIG CHECKPOINT --show-dir vis
    python tools/test.py CONFIG CHECKPOINT --fold 3  # cross-validation fold
    bash tools/dist_test.sh CONFIG CHECKPOINT 2

``--show-dir`` draws detections (green, with scores) and ground truth (red)
on the windowed key slice of every test image, through the config's
``default_hooks.visualization`` hook (``LesionVisualizationHook`` in the
mmlesion configs), into ``work_dir/<timestamp>/<show_dir>``.

The checkpoint must fit the model exactly (missing / unexpected keys and
shape mismatches raise, naming the file:
:class:`mmlesion.engine.hooks.CheckpointCheckHook`), and unknown top-level
config keys are listed in a warning (:func:`mmlesion.utils.check_config_keys`).
"""
import argparse
import os
import os.path as osp

# Only light imports here: --help answers before torch / mmdet / mmlesion
# are imported (in the functions below, after parsing).
from mmengine.config import Config

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import (add_cfg_options_argument,
                                      add_fold_argument,
                                      add_scan_check_arguments,
                                      add_trust_checkpoint_argument)


def parse_args() -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='dir for metrics, logs, pictures')
    parser.add_argument(
        '--out', type=str, help='dump predictions to a pickle file')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='save drawn detections to work_dir/timestamp/show_dir')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    add_fold_argument(parser)
    add_cfg_options_argument(parser)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--local_rank', '--local-rank', type=int, default=0,
        help='process rank on this machine (set by the launcher)')
    add_trust_checkpoint_argument(parser)
    add_scan_check_arguments(parser)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args: argparse.Namespace) -> Config:
    """Merge command-line options into the config."""
    import mmlesion  # noqa: F401  (registers components, checkpoint loader)
    from mmlesion.utils import apply_cv_fold, check_config_keys
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'Config not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.fold is not None:
        apply_cv_fold(cfg, args.fold, source=args.config)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
        if args.fold is not None:
            cfg.work_dir += f'_fold{args.fold}'
    check_config_keys(cfg, source=args.config)
    return cfg


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'Checkpoint not found: {args.checkpoint}')
    cfg = build_cfg(args)
    from mmdet.engine.hooks.utils import trigger_visualization_hook
    from mmdet.evaluation import DumpDetResults
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmlesion.engine.hooks import (CheckpointCheckHook,
                                       set_checkpoint_check_hook)
    from mmlesion.utils import (close_distributed, collective_timeout_errors,
                                guard_distributed, setup_cpu_distributed)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    # Workers end with their launcher; a stuck collective ends the job.
    timeout = guard_distributed(cfg)
    setup_cpu_distributed(cfg)  # gloo + DDP without device ids on CPU
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    set_checkpoint_check_hook(
        runner, CheckpointCheckHook(filename=args.checkpoint, strict=True))
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out {args.out}: must end with .pkl')
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    with collective_timeout_errors(timeout):
        runner.test()
        close_distributed()  # every rank done: leave the group cleanly


if __name__ == '__main__':
    main()
