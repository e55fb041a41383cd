# Copyright (c) mmlesion contributors. All rights reserved.
"""Inference latency of Improved RetinaNet vs plain mmdet RetinaNet.

Improved RetinaNet (Zlocha et al. 2019), Table 1 "runtime": 28 ms per image
for the original RetinaNet and 41 ms for the full model (GTX 1080), a ratio
of 1.46. This tool builds both models (random weights unless checkpoints are
given; no downloads), feeds them the same 3-slice input and times a full
``test_step`` per image (data preprocessor, network, box decoding, NMS and,
for the improved model, segmentation and score calibration), interleaving
the models iteration by iteration so that both see the same machine load.
It prints per model the mean / median / p90 latency and the ratio to the
baseline.

Example::

    python projects/benchmarks/benchmark_retinanet_lesion.py
    # every Table 1 row (full size) against mmdet's RetinaNet on a GPU;
    # --configs takes paths relative to configs/ (or any config path)
    cd configs/retinanet_lesion && python \
        ../../tools/analysis_tools/benchmark_retinanet_lesion.py \
        --configs *_r50_*adam-plateau_deeplesion.py --device cuda --iters 200

With random weights RetinaNet's classification prior (0.01) is below the
default score threshold (0.05), so almost no box reaches NMS; pass trained
``--checkpoints`` or ``--score-thr 0`` to time a realistic post-processing
(the number of detections per image is printed).
"""
import argparse
import os.path as osp
import statistics
from typing import TYPE_CHECKING, Dict, Optional, Sequence

from mmengine.config import Config

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import add_trust_checkpoint_argument

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)

if TYPE_CHECKING:
    import torch

DEFAULT_CONFIG = (
    'retinanet_lesion/'
    'improved-retinanet_r50_densefpn-ag_1xb4-adam-plateau-50e_deeplesion.py')
DEFAULT_BASELINE = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
PAPER_MS = {'baseline': 28.0, 'full': 41.0}

def load_any_config(name: str) -> Config:
    """Load ``mmdet::...``, a path, or a path relative to ``configs/``."""
    from mmengine.hub import get_config as hub_get_config

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.utils import get_config
    if '::' in name:
        return hub_get_config(name)
    if osp.isfile(name):
        return Config.fromfile(name)
    return get_config(name)

def build_model(cfg: Config,
                num_classes: int = 1,
                score_thr: Optional[float] = None,
                checkpoint: Optional[str] = None,
                device: str = 'cpu') -> 'torch.nn.Module':
    """Build a detector of ``cfg`` without downloading weights.

    Args:
        cfg (Config): full config with ``model``.
        num_classes (int): classes of the box head. Defaults to 1.
        score_thr (float, optional): override ``test_cfg.score_thr``.
        checkpoint (str, optional): weights to load.
        device (str): device.

    Returns:
        nn.Module: the model in eval mode.
    """
    import copy

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apis import DetectorLoadSettings, init_lesion_detector
    cfg = copy.deepcopy(cfg)
    model_cfg = cfg.model
    if 'init_cfg' in model_cfg.get('backbone', {}):
        model_cfg.backbone.init_cfg = None
    if 'bbox_head' in model_cfg:
        model_cfg.bbox_head.num_classes = num_classes
    if score_thr is not None:
        model_cfg.test_cfg.score_thr = score_thr
    # the config's initialisation (no pretrained backbone), then weights
    return init_lesion_detector(
        cfg, checkpoint,
        DetectorLoadSettings(device=device, init_weights=True)).model

def make_batch(num_slices: int = 3,
               size: int = 512,
               batch_size: int = 1,
               seed: int = 0) -> dict:
    """A fixed fake batch of CT-like inputs in [-1, 1] with metainfo."""
    import torch
    from mmdet.structures import DetDataSample
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(
            torch.rand((num_slices, size, size), generator=gen) * 2 - 1)
        samples.append(
            DetDataSample(
                metainfo=dict(
                    img_shape=(size, size),
                    ori_shape=(size, size),
                    pad_shape=(size, size),
                    scale_factor=(1., 1.),
                    img_id=0)))
    return dict(inputs=inputs, data_samples=samples)

def benchmark_models(models: Dict[str, 'torch.nn.Module'],
                     batch: dict,
                     warmup: int = 5,
                     iters: int = 20,
                     device: str = 'cpu') -> Dict[str, dict]:
    """Time ``test_step`` of several models on the same batch, interleaved.

    Args:
        models (dict[str, nn.Module]): name -> model (eval mode).
        batch (dict): ``inputs`` and ``data_samples``.
        warmup (int): untimed iterations per model (>= 1).
        iters (int): timed iterations per model (>= 2).
        device (str): device (for synchronisation).

    Returns:
        dict[str, dict]: per model ``times_ms`` (per image), ``mean_ms``,
        ``median_ms``, ``p90_ms`` and ``dets`` (detections per image of the
        last run).
    """
    import torch

    import mmlesion  # noqa: F401  (registers components)
    from projects.benchmarks.benchmark_timing import (check_timing,
                                                      time_interleaved)
    try:
        check_timing(warmup, iters)
    except ValueError as err:
        raise ValueError(f'iters / warmup: {err}') from err
    num_images = len(batch['inputs'])
    dets: Dict[str, float] = {}

    def step(name: str, model: 'torch.nn.Module'):

        def run():
            out = model.test_step(batch)
            dets[name] = sum(len(o.pred_instances) for o in out) / num_images

        return run

    with torch.no_grad():
        seconds = time_interleaved(
            {name: step(name, model)
             for name, model in models.items()}, warmup, iters, device)
    times = {
        name: [t * 1000. / num_images for t in values]
        for name, values in seconds.items()
    }
    results = {}
    for name, values in times.items():
        ordered = sorted(values)
        results[name] = dict(
            times_ms=values,
            mean_ms=statistics.fmean(values),
            median_ms=statistics.median(values),
            p90_ms=ordered[min(
                len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))],
            dets=dets[name])
    return results

