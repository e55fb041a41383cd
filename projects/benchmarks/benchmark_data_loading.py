# Copyright (c) mmlesion contributors. All rights reserved.
"""How many data-loading workers keep the model fed?

Builds a config's training dataset (its own pipeline: 2.5D slice stacking,
windowing, augmentation; or the 3D volume loading, resampling and crops),
reads ``--samples`` samples with a PyTorch ``DataLoader`` for each
``--workers`` count (after ``--warmup`` untimed samples, which also start
the workers), and prints samples/s and ms/sample. With ``--step-time`` it
also times the config's training step (:mod:`projects.study_demo.config_smoke`,
synthetic batches, random weights) on ``--device`` and says how many
samples per second that step consumes and the fewest workers that supply
them.

Examples (generate the demo data first)::

    python tools/misc/generate_demo_data.py --out data/demo_deeplesion
    python projects/benchmarks/benchmark_data_loading.py \\
        configs/elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice.py \\
        --cfg-options \\
        train_dataloader.dataset.data_root=data/demo_deeplesion/ \\
        --workers 0 1 2 4 8 --step-time --device cuda
    python tools/misc/generate_demo_volumes.py --out data/demo_volumes
    python projects/benchmarks/benchmark_data_loading.py \\
        configs/aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-demo.py \\
        --workers 0 2 4
"""

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse
import sys
import time
from typing import Dict, List, Optional, Sequence

from mmengine.config import DictAction

from mmlesion_cli import tool_parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='the config whose train pipeline '
                        'is measured')
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2],
                        help='DataLoader worker counts to measure')
    parser.add_argument('--samples', type=int, default=32,
                        help='timed samples per worker count')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed samples first (they start the workers)')
    parser.add_argument('--step-time', action='store_true',
                        help="also time the config's training step")
    parser.add_argument('--device', default='cpu',
                        help='device of the training step')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config (e.g. the data root)')
    args = parser.parse_args(argv)
    if args.samples < 2 or args.warmup < 1:
        parser.error('--samples must be >= 2 and --warmup >= 1')
    if min(args.workers) < 0:
        parser.error('--workers must be >= 0')
    return args


def samples_per_second(dataset, workers: int, samples: int,
                       warmup: int) -> Dict[str, float]:
    """Read ``warmup + samples`` samples with ``workers`` processes.

    Args:
        dataset: an indexable dataset (its pipeline runs per item).
        workers (int): ``DataLoader`` workers (0: in this process).
        samples (int): timed samples.
        warmup (int): untimed samples read first.

    Returns:
        dict: ``samples_per_s`` and ``ms_per_sample``.
    """
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader
    total = warmup + samples
    if len(dataset) == 0:
        raise ValueError('the training dataset is empty')
    indices = [i % len(dataset) for i in range(total)]
    loader = DataLoader(
        dataset,
        batch_size=1,
        sampler=indices,
        num_workers=workers,
        collate_fn=pseudo_collate)
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(samples):
        next(it)
    elapsed = time.perf_counter() - start
    return dict(samples_per_s=samples / elapsed,
                ms_per_sample=1000 * elapsed / samples)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import torch
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.utils import atomic_write_json, get_tool_logger
    logger = get_tool_logger('benchmark_data_loading')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmdet')):
        try:
            dataset = DATASETS.build(cfg.train_dataloader.dataset)
        except (FileNotFoundError, ValueError, KeyError) as err:
            print(f'error: {args.config}: the training dataset cannot be '
                  f'built ({err}); point it at data with --cfg-options',
                  file=sys.stderr)
            return 1
    rows: List[dict] = []
    for workers in args.workers:
        res = samples_per_second(dataset, workers, args.samples,
                                 args.warmup)
        rows.append(dict(workers=workers, **res))
        logger.info(f"{workers} workers: {res['samples_per_s']:.1f} "
                    f"samples/s ({res['ms_per_sample']:.1f} ms/sample)")
    result = dict(config=args.config, threads=torch.get_num_threads(),
                  samples=args.samples, loading=rows)
    if args.step_time:
        from projects.study_demo.config_smoke import smoke_config
        step = smoke_config(args.config, iters=4, device=args.device)
        if step['status'] != 'ok':
            print(f"error: the training step failed: {step['reason']}",
                  file=sys.stderr)
            return 1
        need = step['batch_size'] / step['s_per_iter']
        enough = [r['workers'] for r in rows if r['samples_per_s'] >= need]
        result.update(
            step_s=step['s_per_iter'],
            batch_size=step['batch_size'],
            device=args.device,
            needed_samples_per_s=need,
            fewest_workers_that_keep_up=min(enough) if enough else None)
        logger.info(
            f"training step on {args.device}: {step['s_per_iter']:.3f} s "
            f"for {step['batch_size']} samples = {need:.1f} samples/s; "
            + (f'{min(enough)} worker(s) keep up' if enough else
               f'none of {args.workers} workers keep up: measure more'))
    if args.json:
        atomic_write_json(args.json, result, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
