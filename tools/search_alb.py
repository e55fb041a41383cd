# Copyright (c) mmlesion contributors. All rights reserved.
"""Search the Auto-lesion Block genotype (ElixirNet, differentiable search).

Runs :class:`mmlesion.nas.ALBSearchLoop` (first-order DARTS: alternating
alpha steps on one half of the training data and weight steps on the other)
through mmengine's runner, with the backbone, neck and RPN loaded from a
trained baseline checkpoint and frozen. Outputs:

* ``{work_dir}/genotype.py``: the searched genotype as a snippet
  (``{work_dir}/genotypes/epoch_{k}.py`` after each epoch);
* a ready config (default ``{work_dir}/<algo>-searched_<rest>.py``,
  ``--out-config`` to choose) that inherits the ElixirNet config named by the
  search config's ``searched_config_base`` (``--target-config`` to choose)
  with the searched genotypes; ``tools/train.py`` trains it directly. Its
  header records where the genotype comes from (search config, baseline
  checkpoint, data, epochs, date, command).

Existing outputs are never replaced without ``--overwrite`` (checked before
the search starts).

Example (demo data, CPU)::

    python tools/misc/generate_demo_data.py --out data/demo_deeplesion
    python tools/train.py \
        configs/elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py
    python tools/search_alb.py configs/elixirnet/demo/\
elixirnet-alb-search_r18-tiny_fpn_deeplesion-demo.py

Paper settings (4 GPUs x 4 images), after training the FPN baseline::

    python -m torch.distributed.run --nproc_per_node=4 tools/search_alb.py \
        configs/elixirnet/alb_search/\
elixirnet-alb-search_r50_fpn_4xb4-15e_deeplesion-3slice.py \
        --launcher pytorch --load-from BASELINE.pth
"""
import argparse
import os
import os.path as osp
import sys
import time
from typing import Optional

from mmengine.config import Config, DictAction

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import add_trust_checkpoint_argument


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
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
    parser.add_argument(
        '--target-config',
        help='ElixirNet config the searched genotypes go into (default: '
        '`searched_config_base` of the search config, relative to it)')
    parser.add_argument(
        '--out-config',
        help='path of the ready config to write (default: '
        '{work_dir}/<algo>-searched_<rest>.py)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an existing genotype.py / ready config')
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
    parser.add_argument(
        '--local_rank', '--local-rank', type=int, default=0,
        help='process rank on this machine (set by the launcher)')
    add_trust_checkpoint_argument(parser)
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


def output_paths(args: argparse.Namespace, cfg: Config) -> dict:
    """Where the search writes; refuse to replace files without
    ``--overwrite``.

    Returns:
        dict: ``genotype`` (snippet), ``target`` (config to inherit) and
        ``config`` (ready config) paths.

    Raises:
        ValueError: no target config is named.
        FileNotFoundError: the target config does not exist.
        FileExistsError: an output exists and ``--overwrite`` is not given.
    """
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.nas.genotype import searched_config_name
    target = args.target_config
    if target is None:
        base = cfg.get('searched_config_base')
        if not base:
            raise ValueError(
                f'{args.config}: no `searched_config_base` (the ElixirNet '
                'config the searched block goes into); give '
                '--target-config CONFIG')
        target = osp.normpath(osp.join(osp.dirname(args.config), base))
    if not osp.isfile(target):
        raise FileNotFoundError(f'Target config not found: {target}')
    paths = dict(
        genotype=osp.join(cfg.work_dir,
                          cfg.train_cfg.get('genotype_file', 'genotype.py')),
        target=target,
        config=args.out_config
        or osp.join(cfg.work_dir, searched_config_name(target)))
    existing = [p for k, p in paths.items() if k != 'target' and osp.exists(p)]
    if existing and not args.overwrite:
        raise FileExistsError(
            f'{", ".join(existing)} already exist(s); pass --overwrite to '
            'replace, or choose another --work-dir / --out-config')
    return paths


def provenance(args: argparse.Namespace, cfg: Config, runner) -> str:
    """Header lines of the ready config: where the genotype comes from."""
    import mmlesion
    data = cfg.train_dataloader.dataset
    loop = cfg.train_cfg
    return '\n'.join([
        'ALB genotype searched by tools/search_alb.py (ALBSearchLoop, '
        'first-order DARTS).',
        f'search config: {args.config}',
        f'baseline checkpoint (frozen backbone / neck / RPN): '
        f'{cfg.load_from}',
        f"data: {data.get('data_root')} split={data.get('split')} "
        f"(halves by split_seed={loop.get('split_seed')})",
        f"epochs: {loop.get('max_epochs')}, iterations: {runner.iter}",
        f"finished: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, "
        f'mmlesion {mmlesion.__version__}',
        'command: python tools/search_alb.py ' +
        ' '.join(sys.argv[1:] if args.argv is None else args.argv),
    ])


def main(argv: Optional[list] = None) -> str:
    """Run the search; return the path of the written ready config."""
    args = parse_args(argv)
    from mmdet.registry import MODELS
    from mmengine.registry import RUNNERS, DefaultScope
    from mmengine.runner import Runner

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.engine.hooks import (CheckpointCheckHook,
                                       set_checkpoint_check_hook)
    from mmlesion.nas import format_genotypes, load_genotypes
    from mmlesion.nas.genotype import write_searched_config
    from mmlesion.utils import setup_cpu_distributed
    args.argv = argv
    cfg = build_cfg(args)
    paths = output_paths(args, cfg)
    setup_cpu_distributed(cfg)  # gloo + DDP without device ids on CPU
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    # The baseline loads partially on purpose (the searched head is new);
    # a --resume of the search itself must match exactly.
    set_checkpoint_check_hook(
        runner,
        CheckpointCheckHook(
            filename=cfg.get('load_from'), strict=bool(cfg.get('resume'))))
    runner.train()
    if not osp.isfile(paths['genotype']):  # only the main process writes
        return paths['config']
    genotypes = load_genotypes(paths['genotype'])
    write_searched_config(genotypes, paths['target'], paths['config'],
                          provenance(args, cfg, runner))
    try:  # the ready config must build (e.g. RTM needs a non_local op)
        with DefaultScope.overwrite_default_scope('mmdet'):
            MODELS.build(Config.fromfile(paths['config']).model)
    except ValueError as err:
        raise ValueError(
            f'{paths["config"]}: the searched genotype does not fit '
            f'{paths["target"]}: {err}. The genotype is in '
            f'{paths["genotype"]}; choose another --target-config (e.g. the '
            'TRPN + ALB config without RTM) and --overwrite.') from err
    runner.logger.info(
        f'Searched ALB genotype ({paths["genotype"]}):\n'
        f'{format_genotypes(genotypes)}'
        f'Ready config: {paths["config"]} (inherits {paths["target"]}); '
        f'train it with python tools/train.py {paths["config"]}')
    return paths['config']


if __name__ == '__main__':
    main()
