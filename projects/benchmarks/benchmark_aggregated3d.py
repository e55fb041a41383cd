# Copyright (c) mmlesion contributors. All rights reserved.
"""Cost of the 3D Aggregated Faster R-CNN, measured against baselines in the
same run.

Zhang et al. report 4.2 s per scan (5.0 s with Local Magnification, 3.0 s
for the RPN baseline) on 4 K80 GPUs (Sec. IV-F) and argue (Sec. III-D) that
Local Magnification gives RoIs a finer resolution for much less memory than
a finer feature pyramid level. Cases (each in its own subprocess, so that
its peak memory is its own):

- ``train_rpn`` / ``train_full``: one training iteration (forward, losses,
  backward, SGD step) of the RPN baseline and of the full model (paper
  widths, Table I) on a ``--crop``^3 crop (128 as in the paper) with two
  nodules; parameters, time, peak memory.
- ``scan_rpn`` / ``scan_full``: sliding-window inference over one whole
  ``--scan`` volume (z, y, x voxels at 1 mm) with 128^3 windows and the
  model config's overlap (40 voxels), including the merging.
- ``fprn_magnify`` vs ``fprn_finer``: the FPRN branch (forward + backward)
  on ``--rois`` RoIs from a 128^3 crop's pyramid: Local Magnification of
  the 3^3 crops around each RoI, against the same magnification layers
  applied to the whole pyramid levels (a 4x finer pyramid) with the RoIs
  taken from it. Both use the 4x magnifier (``magnify_stride=2``, 3^3 ->
  12^3), which has a whole-level counterpart; Table I's 5^3 (stride 1) has
  none.

Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU and the peak
resident set size of the case's process (``ru_maxrss``) minus the RSS
before the case on a CPU. Times are medians of ``--repeats`` (>= 2) runs
after ``--warmup`` (>= 1) untimed runs, whole scans included. The tool
prints every case and the ratios (full / RPN, finer / magnify); a time
ratio is the ratio of the two medians.

Example::

    python projects/benchmarks/benchmark_aggregated3d.py
    python projects/benchmarks/benchmark_aggregated3d.py --device cuda \
        --scan 256 320 320 --json work_dirs/bench_agg3d.json
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from typing import Callable, Dict, List

from mmlesion_cli import tool_parser

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
from projects.benchmarks.benchmark_timing import (  # noqa: E402
    add_timing_arguments)

CASES = ('train_rpn', 'train_full', 'scan_rpn', 'scan_full', 'fprn_magnify',
         'fprn_finer')


def _rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def _timed(fn: Callable, args) -> Dict[str, float]:
    """``args.warmup`` untimed calls, then the median of ``args.repeats``."""
    from projects.benchmarks.benchmark_timing import time_interleaved
    times = time_interleaved({'case': fn}, args.warmup, args.repeats,
                             args.device)['case']
    return dict(time_s=statistics.median(times), times_s=times)


def _build(with_fprn: bool, device: str):
    from mmdet.registry import MODELS

    from mmlesion.utils import get_config
    cfg = get_config('_base_/models/aggregated_faster_rcnn_3d.py').model
    if not with_fprn:
        cfg.fprn_head = None
    cfg.test_cfg.show_progress = False
    model = MODELS.build(cfg).to(device)
    model.init_weights()
    return model


def run_case(case: str, args) -> Dict[str, float]:
    """Measure one case in this process."""
    import torch
    from mmengine.optim import OptimWrapper

    import mmlesion  # noqa: F401
    from mmlesion.structures.volume_sample import volume_sample
    torch.manual_seed(0)
    device = args.device
    rss0 = _rss_mb()
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    out = {}
    if case.startswith(('train', 'scan')):
        model = _build(case.endswith('full'), device)
        out['params_m'] = sum(p.numel() for p in model.parameters()) / 1e6
    if case.startswith('train'):
        c = args.crop
        data = {
            'inputs': [torch.rand(1, c, c, c, device=device) * 2 - 1],
            'data_samples': [
                volume_sample((c, c, c),
                              [[30., 40., 50., 38., 48., 58.],
                               [80., 70., 60., 100., 90., 80.]])
            ]
        }
        data['data_samples'][0] = data['data_samples'][0].to(device)
        model.train()
        optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))
        out.update(_timed(lambda: model.train_step(data, optim), args))
    elif case.startswith('scan'):
        shape = tuple(args.scan)
        data = {'inputs': [torch.rand(1, *shape, device=device) * 2 - 1],
                'data_samples': [volume_sample(shape)]}
        model.eval()
        # --amp: float16 autocast on the GPU, as AmpOptimWrapper trains
        with torch.no_grad(), torch.autocast(
                device_type=device, dtype=torch.float16,
                enabled=args.amp and device == 'cuda'):
            # whole scans: the first one (warm-up) allocates the windows'
            # buffers; without it the RPN once looked 2x slower than the
            # full model
            out.update(_timed(lambda: model.test_step(data), args))
        from mmlesion.methods.aggregated3d.models.aggregated_faster_rcnn_3d import \
            window_starts
        out['windows'] = float(
            torch.tensor([len(window_starts(n, min(128, n),
                                            model.test_cfg.overlap))
                          for n in shape]).prod())
    else:
        from mmdet.registry import MODELS

        from mmlesion.methods.aggregated3d.models import roi_align_3d
        from mmlesion.methods.aggregated3d.models.aggregated_fprn_head_3d import \
            diameter_alignment
        from mmlesion.structures import zyxd_to_bbox3d
        head = MODELS.build(dict(type='AggregatedFPRNHead3D',
                                 magnify_stride=2)).to(device)
        c = 128
        feats = [torch.randn(1, 32, c // s, c // s, c // s, device=device,
                             requires_grad=True) for s in (4, 8, 16)]
        g = torch.Generator().manual_seed(0)
        ctr = torch.rand(args.rois, 3, generator=g) * 96 + 16
        diam = torch.rand(args.rois, 1, generator=g) * 20 + 4
        zyxd = torch.cat([ctr, diam], 1).to(device)
        levels = torch.randint(0, 3, (args.rois, ), generator=g).to(device)
        rois = torch.cat([torch.zeros(args.rois, 1, device=device),
                          zyxd_to_bbox3d(zyxd)], 1)
        if case == 'fprn_magnify':
            def step():
                head(feats, rois, levels).sum().backward()
        else:
            def step():
                aligned = diameter_alignment(zyxd, levels, head.strides)
                parts = []
                for lvl, feat in enumerate(feats):
                    fine = head.magnify(feat)  # the whole level, 4x finer
                    boxes = zyxd_to_bbox3d(aligned[:, lvl]) * \
                        head.magnify.output_size(1)
                    parts.append(roi_align_3d(
                        fine, torch.cat([rois[:, :1], boxes], 1), 2, 1.0,
                        2).flatten(1))
                head.classifier(torch.cat(parts, 1)).sum().backward()
        out.update(_timed(step, args))
    if device == 'cuda':
        out['peak_mb'] = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out['peak_mb'] = peak - rss0
    return out


def main(argv: List[str] = None) -> Dict[str, dict]:
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--device', default='cpu', choices=['cpu', 'cuda'],
        help='where the models run')
    parser.add_argument('--crop', type=int, default=128,
                        help='edge of the training crop (voxels)')
    parser.add_argument('--scan', type=int, nargs=3, default=[160, 240, 240],
                        help='whole-scan size (z, y, x) at 1 mm')
    parser.add_argument('--rois', type=int, default=32,
                        help='RoIs of the FPRN cases')
    add_timing_arguments(parser, warmup=1, repeats=3)
    parser.add_argument(
        '--cases', nargs='+', default=list(CASES), choices=CASES,
        help='what to time (each in its own process)')
    parser.add_argument('--amp', action='store_true',
                        help='whole-scan cases under float16 autocast '
                        '(CUDA only; the goal is a LUNA16 scan in < 1 s)')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='replace an existing --json')
    parser.add_argument('--case', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch
    from mmlesion.utils.writing.atomic import atomic_write
    from projects.benchmarks.benchmark_timing import (check_timing,
                                                      median_ratio)
    try:
        check_timing(args.warmup, args.repeats)
    except ValueError as err:
        parser.error(str(err))
    if args.case:  # child process: one case, JSON on the last line
        print(json.dumps(run_case(args.case, args)))
        return {}
    if args.json and os.path.exists(args.json) and not args.overwrite:
        parser.error(f'{args.json} exists; pass --overwrite to replace it')
    results = {}
    base = [sys.executable, os.path.abspath(__file__), '--device',
            args.device, '--crop', str(args.crop), '--rois', str(args.rois),
            '--repeats', str(args.repeats), '--warmup', str(args.warmup),
            '--scan'] + [str(s) for s in args.scan] + \
        (['--amp'] if args.amp else [])
    for i, case in enumerate(args.cases):
        print(f'[{i + 1}/{len(args.cases)}] {case} ...', flush=True)
        proc = subprocess.run(base + ['--case', case], capture_output=True,
                              text=True)
        if proc.returncode:
            raise RuntimeError(f'case {case} failed:\n{proc.stderr[-3000:]}')
        results[case] = json.loads(proc.stdout.strip().splitlines()[-1])
        print('   ', ', '.join(f'{k}={v:.3f}'
                               for k, v in results[case].items()
                               if k != 'times_s'))
    ratios = {}
    for a, b, name in (('train_full', 'train_rpn', 'train full / RPN'),
                       ('scan_full', 'scan_rpn', 'scan full / RPN'),
                       ('fprn_finer', 'fprn_magnify',
                        'FPRN finer level / Local Magnification')):
        if a in results and b in results:
            ratios[name] = {
                k: results[a][k] / results[b][k]
                for k in ('peak_mb', 'params_m')
                if k in results[a] and results[b].get(k)
            }
            ratios[name]['time_s'] = median_ratio(results[a]['times_s'],
                                                  results[b]['times_s'])
            print(f'{name}: ' + ', '.join(f'{k} x{v:.2f}'
                                          for k, v in ratios[name].items()))
    summary = dict(device=args.device, amp=args.amp, crop=args.crop,
                   scan=args.scan,
                   rois=args.rois, threads=torch.get_num_threads(),
                   results=results, ratios=ratios)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)),
                    exist_ok=True)
        with atomic_write(args.json) as f:
            json.dump(summary, f, indent=2)
    return summary


if __name__ == '__main__':
    main()
