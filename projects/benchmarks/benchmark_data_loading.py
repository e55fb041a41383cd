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
    python projects/study_demo/tools/generate_demo_volumes.py --out data/demo_volumes
    python projects/benchmarks/benchmark_data_loading.py \\
        configs/aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-demo.py \\
        --workers 0 2 4

``--parts`` instead times each part of the training pipeline per sample in
this process (one worker's work, one thread): the key slice's 16-bit PNG
decoding, the neighbouring slices' decoding, the rest of the slice loading
(file checks, HU conversion, interpolation, stacking), the HU windowing and
the augmentation (every other transform, each named). It runs on the real
DeepLesion series in the shared data folder (``--data-root``; slices
56-84 of ``000062_01_01``, with the slice intervals and lesions of real
validation rows), or, when that folder is absent or with ``--synthetic``,
on synthetic 16-bit PNGs written to a temporary folder (it says which;
:mod:`projects.benchmarks.data_loading_parts`). It also times the earlier
slice loading and windowing
(:mod:`projects.benchmarks.data_loading_baseline`) on the same samples,
checks that both give the same pixels, and prints the ratio. With
``--with-loader`` it also reads the samples through a ``DataLoader`` with one
worker process, the rate it then uses. The RECIST masks of Improved
RetinaNet's pipeline are made for every sample, or, with ``--recist-cache``,
written into a cache first and read from it, as a training run with the
cache of ``tools/dataset_converters/recist_to_masks.py`` reads them. From the training time per image on
one H100 (``docs/benchmarks.md``, section "Speed on one H100 80GB", or
``--gpu-ms-per-image``) and the config's batch size it says how many
workers one GPU needs (:mod:`projects.benchmarks.data_loading_workers`)::

    OMP_NUM_THREADS=1 python projects/benchmarks/benchmark_data_loading.py \\
        configs/elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py \\
        --parts --samples 26 --with-loader --json parts.json
"""

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse  # noqa: E402
import dataclasses  # noqa: E402
import os  # noqa: E402
import os.path as osp  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Dict, List, Optional, Sequence  # noqa: E402

from mmengine.config import DictAction  # noqa: E402

from mmlesion_cli import tool_parser  # noqa: E402
from projects.benchmarks.data_loading_parts import (  # noqa: E402
    PartsResult, cache_recist_masks, leaf_dataset_cfg, prepare_slices,
    step_name, time_parts)
from projects.benchmarks.data_loading_workers import (  # noqa: E402
    TRAIN_PER_INFERENCE, GpuTime, WorkerNeed, h100_time, workers_needed)


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
        '--parts', action='store_true',
        help='time the parts of the pipeline per sample in this process '
        '(PNG decoding, neighbouring slices, windowing, augmentation) on '
        'real or synthetic DeepLesion slices, against the earlier loading')
    parser.add_argument(
        '--data-root', default=None,
        help='--parts: a DeepLesion release folder with Images_png/'
        '000062_01_01/056.png ... 084.png (default: the shared data folder)')
    parser.add_argument('--synthetic', action='store_true',
                        help='--parts: synthetic 16-bit PNGs even if real '
                        'slices are present')
    parser.add_argument(
        '--gpu-ms-per-image', type=float, default=None,
        help='--parts: training time per image on one GPU (ms); default: '
        'the H100 number of docs/benchmarks.md for this config')
    parser.add_argument(
        '--samples-per-step', type=int, default=None,
        help="--parts: images per GPU step (default: the config's "
        'train_dataloader.batch_size)')
    parser.add_argument('--goal-workers', type=int, default=4,
                        help='--parts: the most workers one GPU may need')
    parser.add_argument(
        '--with-loader', action='store_true',
        help='--parts: also read the samples through a DataLoader with one '
        'worker process (adds collation and the transfer of each sample '
        'to the main process) and derive the workers from that rate')
    parser.add_argument(
        '--recist-cache', action='store_true',
        help='--parts: write the RECIST masks of the samples first (as '
        'tools/dataset_converters/recist_to_masks.py does) and let '
        'RecistToMask read them, as a training run with the mask cache '
        'does (default: no cache, the masks made for every sample)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config (e.g. the data root)')
    args = parser.parse_args(argv)
    if args.samples < 2 or args.warmup < 1:
        parser.error('--samples must be >= 2 and --warmup >= 1')
    if min(args.workers) < 0:
        parser.error('--workers must be >= 0')
    if args.gpu_ms_per_image is not None and not args.gpu_ms_per_image > 0:
        parser.error('--gpu-ms-per-image must be > 0')
    if args.samples_per_step is not None and args.samples_per_step < 1:
        parser.error('--samples-per-step must be >= 1')
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


def measure_parts(args: argparse.Namespace, cfg, logger) -> PartsResult:
    """``--parts``: build the config's pipeline on the prepared series and
    time it part by part (one thread, like one worker)."""
    import cv2
    import torch
    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope

    from projects.benchmarks.data_loading_baseline import baseline_steps
    from projects.benchmarks.lab_data import lab_data_root
    load_start = list(os.getloadavg())
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    data_root = args.data_root
    if data_root is None:
        shared = lab_data_root()
        data_root = str(shared / 'deeplesion') if shared else None
    leaf = leaf_dataset_cfg(cfg.train_dataloader.dataset)
    with tempfile.TemporaryDirectory(prefix='mmlesion_parts_') as tmp:
        data = prepare_slices(tmp, data_root, args.synthetic)
        logger.info(f'--parts on {data}')
        ds_cfg = dict(
            type='DeepLesionDataset',
            data_root=tmp + os.sep,
            ann_file='DL_info.csv',
            data_prefix=dict(img='Images_png/'),
            split='train',
            drop_noisy=True,
            filter_cfg=dict(filter_empty_gt=True),
            # the masks made per sample, even where the config names a
            # cache folder (--recist-cache writes one and reads it)
            pipeline=[dict(t, cache_dir=None)
                      if t.get('type') == 'RecistToMask' else t
                      for t in leaf['pipeline']])
        with DefaultScope.overwrite_default_scope(
                cfg.get('default_scope', 'mmdet')):
            dataset = DATASETS.build(ds_cfg)
            dataset.full_init()
            num_slices = next(
                (getattr(t, 'num_slices', 0)
                 for t in dataset.pipeline.transforms
                 if step_name(t) == 'LoadDeepLesionSlices'), 0)
            if not num_slices:
                raise ValueError(f'{args.config}: --parts needs a 2.5D '
                                 'pipeline with LoadDeepLesionSlices')
            cached = 0
            if args.recist_cache:
                cached = cache_recist_masks(dataset,
                                            osp.join(tmp, 'recist_masks'))
                if not cached:
                    raise ValueError(f'{args.config}: --recist-cache needs '
                                     'a pipeline with RecistToMask')
            if cached:
                data += (f'; the RECIST masks read from a cache of its '
                         f'{cached} key slices, written first')
            baseline = baseline_steps(dataset.pipeline.transforms)
            parts, comparison = time_parts(dataset, args.samples,
                                           args.warmup, baseline)
            loader_sps = None
            if args.with_loader:
                loader_sps = samples_per_second(
                    dataset, 1, args.samples, args.warmup)['samples_per_s']
    sps = parts.samples_per_s if loader_sps is None else loader_sps
    need = None
    gpu = h100_time(args.config)
    if args.gpu_ms_per_image is not None:
        gpu = GpuTime('', args.gpu_ms_per_image, 'given',
                      '--gpu-ms-per-image')
    if gpu is not None:
        per_step = args.samples_per_step or int(
            cfg.train_dataloader.get('batch_size', 1))
        step_s = gpu.ms_per_image * per_step / 1000.
        workers = workers_needed(per_step, step_s, sps)
        need = WorkerNeed(
            gpu_ms_per_image=gpu.ms_per_image,
            gpu_time_kind=gpu.kind,
            gpu_time_source=gpu.source,
            samples_per_step=per_step,
            step_s=step_s,
            samples_per_s_per_worker=sps,
            workers=workers,
            goal=args.goal_workers,
            meets_goal=workers <= args.goal_workers,
            estimated_workers=workers_needed(
                per_step, step_s * TRAIN_PER_INFERENCE, sps)
            if gpu.kind.startswith('inference') else None)
    return PartsResult(
        config=args.config,
        data=data,
        samples=args.samples,
        threads=torch.get_num_threads(),
        num_slices=num_slices,
        parts=parts,
        samples_per_s_per_worker=sps,
        in_process_samples_per_s=parts.samples_per_s,
        loader_samples_per_s=loader_sps,
        loading=comparison,
        need=need,
        load_average=[load_start, list(os.getloadavg())])


def report_parts(res: PartsResult) -> str:
    """The ``--parts`` result as lines of text."""
    p = res.parts
    share = p.shares()
    lines = [
        f'{res.config}: {res.num_slices} slices, {res.samples} samples, '
        f'{res.threads} thread(s), load average '
        f'{res.load_average[0][0]:.2f} -> {res.load_average[1][0]:.2f}',
        f'  data: {res.data}',
        f'  key slice PNG decode     {p.key_png_decode_ms:7.2f} ms '
        f"({share['key_png_decode']:.0%})",
        f'  neighbour PNG decodes    {p.neighbour_png_decode_ms:7.2f} ms '
        f"({share['neighbour_png_decode']:.0%}; "
        f'{p.slices_decoded:.1f} PNGs per sample in all)',
        f'  rest of slice loading    {p.slice_assembly_ms:7.2f} ms '
        f"({share['slice_assembly']:.0%})",
        f'  windowing                {p.windowing_ms:7.2f} ms '
        f"({share['windowing']:.0%})",
        f'  augmentation and packing {p.augmentation_ms:7.2f} ms '
        f"({share['augmentation']:.0%}: " + ', '.join(
            f'{k} {v:.1f}' for k, v in p.augmentation_steps_ms.items())
        + ')',
        f'  total                    {p.total_ms:7.2f} ms = '
        f'{res.in_process_samples_per_s:.1f} samples/s in this process',
    ]
    if res.loader_samples_per_s is not None:
        lines.append(f'  one DataLoader worker process: '
                     f'{res.loader_samples_per_s:.1f} samples/s')
    lines.append(f'  => {res.samples_per_s_per_worker:.1f} samples/s per '
                 'worker')
    if res.loading is not None:
        c = res.loading
        lines.append(
            f'  loading + windowing, median sample: earlier '
            f'{c.baseline_median_ms:.2f} ms, now {c.current_median_ms:.2f} '
            f'ms: {c.ratio:.2f}x (means {c.baseline_ms:.2f} / '
            f'{c.current_ms:.2f} ms: {c.mean_ratio:.2f}x), same pixels: '
            f'{c.identical}')
    if res.need is not None:
        n = res.need
        lines.append(
            f'  one GPU at {n.gpu_ms_per_image:g} ms/image ({n.gpu_time_kind}'
            f'), {n.samples_per_step} images/step = {n.step_s:.3f} s/step: '
            f'{n.workers} worker(s) needed (goal <= {n.goal}: '
            f"{'met' if n.meets_goal else 'NOT met'})")
        if n.estimated_workers is not None:
            lines.append(
                f'  if training takes {TRAIN_PER_INFERENCE:.2f}x the '
                f'inference time (estimate): {n.estimated_workers} '
                'worker(s)')
    else:
        lines.append('  no GPU time for this config: pass --gpu-ms-per-image '
                     'to get the workers needed')
    return '\n'.join(lines)


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
    if args.parts:
        try:
            res = measure_parts(args, cfg, logger)
        except (FileNotFoundError, ValueError) as err:
            print(f'error: {args.config}: {err}', file=sys.stderr)
            return 1
        print(report_parts(res))
        if args.json:
            atomic_write_json(args.json, dataclasses.asdict(res), indent=1)
        return 0
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
