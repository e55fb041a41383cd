# Copyright (c) mmlesion contributors. All rights reserved.
"""Where a 2.5D detector's inference time goes: one batch, profiled.

Builds the config's model with random weights (nothing is downloaded),
predicts a batch of random slices several times, prints the batch time and
slices/s with ``torch.backends.cudnn.benchmark`` off and on, the backbone +
neck time, and a ``torch.profiler`` table of one batch (device time first on
a GPU, CPU time otherwise). Used for the whole-scan goal of
``docs/benchmarks.md``: the table says which operations a faster detector
must cut (NMS, RoI Align, convolutions).

Example::

    python projects/benchmarks/profile_detector.py \\
        --config configs/elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py \\
        --batch-size 32 --size 416 --image-size 403 --device cuda --amp
"""
import argparse
import contextlib
import statistics
import time
from typing import List, Optional

from mmlesion_cli import tool_parser

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)

DEFAULT_CONFIG = ('configs/elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_'
                  'deeplesion-3slice.py')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='the 2.5D detector config')
    parser.add_argument('--batch-size', type=int, default=32,
                        help='slices per batch')
    parser.add_argument('--size', type=int, default=416,
                        help='padded input edge in pixels (a multiple of '
                        'the model\'s size divisor)')
    parser.add_argument('--image-size', type=int, default=None,
                        help='the slices\' own edge inside the padding '
                        '(default: --size)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda')
    parser.add_argument('--amp', action='store_true',
                        help='float16 autocast (CUDA)')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed batches first')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed batches (the median is printed)')
    parser.add_argument('--rows', type=int, default=25,
                        help='rows of the profiler table')
    return parser.parse_args(argv)


def build(config: str, device: str):
    """The config's model in eval mode, random weights."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apps.reproduce.timing import quiet_logs, strip_pretrained
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    strip_pretrained(cfg.model)
    with quiet_logs():
        model = MODELS.build(cfg.model)
        model.init_weights()
    return model.to(device).eval()


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    import torch
    from mmdet.structures import DetDataSample
    from torch.profiler import ProfilerActivity, profile

    from projects.benchmarks.benchmark_timing import sync
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError(f'--device {args.device}: no CUDA device here')
    if args.batch_size < 1 or args.size < 16 or args.repeats < 1:
        raise ValueError('--batch-size >= 1, --size >= 16 and --repeats >= 1')
    inner = args.image_size or args.size
    torch.manual_seed(0)
    model = build(args.config, args.device)
    channels = int(model.data_preprocessor.mean.numel()) if getattr(
        model.data_preprocessor, 'mean', None) is not None else 3
    x = torch.randn(args.batch_size, channels, args.size, args.size,
                    device=args.device)
    samples = []
    for _ in range(args.batch_size):
        sample = DetDataSample()
        sample.set_metainfo(
            dict(img_shape=(inner, inner), ori_shape=(inner, inner),
                 scale_factor=(1., 1.), pad_shape=(args.size, args.size),
                 batch_input_shape=(args.size, args.size)))
        samples.append(sample)
    amp = args.amp and args.device.startswith('cuda')

    def autocast():
        return torch.autocast('cuda', torch.float16) if amp else \
            contextlib.nullcontext()

    def predict():
        with torch.no_grad(), autocast():
            return model.predict(x, samples)

    result = dict(config=args.config, device=args.device, amp=amp,
                  batch_size=args.batch_size, size=args.size,
                  threads=torch.get_num_threads(), batches={})
    benchmark_modes = (False, True) if args.device.startswith('cuda') \
        else (False, )
    for bench in benchmark_modes:
        torch.backends.cudnn.benchmark = bench
        for _ in range(args.warmup):
            predict()
        times = []
        for _ in range(args.repeats):
            sync(args.device)
            t = time.perf_counter()
            predict()
            sync(args.device)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        result['batches'][f'cudnn_benchmark={bench}'] = med
        print(f'cudnn.benchmark={bench}: batch {args.batch_size} '
              f'{med * 1e3:.1f} ms (min {min(times) * 1e3:.1f}) = '
              f'{args.batch_size / med:.1f} slices/s')
    torch.backends.cudnn.benchmark = False
    with torch.no_grad(), autocast():
        model.extract_feat(x)
        sync(args.device)
        t = time.perf_counter()
        model.extract_feat(x)
        sync(args.device)
    result['backbone_neck'] = time.perf_counter() - t
    print(f'backbone + neck: {result["backbone_neck"] * 1e3:.1f} ms')
    activities = [ProfilerActivity.CPU]
    if args.device.startswith('cuda'):
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        predict()
        sync(args.device)
    sort = 'cuda_time_total' if args.device.startswith('cuda') \
        else 'cpu_time_total'
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows))
    return result


if __name__ == '__main__':
    main()
