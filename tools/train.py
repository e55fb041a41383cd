# Copyright (c) mmlesion contributors. All rights reserved.
"""Train a lesion detector (mmdet's ``tools/train.py`` flags).

Example::

    python tools/train.py configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py
    python tools/train.py CONFIG --resume            # latest ckpt in work dir
    python tools/train.py CONFIG --fold 3            # cross-validation fold
    bash tools/dist_train.sh CONFIG 2                # 2 processes

Checks a new user relies on: a mistake in the config's ``_base_`` chain is
one line naming the file (:mod:`mmlesion.utils.configs.loading`); top-level
config keys that have no effect (``trian_cfg``, ``max_epochs = 2`` that
belongs in ``train_cfg``) are listed in a warning; ``--resume`` without a value takes
the newest *intact* checkpoint of the work dir (a truncated latest one is
skipped with a warning, none at all is warned about loudly); every loaded
checkpoint (``load_from``, ``--resume``) must fit the model exactly
(:class:`mmlesion.engine.hooks.CheckpointCheckHook`) unless
``--allow-partial-load`` or ``allow_partial_load = True`` in the config
(fine-tuning a detector trained on other classes, as the ``*_ft-6e_*``
configs do); ``load_from_allowed_missing = ['fprn_head.']`` lets
``load_from`` lack just those keys (a later training stage starting from an
earlier stage's checkpoint, e.g. the 3D Aggregated Faster R-CNN from its
RPN stage), every other mismatch is still refused, in one line (the keys
and, for other classes, the checkpoint's against the config's). ``--resume``
with nothing to resume starts as the config says (from its ``load_from``, if
any).

``--cfg-options`` are checked before they are merged: a top-level key
nothing reads is refused (``max_epochs=2``: the config files ran before the
options, so their ``train_cfg`` keeps 36; did you mean
``train_cfg.max_epochs=2``?), a nested key the
config lacks is refused when it is a typo (``model.test_cfg.rcnn.score_thres``:
did you mean ``score_thr``?) or when the component does not take it, a text
where the config holds a number (``train_cfg.max_epochs=ten``) is refused,
and ``data_root=...`` also moves the datasets that used the config's root
(:func:`mmlesion.utils.configs.cfg_options.apply_cfg_options`). The work dir is
locked for the run: a second training into it is refused, naming the first
one's PID, host and start time (:mod:`mmlesion.utils.writing.work_dir_lock`). A
config path that names no file (the closest config is offered: "did you
mean") and a ``--work-dir`` that is a file are refused in one line before
anything is built.

A full disk, a quota, a read-only file system or a work dir without write
permission ends the training in one line, without a traceback: the file
being written (a checkpoint: its final name), the bytes it needed and the
bytes free there, and how to go on (``--resume``); checkpoints are written
atomically, so the ones already saved stay intact and none is left
half-written (:mod:`mmlesion.utils.writing.refusals`).

The threads torch computes with, and why (a busy machine: fewer, chosen
by :mod:`mmlesion_cli.threads`), are one line at the start, in the log of a
fresh and of a resumed run alike.

A finished training ends with a short summary of where everything went:
the work dir with the checkpoints (the last one, and the best one with its
val score where the config keeps one: ``save_best``) and the config copy,
and its ``<timestamp>/`` folder with the log and ``vis_data/``
(:mod:`mmlesion.utils.reporting.summary`).
"""
import argparse
import os.path as osp
import sys
from typing import TYPE_CHECKING, Optional, Sequence

# mmlesion_cli before anything of mmlesion: it silences the stack's known
# start-up warnings (mmlesion_cli/warnings_filter.py).
from mmengine.config import Config

from mmlesion_cli.train_args import build_train_cfg as build_cfg
from mmlesion_cli.train_args import checkpoint_check_hook, parse_train_args

