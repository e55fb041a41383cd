# Copyright (c) mmlesion contributors. All rights reserved.
"""Benchmark the vectorised LUNA16 evaluation against the plain reference.

One case of ``--num-scans`` (default 888) scans x ``--marks-per-scan``
(default 100) random marks around the real LUNA16 annotations (``luna16/`` of
the real-data folder, :func:`projects.benchmarks.lab_data.lab_data_root`;
LUNA16-sized random annotations when they are absent), with
``--num-bootstrap`` (default 1,000) resamples, evaluated in one run by:

- the plain loop transcription of the official script
  (:func:`projects.benchmarks.luna16_reference.reference_luna16`): matching
  and curve in full, but only ``--ref-resamples`` (default 20) bootstrap
  resamples, **extrapolated linearly** to ``--num-bootstrap`` (its cost per
  resample is constant: one concatenation and one ``roc_curve`` call);
- :func:`mmlesion.evaluation.functional.luna16.evaluate_luna16` with the
  full ``--num-bootstrap`` resamples.

Both start from the same in-memory rows (CSV reading not timed). The tool
checks that the curves, sensitivities and CPM are identical and that the
band of ``--ref-resamples`` resamples agrees (to float32 rounding), then
prints CPU and wall times and the ratio::

    python projects/benchmarks/benchmark_luna16.py

Exit status 0 when the outputs agree and the CPU ratio reaches
``--min-speedup`` (default 10).
"""
# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Dict, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from mmlesion_cli import tool_parser  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--num-scans', type=int, default=888,
                        help='scans (the first N of seriesuids.csv)')
    parser.add_argument(
        '--marks-per-scan', type=int, default=100,
        help='random candidates per scan')
    parser.add_argument(
        '--num-bootstrap', type=int, default=1000,
        help='bootstrap resamples of the fast evaluation')
    parser.add_argument(
        '--ref-resamples', type=int, default=20,
        help='bootstrap resamples of the (slow) reference')
    parser.add_argument(
        '--seed', type=int, default=0,
        help='seed of the random case and the bootstrap')
    parser.add_argument(
        '--min-speedup', type=float, default=10.0,
        help='exit 1 if the fast evaluation is not this much faster')
    return parser.parse_args(argv)


def _annotations(num_scans: int, seed: int):
    from mmlesion.evaluation.functional import luna16 as L
    from projects.benchmarks.luna16_reference import \
        synthetic_luna16_annotations
    from projects.benchmarks.lab_data import lab_data_root
    root = lab_data_root()
    d = None if root is None else root / 'luna16'
    if d is not None and (d / 'annotations.csv').is_file():
        ann = L.read_findings_csv(str(d / 'annotations.csv'))
        exc = L.read_findings_csv(str(d / 'annotations_excluded.csv'),
                                  allow_duplicates=True)
        uids = L.read_seriesuids_csv(str(d / 'seriesuids.csv'))
        source = 'real LUNA16 annotations'
    else:
        ann, exc, uids = synthetic_luna16_annotations(seed=seed)
        source = 'synthetic LUNA16-sized annotations'
    return ann, exc, uids[:num_scans], source