def format_table(results: Dict[str, dict], baseline: str) -> str:
    """Side-by-side table with the ratio to ``baseline`` (median based)."""
    import mmlesion  # noqa: F401  (registers components)
    from projects.benchmarks.benchmark_timing import median_ratio
    base = results[baseline]['times_ms']
    width = max(len(n) for n in results)
    lines = [
        f"{'model':<{width}}  {'mean ms':>8}  {'median':>8}  {'p90':>8}  "
        f"{'ratio':>6}  {'dets/img':>8}"
    ]
    for name, res in results.items():
        lines.append(f"{name:<{width}}  {res['mean_ms']:8.1f}  "
                     f"{res['median_ms']:8.1f}  {res['p90_ms']:8.1f}  "
                     f"{median_ratio(res['times_ms'], base):6.2f}  "
                     f"{res['dets']:8.1f}")
    return '\n'.join(lines)

def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--configs',
        nargs='+',
        default=[DEFAULT_CONFIG],
        help='mmlesion configs (relative to configs/ or paths) to time '
        'against the baseline; default: the full Improved RetinaNet')
    parser.add_argument(
        '--baseline',
        default=DEFAULT_BASELINE,
        help='baseline config, built with num_classes=1 and no pretrained '
        'weights (mmdet RetinaNet R50-FPN by default)')
    parser.add_argument(
        '--checkpoints',
        nargs='*',
        default=None,
        help='weights for --configs, in the same order')
    parser.add_argument(
        '--baseline-checkpoint', default=None,
        help='weights for --baseline (default: random)')
    parser.add_argument(
        '--size', type=int, default=512, help='square input size (paper: 512)')
    parser.add_argument(
        '--num-slices', type=int, default=3,
        help='input channels (neighbouring CT slices)')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='images per forward pass')
    parser.add_argument(
        '--warmup', type=int, default=5, help='untimed runs per model (>= 1)')
    parser.add_argument(
        '--iters',
        type=int,
        default=20,
        help='timed runs per model, interleaved; the ratio is of the '
        'medians (>= 2)')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=None,
        help='override test_cfg.score_thr of every model')
    parser.add_argument(
        '--device', default='auto',
        help='cpu, cuda:0, ... or auto (cuda when available)')
    parser.add_argument(
        '--threads', type=int, default=None, help='torch CPU threads')
    add_trust_checkpoint_argument(parser)
    return parser.parse_args(argv)

def main(argv: Optional[Sequence[str]] = None) -> Dict[str, dict]:
    args = parse_args(argv)
    import torch
    from mmengine.logging import MMLogger

    import mmlesion  # noqa: F401  (registers components)
    if args.device == 'auto':
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    # keep the per-parameter init messages of init_weights out of the output
    MMLogger.get_instance('benchmark_retinanet_lesion', log_level='WARNING')
    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoints = args.checkpoints or [None] * len(args.configs)
    if len(checkpoints) != len(args.configs):
        raise ValueError(f'{len(checkpoints)} checkpoints for '
                         f'{len(args.configs)} configs')
    models = {
        'baseline: mmdet RetinaNet':
        build_model(
            load_any_config(args.baseline),
            score_thr=args.score_thr,
            checkpoint=args.baseline_checkpoint,
            device=args.device)
    }
    for name, ckpt in zip(args.configs, checkpoints):
        models[name.split('/')[-1].replace('.py', '')] = build_model(
            load_any_config(name),
            score_thr=args.score_thr,
            checkpoint=ckpt,
            device=args.device)
    batch = make_batch(args.num_slices, args.size, args.batch_size)
    results = benchmark_models(models, batch, args.warmup, args.iters,
                               args.device)
    device_name = (
        torch.cuda.get_device_name() if args.device.startswith('cuda') else
        f'CPU, {torch.get_num_threads()} threads')
    print(f'Inference latency per image, {args.num_slices} x {args.size} x '
          f'{args.size} input, batch {args.batch_size}, {args.iters} timed '
          f'iterations after {args.warmup} warm-up, device: {device_name}')
    print(format_table(results, next(iter(models))))
    print(f"paper (GTX 1080): RetinaNet {PAPER_MS['baseline']:.0f} ms, full "
          f"model {PAPER_MS['full']:.0f} ms, ratio "
          f"{PAPER_MS['full'] / PAPER_MS['baseline']:.2f}")
    return results

if __name__ == '__main__':
    main()