if TYPE_CHECKING:
    from mmengine.runner import Runner


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line (:func:`mmlesion_cli.train_args.parse_train_args`)."""
    return parse_train_args(__doc__, argv)


def main() -> None:
    args = parse_args()
    from mmlesion.utils.checkpoints.loader import (CheckpointMismatchError,
                                                   CorruptCheckpointError)
    from mmlesion.utils.checkpoints.pretrained import \
        PretrainedUnavailableError
    from mmlesion.utils.configs.cfg_options import ConfigOptionError
    from mmlesion.utils.writing.work_dir_lock import WorkDirBusyError
    try:
        cfg = build_cfg(args)
    except (ConfigOptionError, WorkDirBusyError,
            CorruptCheckpointError) as err:
        sys.exit(f'error: {err}')
    except ValueError as err:  # --resume of a file that is no checkpoint
        if not str(err).startswith('--resume'):
            raise
        sys.exit(f'error: {err}')
    except OSError as err:  # a read-only or full work dir (its lock file)
        exit_on_refused_write(err, args.work_dir or osp.join(
            'work_dirs', osp.splitext(osp.basename(args.config))[0]))
        raise
    try:
        runner = run_training(cfg, args)
    except CheckpointMismatchError as err:  # load_from / --resume: a line
        sys.exit(f'error: {err.summary}')
    except PretrainedUnavailableError as err:  # offline, not cached
        sys.exit(f'error: {err}')
    except OSError as err:  # a full disk while a checkpoint is written
        exit_on_refused_write(err, cfg.work_dir)
        raise
    if runner is not None:  # the main process
        print_training_summary(runner)


def run_training(cfg: Config,
                 args: argparse.Namespace) -> Optional['Runner']:
    """Build the runner and train; the runner on the main process, else
    None."""
    from mmlesion.datasets.data_layout import warn_data_layout
    warn_data_layout(cfg)  # each data root in its layout, replicas named
    from mmlesion.utils.checkpoints.pretrained import \
        check_pretrained_available
    # then pretrained weights neither cached nor reachable: one line, not
    # a URLError once the model is built
    check_pretrained_available(cfg, source=args.config)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    from mmlesion.utils.configs.pretty_text import without_yapf

    from mmlesion.engine.hooks import set_checkpoint_check_hook
    from mmlesion.utils import (close_distributed, collective_timeout_errors,
                                guard_distributed, setup_cpu_distributed)

    # Workers end with their launcher; a stuck collective ends the job.
    timeout = guard_distributed(cfg)
    from mmlesion.utils.distributed.slurm import setup_slurm_distributed
    setup_slurm_distributed(cfg)  # --launcher slurm: env, gloo on CPU
    setup_cpu_distributed(cfg)  # gloo + DDP without device ids on CPU
    cfg = without_yapf(cfg)  # no yapf reflow (0.8 s per run)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    # replaces the configs' own (custom_hooks): one check, this strictness
    set_checkpoint_check_hook(runner, checkpoint_check_hook(cfg, args))
    log_threads()  # console and the run's log, fresh or resumed
    from mmengine.dist import is_main_process
    with collective_timeout_errors(timeout):
        runner.train()
        main_process = is_main_process()  # before the group is left
        close_distributed(runner)  # every rank done: leave the group
    return runner if main_process else None


def log_threads() -> None:
    """Log the threads torch computes with and why, in one line (the
    console and, once the runner is built, the run's log)."""
    import torch
    from mmengine.logging import print_log

    from mmlesion_cli.threads import thread_line, thread_record
    print_log(thread_line(thread_record(torch.get_num_threads())),
              logger='current')


def exit_on_refused_write(err: OSError, work_dir: str) -> None:
    """Exit with one line when ``err`` is a write the file system refused
    (full, over quota, read-only, no permission in the work dir): the
    file, the bytes it needed and the bytes free, and how to go on
    (``--resume``); return for any other error.

    Args:
        err (OSError): what ended the training.
        work_dir (str): the run's work dir.
    """
    from mmlesion.utils.checkpoints.resume import recorded_last_checkpoint
    from mmlesion.utils.writing import refusals
    saved = recorded_last_checkpoint(work_dir) or ''  # in this work dir
    if osp.dirname(osp.abspath(saved)) == osp.abspath(work_dir):
        saved = osp.basename(saved)
    resume = ('run the same command with --resume (without a value: it '
              'goes on from the newest intact checkpoint of the work dir'
              + (f', last saved {saved}' if saved else '') + ')')
    refusals.exit_on_refused_write(err, work_dir, resume)


def print_training_summary(runner: 'Runner') -> None:
    """Print (and log) where the training put everything: work dir, last
    and best checkpoints, the ``<timestamp>/`` log folder, the config."""
    from mmengine.logging import print_log

    from mmlesion.utils.reporting.summary import runner_training_summary
    print_log(runner_training_summary(runner), logger='current')


if __name__ == '__main__':
    main()
