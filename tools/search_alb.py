# Copyright (c) mmlesion contributors. All rights reserved.
"""Search the Auto-lesion Block genotype (ElixirNet, differentiable search).

Runs :class:`mmlesion.methods.elixirnet.nas.ALBSearchLoop` (first-order DARTS: alternating
alpha steps on one half of the training data and weight steps on the other;
or, with ``train_cfg.strategy='random'``, random search with weight sharing
for Table 6's "random ALB") through mmengine's runner, with the backbone,
neck and RPN loaded from a trained baseline checkpoint and frozen. Outputs:

* ``{work_dir}/genotype.py``: the searched genotype as a snippet
  (``{work_dir}/genotypes/epoch_{k}.py`` after each epoch);
* a ready config (default ``{work_dir}/<algo>-searched_<rest>.py``,
  ``--out-config`` to choose) that inherits the ElixirNet config named by the
  search config's ``searched_config_base`` (``--target-config`` to choose)
  with the searched genotypes; ``tools/train.py`` trains it directly. Its
  header records where the genotype comes from (search config, baseline
  checkpoint, data, epochs, date, command). A search outside the paper's
  (Table 6) is tagged in the name: ``<algo>-searched-dartsspace_<rest>.py``
  (``op_names`` = ``DARTS_OP_NAMES``), ``<algo>-searched-random_<rest>.py``
  (``strategy='random'``).

``--train`` then trains that ready config in the same process, under the
same launcher (the process group of the search is reused), as
``tools/train.py CONFIG --work-dir WORK_DIR`` would (the equivalent command
is printed); its work dir defaults to ``<folder of the search's work dir>/
<ready config name>``, next to the search's. Rerunning the same command after
the search finished skips the search (the ready config exists) and trains,
resuming the training's latest checkpoint if there is one.

Existing outputs are never replaced without ``--overwrite`` (checked before
the search starts).

Example (demo data, CPU)::

    python tools/misc/generate_demo_data.py --out data/demo_deeplesion
    python tools/train.py \
        configs/elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py
    python tools/search_alb.py configs/elixirnet/demo/\
elixirnet-alb-search_r18-tiny_fpn_deeplesion-demo.py

Paper settings (4 GPUs x 4 images), after training the FPN baseline, then
training the searched ElixirNet (4 GPUs x 2 images)::

    python -m torch.distributed.run --nproc_per_node=4 tools/search_alb.py \
        configs/elixirnet/alb_search/\
elixirnet-alb-search_r50_fpn_4xb4-15e_deeplesion-3slice.py \
        --launcher pytorch --load-from BASELINE.pth --train
"""
import argparse
import gc
import os
import os.path as osp
import sys
import time
from typing import List, Optional

from mmengine.config import Config, DictAction

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import add_trust_checkpoint_argument
from mmlesion_cli.train_args import (build_train_cfg, checkpoint_check_hook,
                                     parse_train_args)


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
    parser.add_argument(
        '--train',
        action='store_true',
        help='after the search, train the ready config in this process '
        '(same launcher), as tools/train.py would; if the ready config '
        'already exists (and no --overwrite), skip the search and train')
    parser.add_argument(
        '--train-work-dir',
        help='work dir of --train (default: <folder of the search work '
        'dir>/<ready config name without .py>)')
    parser.add_argument(
        '--train-cfg-options',
        nargs='+',
        metavar='KEY=VALUE',
        help='--cfg-options of the --train run (the search\'s '
        '--cfg-options do not apply to it)')
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
        from mmlesion.utils.configs.cfg_options import apply_cfg_options
        apply_cfg_options(cfg, args.cfg_options, source=args.config)
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


