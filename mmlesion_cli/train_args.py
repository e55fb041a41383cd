# Copyright (c) mmlesion contributors. All rights reserved.
"""The options of ``tools/train.py`` and the config they make, for the
tools that train: ``tools/train.py`` and ``tools/search_alb.py``'s
``--train`` (which trains the searched config as ``train.py`` would, in
its own process). Building the parser imports nothing of ``mmlesion``;
:func:`build_train_cfg` imports it.
"""
import argparse
import logging
import os
import os.path as osp
import sys
from typing import TYPE_CHECKING, Optional, Sequence

from .common_args import (add_cfg_options_argument, add_fold_argument,
                          add_scan_check_arguments,
                          add_trust_checkpoint_argument, config_file_error,
                          tool_config, work_dir_error)
from .parser import tool_parser

if TYPE_CHECKING:
    from mmengine.config import Config

    from mmlesion.engine.hooks import CheckpointCheckHook


def parse_train_args(doc: Optional[str] = None,
                     argv: Optional[Sequence[str]] = None
                     ) -> argparse.Namespace:
    """The options of ``tools/train.py`` (``doc``: the tool's docstring;
    ``argv``: default the command line); a config or ``--work-dir`` that
    cannot be used stops it with one line."""
    parser = tool_parser(doc)
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual batch size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint, or (no value) from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--allow-partial-load',
        action='store_true',
        help='let load_from miss keys or have other shapes (fine-tuning '
        'from a detector of other classes; configs can set '
        '`allow_partial_load = True`); mmengine then only warns. Never '
        'applies to --resume')
    add_fold_argument(parser)
    add_cfg_options_argument(parser)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher. A rank frozen in a collective ends the job '
        'after MMLESION_DIST_TIMEOUT seconds (1800 unless set) plus the '
        "launcher's grace period (torchrun: 30 s; Slurm: KillWait, 30 s "
        'unless configured)')
    parser.add_argument(
        '--local_rank', '--local-rank', type=int, default=0,
        help='process rank on this machine (set by the launcher)')
    add_trust_checkpoint_argument(parser)
    add_scan_check_arguments(parser)
    args = parser.parse_args(argv)
    error = config_file_error(args.config) or work_dir_error(args.work_dir)
    if error:  # before the runner is built
        sys.exit(f'error: {error}')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_train_cfg(args: argparse.Namespace) -> 'Config':
    """Merge the options of :func:`parse_train_args` into the config."""
    from mmengine.logging import print_log

    import mmlesion  # noqa: F401  (registers components, checkpoint loader)
    from mmlesion.utils import check_config_keys, find_resumable_checkpoint
    from mmlesion.utils.configs.whole_config import check_whole_config
    from mmlesion.utils.checkpoints.resume import check_resumable
    from mmlesion.utils.writing.work_dir_lock import lock_work_dir
    cfg = tool_config(args)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise RuntimeError(
                f'{args.config}: --auto-scale-lr needs '
                '`auto_scale_lr = dict(base_batch_size=...)` in the config.')
        cfg.auto_scale_lr.enable = True
    check_config_keys(cfg, source=args.config,
                      options=args.cfg_options or ())
    check_whole_config(cfg, source=args.config)  # unknown keys, '3' for 3
    # one training per work dir (held until this process ends), before
    # --resume picks a checkpoint there
    lock_work_dir(cfg.work_dir, what='--work-dir')
    if args.resume == 'auto':
        # mmengine's auto-resume trusts last_checkpoint blindly; pick the
        # newest intact checkpoint instead (warns when there is none).
        latest = find_resumable_checkpoint(cfg.work_dir)
        cfg.resume = latest is not None
        if latest is not None:
            cfg.load_from = latest
        elif cfg.get('load_from'):  # start as the config says
            print_log(f'--resume: nothing to resume; starting from the '
                      f"config's load_from {cfg.load_from} instead",
                      logger='current', level=logging.WARNING)
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume: no checkpoint {args.resume}')
        reason = check_resumable(args.resume)
        if reason is not None:
            raise ValueError(f'--resume {args.resume}: cannot resume from '
                             f'it: {reason}')
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def checkpoint_check_hook(cfg: 'Config',
                          args: argparse.Namespace) -> 'CheckpointCheckHook':
    """The check of the checkpoint the run loads (strict for --resume)."""
    from mmlesion.engine.hooks import CheckpointCheckHook
    partial = args.allow_partial_load or cfg.get('allow_partial_load', False)
    resume = bool(cfg.get('resume'))
    return CheckpointCheckHook(
        filename=cfg.get('load_from'),
        strict=resume or not partial,
        allowed_missing=() if resume else cfg.get(
            'load_from_allowed_missing') or ())