def run_benchmark(num_scans: int = 888,
                  marks_per_scan: int = 100,
                  num_bootstrap: int = 1000,
                  ref_resamples: int = 20,
                  seed: int = 0) -> Dict:
    """Run both implementations on one random case.

    Returns:
        dict: ``identical`` (curve, rates, CPM), ``band_max_diff``, times
        (CPU ``process_time`` and wall) of the reference parts and of the
        vectorised run, ``ref_time`` (extrapolated CPU), ``speedup``,
        ``cpm``, ``num_marks`` and ``source``.
    """
    from mmlesion.evaluation.functional import luna16 as L
    from projects.benchmarks.luna16_reference import (
        random_luna16_case, reference_luna16, rows_to_candidates,
        rows_to_findings)
    ann, exc, uids, source = _annotations(num_scans, seed)
    ann_rows, exc_rows, uids, cands, _ = random_luna16_case(
        ann, exc, uids, seed=seed, num_marks=marks_per_scan)
    wall, cpu = time.perf_counter, time.process_time

    t0, c0 = wall(), cpu()
    ref = reference_luna16(ann_rows, exc_rows, uids, cands, num_boot=0)
    ref_main_wall, ref_main_cpu = wall() - t0, cpu() - c0
    t0, c0 = wall(), cpu()
    ref_b = reference_luna16(ann_rows, exc_rows, uids, cands,
                             num_boot=ref_resamples, seed=seed)
    # the second call repeats the main part: subtract it
    boot_wall = max(wall() - t0 - ref_main_wall, 0.0)
    boot_cpu = max(cpu() - c0 - ref_main_cpu, 0.0)
    scale = num_bootstrap / float(ref_resamples)
    ref_cpu = ref_main_cpu + boot_cpu * scale
    ref_wall = ref_main_wall + boot_wall * scale

    cand_arr = rows_to_candidates(cands)
    ann_f, exc_f = rows_to_findings(ann_rows), rows_to_findings(exc_rows)
    t0, c0 = wall(), cpu()
    res = L.evaluate_luna16(cand_arr, ann_f, exc_f, uids,
                            L.LUNA16Options(num_bootstrap=num_bootstrap,
                                            seed=seed))
    fast_wall, fast_cpu = wall() - t0, cpu() - c0

    small = L.bootstrap_froc(res.match,
                             L.BootstrapSettings(ref_resamples, seed))
    ref_at = np.interp(L.LUNA16_FP_RATES, ref['fps'], ref['sens'])
    identical = (np.array_equal(res.fps, ref['fps'])
                 and np.array_equal(res.sens, ref['sens'])
                 and np.array_equal(res.sens_at, ref_at)
                 and res.cpm == float(np.mean(ref_at)))
    band_diff = max(
        float(np.abs(small.mean - ref_b['boot_mean']).max()),
        float(np.abs(small.lower - ref_b['boot_lb']).max()),
        float(np.abs(small.upper - ref_b['boot_ub']).max()))
    return dict(
        identical=bool(identical),
        band_max_diff=band_diff,
        ref_main_cpu=ref_main_cpu,
        ref_boot_cpu=boot_cpu,
        ref_time=ref_cpu,
        ref_wall=ref_wall,
        fast_time=fast_cpu,
        fast_wall=fast_wall,
        speedup=ref_cpu / max(fast_cpu, 1e-9),
        wall_speedup=ref_wall / max(fast_wall, 1e-9),
        cpm=res.cpm,
        num_marks=len(cands),
        num_scans=len(uids),
        source=source)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    res = run_benchmark(args.num_scans, args.marks_per_scan,
                        args.num_bootstrap, args.ref_resamples, args.seed)
    print(f'case: {res["num_scans"]} scans x {args.marks_per_scan} marks = '
          f'{res["num_marks"]} marks around the {res["source"]}, '
          f'{args.num_bootstrap} bootstrap resamples (seed {args.seed}); '
          f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}')
    print(f'CPM {res["cpm"]:.4f}')
    print(f'reference (plain loops): matching + curve CPU '
          f'{res["ref_main_cpu"]:.2f} s; {args.ref_resamples} bootstrap '
          f'resamples CPU {res["ref_boot_cpu"]:.2f} s, extrapolated to '
          f'{args.num_bootstrap}: total CPU {res["ref_time"]:.1f} s '
          f'(wall {res["ref_wall"]:.1f} s)')
    print(f'vectorised (full {args.num_bootstrap} resamples): CPU '
          f'{res["fast_time"]:.2f} s (wall {res["fast_wall"]:.2f} s)')
    print(f'identical curve, rates and CPM: {res["identical"]}; band of '
          f'{args.ref_resamples} resamples max |diff| '
          f'{res["band_max_diff"]:.2e}')
    print(f'speed ratio (reference / vectorised, CPU time): '
          f'{res["speedup"]:.1f}x (required >= {args.min_speedup:g}x); '
          f'wall-clock ratio {res["wall_speedup"]:.1f}x')
    ok = (res['identical'] and res['band_max_diff'] < 1e-6
          and res['speedup'] >= args.min_speedup)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
