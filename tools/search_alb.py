# Copyright (c) mmlesion contributors. All rights reserved.
"""Search the Auto-lesion Block genotype (ElixirNet, differentiable search).

Runs :class:`mmlesion.nas.ALBSearchLoop` (first-order DARTS: alternating
alpha steps on one half of the training data and weight steps on the other)
through mmengine's runner, with the backbone, neck and RPN loaded from a
trained baseline checkpoint and frozen. The searched genotype is written to
``{work_dir}/genotype.py`` (and ``{work_dir}/genotypes/epoch_{k}.py`` after
each epoch); plug it into an ElixirNet config with
``mmlesion.nas.apply_genotypes`` or by inheriting the snippet.

Example (demo data, CPU)::

    python tools/misc/generate_demo_data.py --out data/demo_deeplesion
    python tools/train.py \
        configs/elixirnet/faster_rcnn_r18-tiny_fpn_1x_demo_deeplesion.py
    python tools/search_alb.py configs/elixirnet/alb_search/\
elixirnet-alb-search_r18-tiny_fpn_demo_deeplesion.py

Paper settings (4 GPUs x 4 images), after training the FPN baseline::

    python -m torch.distributed.run --nproc_per_node=4 tools/search_alb.py \
        configs/elixirnet/alb_search/\
elixirnet-alb-search_r50_fpn_15e_deeplesion_3slice.py \
        --launcher pytorch --load-from BASELINE.pth
"""
import argparse
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmlesion  # noqa: F401  (registers components and checkpoint loader)
from mmlesion.nas import format_genotypes, load_genotypes
from mmlesion.utils import setup_cpu_distributed


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Differentiable search of the ElixirNet Auto-lesion '
        'Block (ALBSearchLoop)')
    parser.add_argument('config', help='search config file path')
    parser.add_argument('--work-dir',
                        help='the dir to save logs, '
                        'checkpoints and the genotype')
    parser.add_argument(
        '--load-from',
        help='baseline checkpoint whose backbone / neck / RPN the search '
        'starts from (overrides `load_from` of the config)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume the search from this checkpoint, or (no value) from '
        'the latest checkpoint in the work dir')
    parser.add_argument('--amp',
                        action='store_true',
                        help='automatic mixed precision for both optimizers')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs, e.g. '
        'train_cfg.max_epochs=2 train_dataloader.dataset.data_root=...')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args: argparse.Namespace) -> Config:
    """Merge the command line into the config and check it is a search.

    Raises:
        FileNotFoundError: config or baseline checkpoint missing.
        ValueError: the config is not an ALB search config.
    """
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'Config not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if cfg.get('train_cfg', {}).get('type') != 'ALBSearchLoop':
        raise ValueError(
            f'{args.config}: train_cfg.type must be ALBSearchLoop for an ALB '
            'search; use tools/train.py for ordinary training.')
    if cfg.get('optim_wrapper',
               {}).get('constructor') != 'ALBSearchOptimWrapperConstructor':
        raise ValueError(
            f'{args.config}: optim_wrapper.constructor must be '
            'ALBSearchOptimWrapperConstructor (weights and alpha need two '
            'optimizers).')
    if args.amp:
        for part in ('weight', 'arch'):
            cfg.optim_wrapper[part].type = 'AmpOptimWrapper'
            cfg.optim_wrapper[part].loss_scale = 'dynamic'
    if args.load_from is not None:
        cfg.load_from = args.load_from
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume: no checkpoint {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    elif not cfg.get('load_from'):
        raise ValueError(
            f'{args.config}: the search starts from a trained baseline '
            '(frozen backbone / neck / RPN); give --load-from CHECKPOINT.')
    elif not osp.isfile(cfg.load_from):
        raise FileNotFoundError(
            f'Baseline checkpoint not found: {cfg.load_from}. Train the '
            'baseline first (tools/train.py with the config named in the '
            'search config) or give --load-from CHECKPOINT.')
    return cfg


def main(argv: Optional[list] = None) -> str:
    """Run the search; return the path of the written genotype snippet."""
    args = parse_args(argv)
    cfg = build_cfg(args)
    setup_cpu_distributed(cfg)  # gloo + DDP without device ids on CPU
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    runner.train()
    path = osp.join(runner.work_dir,
                    cfg.train_cfg.get('genotype_file', 'genotype.py'))
    if osp.isfile(path):  # written by the main process
        runner.logger.info(
            f'Searched ALB genotype ({path}):\n'
            f'{format_genotypes(load_genotypes(path))}'
            'Use it: mmlesion.nas.apply_genotypes(cfg, '
            f"'{path}') or inherit the snippet (see its header).")
    return path


if __name__ == '__main__':
    main()