def search_tags(cfg: Config) -> List[str]:
    """Config-name tags of a search outside the paper's (Table 6):
    ``'dartsspace'`` (DARTS' operations), ``'random'`` (random strategy)."""
    from mmlesion.methods.elixirnet.models.alb_ops import ALB_OP_NAMES
    from mmlesion.methods.elixirnet.nas.genotype import search_space_tag
    head = cfg.get('model', {}).get('roi_head', {}).get('bbox_head', {})
    tags = [search_space_tag(head.get('op_names', None) or ALB_OP_NAMES)]
    if cfg.train_cfg.get('strategy', 'differentiable') != 'differentiable':
        tags.append(cfg.train_cfg.strategy)
    return [t for t in tags if t]


def search_op_names(cfg: Config) -> tuple:
    """The operations of the searched head (the genotype's search space)."""
    from mmlesion.methods.elixirnet.models.alb_ops import ALB_OP_NAMES
    head = cfg.get('model', {}).get('roi_head', {}).get('bbox_head', {})
    return tuple(head.get('op_names', None) or ALB_OP_NAMES)


def output_paths(args: argparse.Namespace, cfg: Config) -> dict:
    """Where the search writes; refuse to replace files without
    ``--overwrite`` (unless ``--train`` finds the ready config: then the
    search is skipped, ``skip_search`` is True).

    Returns:
        dict: ``genotype`` (snippet), ``target`` (config to inherit),
        ``config`` (ready config) and ``train_work_dir`` paths, and
        ``skip_search``.

    Raises:
        ValueError: no target config is named.
        FileNotFoundError: the target config does not exist.
        FileExistsError: an output exists and ``--overwrite`` is not given.
    """
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.methods.elixirnet.nas.genotype import searched_config_name
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
        config=args.out_config or osp.join(
            cfg.work_dir, searched_config_name(target, search_tags(cfg))))
    paths['train_work_dir'] = args.train_work_dir or osp.join(
        osp.dirname(osp.abspath(cfg.work_dir)),
        osp.splitext(osp.basename(paths['config']))[0])
    paths['skip_search'] = bool(args.train and not args.overwrite
                                and osp.isfile(paths['config']))
    if paths['skip_search']:
        return paths
    existing = [
        paths[k] for k in ('genotype', 'config') if osp.exists(paths[k])
    ]
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
    strategy = loop.get('strategy', 'differentiable')
    how = ('first-order DARTS' if strategy == 'differentiable' else
           'random search with weight sharing, Li and Talwalkar 2019')
    return '\n'.join([
        f'ALB genotype searched by tools/search_alb.py (ALBSearchLoop, '
        f'{how}).',
        f'search space: {", ".join(search_op_names(cfg))}',
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


def train_argv(args: argparse.Namespace, paths: dict,
               resume: bool) -> List[str]:
    """The ``tools/train.py`` arguments that train the ready config."""
    argv = [
        paths['config'], '--work-dir', paths['train_work_dir'], '--launcher',
        args.launcher
    ]
    if resume:
        argv.append('--resume')
    if args.train_cfg_options:
        argv += ['--cfg-options', *args.train_cfg_options]
    return argv


def train_command(args: argparse.Namespace, argv: List[str]) -> str:
    """The shell command equivalent to ``--train`` (for the log)."""
    tool = osp.join('tools', 'train.py')
    if args.launcher == 'pytorch':
        nproc = os.environ.get('LOCAL_WORLD_SIZE',
                               os.environ.get('WORLD_SIZE', 'N'))
        head = (f'python -m torch.distributed.run --nproc_per_node={nproc} '
                f'{tool}')
    else:
        head = f'python {tool}'
    return ' '.join([head, *argv])


def train_searched(args: argparse.Namespace, paths: dict):
    """Train the ready config as ``tools/train.py`` would, in this process.

    The run is built as tools/train.py builds it
    (:mod:`mmlesion_cli.train_args`: its options, config and checkpoint
    check); mmengine's Runner finds the search's process group
    initialised (``Runner.setup_env`` only calls ``init_dist`` when
    ``torch.distributed`` is not initialised) and trains in it.

    Returns:
        Runner: the training runner (after training).
    """
    from mmengine.logging import print_log
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmlesion.utils.configs.pretty_text import without_yapf

    from mmlesion.engine.hooks import set_checkpoint_check_hook
    from mmlesion.utils import (close_distributed, collective_timeout_errors,
                                find_resumable_checkpoint, guard_distributed,
                                setup_cpu_distributed)
    resume = osp.isdir(paths['train_work_dir']) and \
        find_resumable_checkpoint(paths['train_work_dir']) is not None
    argv = train_argv(args, paths, resume)
    train_args = parse_train_args(argv=argv)
    print_log(
        f'--train: training the searched config {paths["config"]}'
        f'{" (resuming)" if resume else ""}; equivalent to\n  '
        f'{train_command(args, argv)}',
        logger='current')
    cfg = build_train_cfg(train_args)
    timeout = guard_distributed(cfg)
    setup_cpu_distributed(cfg)  # no-op when the search's group exists
    cfg = without_yapf(cfg)  # no yapf reflow (0.8 s per run)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    set_checkpoint_check_hook(runner, checkpoint_check_hook(cfg, train_args))
    with collective_timeout_errors(timeout):
        runner.train()
        close_distributed(runner)
    return runner


def write_ready_config(args: argparse.Namespace, cfg: Config, paths: dict,
                       runner) -> None:
    """Main process: the ready config from the snippet, checked to build."""
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    from mmlesion.methods.elixirnet.nas import format_genotypes, load_genotypes
    from mmlesion.methods.elixirnet.nas.genotype import write_searched_config
    op_names = search_op_names(cfg)
    genotypes = load_genotypes(paths['genotype'], op_names=op_names)
    write_searched_config(genotypes, paths['target'], paths['config'],
                          provenance(args, cfg, runner), op_names=op_names)
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
        f'train it with python tools/train.py {paths["config"]}' +
        ('' if args.train else ' (or add --train to this command)'))


def main(argv: Optional[list] = None) -> str:
    """Run the search (and with ``--train`` the training of its result);
    return the path of the written ready config."""
    args = parse_args(argv)
    from mmengine.dist import broadcast_object_list, is_main_process
    from mmengine.logging import print_log
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmlesion.utils.configs.pretty_text import without_yapf

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.engine.hooks import (CheckpointCheckHook,
                                       set_checkpoint_check_hook)
    from mmlesion.utils import close_distributed, setup_cpu_distributed
    args.argv = argv
    cfg = build_cfg(args)
    paths = output_paths(args, cfg)
    if paths['skip_search']:
        print_log(
            f'--train: {paths["config"]} exists, skipping the search (pass '
            '--overwrite to search again) and training it.',
            logger='current')
        train_searched(args, paths)
        return paths['config']
    setup_cpu_distributed(cfg)  # gloo + DDP without device ids on CPU
    cfg = without_yapf(cfg)  # no yapf reflow (0.8 s per run)
    runner = (Runner.from_cfg(cfg)
              if 'runner_type' not in cfg else RUNNERS.build(cfg))
    # The baseline loads partially on purpose (the searched head is new);
    # a --resume of the search itself must match exactly.
    set_checkpoint_check_hook(
        runner,
        CheckpointCheckHook(
            filename=cfg.get('load_from'), strict=bool(cfg.get('resume'))))
    runner.train()
    # Only the main process writes; every rank learns whether it worked
    # (a no-op without a process group) before --train reads the config.
    status: list = [None]
    error: Optional[BaseException] = None
    if is_main_process():
        try:
            write_ready_config(args, cfg, paths, runner)
        except Exception as err:  # re-raised below, after telling the ranks
            error = err
            status = [f'{type(err).__name__}: {err}']
    broadcast_object_list(status)
    if error is not None:
        raise error
    if status[0] is not None:
        raise RuntimeError(f'rank 0 could not write the ready config: '
                           f'{status[0]}')
    if args.train:
        del runner  # let the search's dataloader workers and memory go
        gc.collect()
        train_searched(args, paths)
    else:
        close_distributed(runner)  # every rank done: leave the group
    return paths['config']


if __name__ == '__main__':
    main()
