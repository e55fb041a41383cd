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
shape mismatches are refused in one line naming the file, the keys and,
for a detector trained on other classes, its classes against the
config's: :class:`mmlesion.engine.hooks.CheckpointCheckHook`), top-level
config keys that have no effect are listed in a warning
(:func:`mmlesion.utils.check_config_keys`; none for the config a run saved;
only what a test reads is checked: no training section),
and a mistake in the ``_base_`` chain is one line naming the file.
Weights holding NaN or Inf (a diverged training) are refused, naming the
parameters, and so is a checkpoint whose fields have the wrong type.
``--cfg-options`` are checked (a typo in a nested key, a text where a number
belongs) and ``data_root=...`` also moves the datasets that used the config's
own root
(:func:`mmlesion.utils.configs.cfg_options.apply_cfg_options`). A config
or checkpoint path that names no file (the closest one is offered: "did you
mean") and a ``--work-dir`` that is a file are refused in one line before
the model is built.
"""
import argparse
import numbers
import os
import sys

# mmlesion_cli before anything of mmlesion: it silences the stack's known
# start-up warnings (mmlesion_cli/warnings_filter.py).
from mmengine.config import Config

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import (add_cfg_options_argument,
                                      add_fold_argument,
                                      add_scan_check_arguments,
                                      add_trust_checkpoint_argument,
                                      checkpoint_file_error,
                                      config_file_error, tool_config,
                                      work_dir_error)


def parse_args() -> argparse.Namespace:
    """The command line; a config, checkpoint or ``--work-dir`` that
    cannot be used stops it with one line."""
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='dir for metrics, logs, pictures')
    parser.add_argument(
        '--out', type=str, help='dump predictions to a pickle file')
    parser.add_argument(
        '--metrics-out', metavar='FILE',
        help='also write the test metrics as JSON to FILE (atomically)')
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
    error = (config_file_error(args.config)
             or checkpoint_file_error(args.checkpoint)
             or work_dir_error(args.work_dir))
    if error:  # before the model is built
        sys.exit(f'error: {error}')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args: argparse.Namespace) -> Config:
    """Merge command-line options into the config."""
    import mmlesion  # noqa: F401  (registers components, checkpoint loader)
    from mmlesion.utils import check_config_keys
    from mmlesion.utils.configs.whole_config import check_whole_config
    cfg = tool_config(args)
    check_config_keys(cfg, source=args.config,  # what a test reads
                      options=args.cfg_options or (), testing=True)
    check_whole_config(cfg, source=args.config,  # unknown keys, '3' for 3
                       testing=True)
    return cfg


def finite_check_hook(filename: str):
    """The strict :class:`CheckpointCheckHook` that also refuses NaN or
    Inf weights (a diverged training's checkpoint evaluates to 0 findings
    and status 0 otherwise)."""
    from mmlesion.engine.hooks import CheckpointCheckHook
    from mmlesion.utils.checkpoints.loader import check_finite_weights

    class FiniteCheckpointCheckHook(CheckpointCheckHook):

        def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
            check_finite_weights(checkpoint, str(self.filename))
            super().after_load_checkpoint(runner, checkpoint)

    return FiniteCheckpointCheckHook(filename=filename, strict=True)


def main() -> None:
    args = parse_args()
    from mmlesion.utils.checkpoints.loader import (CheckpointMismatchError,
                                                   CorruptCheckpointError)
    from mmlesion.utils.configs.cfg_options import ConfigOptionError
    from mmlesion.utils.writing.refusals import exit_on_refused_write
    try:
        cfg = build_cfg(args)
    except ConfigOptionError as err:
        sys.exit(f'error: {err}')
    from mmlesion.datasets.data_layout import (name_evaluated_data,
                                               warn_data_layout)
    # the split tested, first (also the FROC curve's title)
    print(f'Testing {name_evaluated_data(cfg)} ({args.config})', flush=True)
    warn_data_layout(cfg, ('test_dataloader', ))  # data in place, replicas named
    try:
        _test(args, cfg)
    except CorruptCheckpointError as err:  # names the file and the field
        sys.exit(f'error: {err}')
    except CheckpointMismatchError as err:  # the classes, the keys: a line
        sys.exit(f'error: {err.summary}')
    except OSError as err:  # a read-only or full work dir: one line
        exit_on_refused_write(err, cfg.work_dir)
        raise


def _test(args: argparse.Namespace, cfg: Config) -> None:
    from mmdet.engine.hooks.utils import trigger_visualization_hook
    from mmdet.evaluation import DumpDetResults
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    import torch
    from mmengine.logging import print_log

    from mmlesion.utils.configs.pretty_text import without_yapf
    from mmlesion.engine.hooks import set_checkpoint_check_hook
    from mmlesion_cli.threads import thread_line, thread_record
    from mmlesion.utils import (close_distributed, collective_timeout_errors,
                                guard_distributed, setup_cpu_distributed)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    # Workers end with their launcher; a stuck collective ends the job.
    timeout = guard_distributed(cfg)
    from mmlesion.utils.distributed.slurm import setup_slurm_distributed
    setup_slurm_distributed(cfg)  # --launcher slurm: env, gloo on CPU
    setup_cpu_distributed(cfg)  # gloo + DDP without device ids on CPU
    cfg = without_yapf(cfg)  # no yapf reflow (0.8 s per run)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    set_checkpoint_check_hook(runner, finite_check_hook(args.checkpoint))
    print_log(thread_line(thread_record(torch.get_num_threads())),
              logger='current')  # the threads, and why: they change numbers
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out {args.out}: must end with .pkl')
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    with collective_timeout_errors(timeout):
        metrics = runner.test()
        close_distributed(runner)  # every rank done: leave the group
    if args.metrics_out and runner.rank == 0:
        from mmlesion.utils.writing.atomic import atomic_write_json
        atomic_write_json(args.metrics_out, {
            k: (float(v) if isinstance(v, numbers.Real) else v)
            for k, v in (metrics or {}).items()
        }, indent=1)


if __name__ == '__main__':
    main()
