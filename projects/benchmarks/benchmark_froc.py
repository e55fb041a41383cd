# Copyright (c) mmlesion contributors. All rights reserved.
"""Benchmark the vectorised FROC against the straightforward reference.

Generates a seeded random case (default 5,000 images x 50 detections, with
equal scores, duplicates, lesions hit by one box together and images without
lesions), runs the plain per-detection reference
(:mod:`projects.benchmarks.froc_reference`) and the fast
:func:`mmlesion.evaluation.functional.froc_curve`, checks that the raw curves
and the sensitivities at the FP rates are identical (exact equality), and
prints the times (CPU time of the process, robust on a shared machine, and
wall-clock time) and the speed ratio::

    python projects/benchmarks/benchmark_froc.py
    python projects/benchmarks/benchmark_froc.py --overlap iobb

Exit status: 0 when the outputs are identical and the ratio reaches
``--min-speedup`` (default 20), 1 otherwise.
"""
# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Dict, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from mmlesion_cli import tool_parser  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--num-images', type=int, default=5000, help='images in the case')
    parser.add_argument(
        '--dets-per-image', type=int, default=50,
        help='random detections per image')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the random case')
    parser.add_argument(
        '--iou-thr', type=float, default=0.5,
        help='overlap a detection needs to hit a lesion')
    parser.add_argument(
        '--overlap', choices=('iou', 'iobb'), default='iou',
        help='overlap measure: IoU, or intersection over the detection')
    parser.add_argument(
        '--repeat',
        type=int,
        default=5,
        help='runs of the fast implementation (median time is used)')
    parser.add_argument(
        '--min-speedup', type=float, default=20.0,
        help='exit 1 if the vectorised code is not this much faster')
    return parser.parse_args(argv)


def run_benchmark(num_images: int = 5000,
                  dets_per_image: int = 50,
                  seed: int = 0,
                  iou_thr: float = 0.5,
                  overlap: str = 'iou',
                  repeat: int = 5,
                  fp_rates: Optional[Sequence[float]] = None) -> Dict:
    """Run both implementations on one random case.

    Times are CPU seconds of this process (``time.process_time``), which
    a busy shared machine disturbs much less than wall-clock time; wall
    times are reported beside them.

    Args:
        num_images (int): images in the case.
        dets_per_image (int): detections per image.
        seed (int): seed of :func:`random_froc_case`.
        iou_thr (float): overlap threshold.
        overlap (str): ``'iou'`` or ``'iobb'``.
        repeat (int): runs of the fast implementation.
        fp_rates (Sequence[float], optional): rates compared (default:
            ``DEFAULT_FP_RATES`` of the FROC metric).

    Returns:
        dict: ``identical`` (bool), ``ref_time`` (CPU s), ``ref_wall``,
        ``fast_times`` (CPU s per run), ``fast_walls``, ``fast_time`` (median
        CPU s), ``speedup`` (CPU ratio), ``wall_speedup``, ``sens`` (fast
        sensitivities), ``num_detections``, ``num_gts``.
    """
    from mmlesion.evaluation.functional import (DEFAULT_FP_RATES, froc_curve,
                                                sens_at_fp)
    from projects.benchmarks.froc_reference import (
        random_froc_case, reference_froc, reference_sens_at_fp)
    if fp_rates is None:
        fp_rates = DEFAULT_FP_RATES
    dets, gts = random_froc_case(num_images, dets_per_image, seed=seed)
    num_gts = sum(len(g) for g in gts)

    wall, cpu = time.perf_counter, time.process_time
    t0, c0 = wall(), cpu()
    ref_x, ref_y = reference_froc(dets, gts, iou_thr, overlap)
    ref_sens = np.asarray(
        reference_sens_at_fp(ref_x, ref_y, fp_rates, num_gts))
    ref_wall, ref_cpu = wall() - t0, cpu() - c0

    fast_wall, fast_cpu = [], []
    for _ in range(max(1, repeat)):
        t0, c0 = wall(), cpu()
        curve = froc_curve(dets, gts, iou_thr, overlap)
        sens = sens_at_fp(curve, fp_rates)
        fast_wall.append(wall() - t0)
        fast_cpu.append(cpu() - c0)

    identical = (
        np.array_equal(curve.fps_per_image, ref_x)
        and np.array_equal(curve.sensitivity, ref_y, equal_nan=True)
        and np.array_equal(sens, ref_sens, equal_nan=True))
    fast_time = statistics.median(fast_cpu)
    return dict(
        identical=bool(identical),
        ref_time=ref_cpu,
        ref_wall=ref_wall,
        fast_times=fast_cpu,
        fast_walls=fast_wall,
        fast_time=fast_time,
        speedup=ref_cpu / max(fast_time, 1e-9),
        wall_speedup=ref_wall / max(statistics.median(fast_wall), 1e-9),
        sens=sens,
        num_detections=int(sum(len(d) for d in dets)),
        num_gts=num_gts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from mmlesion.evaluation.functional import DEFAULT_FP_RATES
    res = run_benchmark(args.num_images, args.dets_per_image, args.seed,
                        args.iou_thr, args.overlap, args.repeat)
    print(f'case: {args.num_images} images x {args.dets_per_image} '
          f'detections = {res["num_detections"]} detections, '
          f'{res["num_gts"]} lesions (seed {args.seed}, '
          f'{args.overlap} >= {args.iou_thr:g}); '
          f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}')
    print('sensitivity at ' + ', '.join(
        f'{r:g}: {s:.4f}' for r, s in zip(DEFAULT_FP_RATES, res['sens'])))
    print(f'reference (plain loop): CPU {res["ref_time"]:.3f} s, wall '
          f'{res["ref_wall"]:.3f} s')
    print('vectorised: CPU ' + ', '.join(f'{t:.3f}'
                                         for t in res['fast_times']) +
          f' s (median {res["fast_time"]:.3f} s); wall ' + ', '.join(
              f'{t:.3f}' for t in res['fast_walls']) + ' s')
    print(f'identical output: {res["identical"]}')
    print(f'speed ratio (reference / vectorised median, CPU time): '
          f'{res["speedup"]:.1f}x (required >= {args.min_speedup:g}x); '
          f'wall-clock ratio {res["wall_speedup"]:.1f}x')
    ok = res['identical'] and res['speedup'] >= args.min_speedup
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
