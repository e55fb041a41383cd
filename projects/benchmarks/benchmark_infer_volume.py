# Copyright (c) mmlesion contributors. All rights reserved.
"""Speed of detection on a CT scan: slices per second, batched vs one slice
at a time (the baseline, measured in the same run), with 0..N processes
preparing the slices while the model runs, and where the time goes.

Example::

    python projects/benchmarks/benchmark_infer_volume.py \\
        --config configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py \\
        --pixel-spacing 1.4 --batch-sizes 1 4 8 --workers 0 1 2 \\
        [--checkpoint CKPT] [--scan SCAN] [--device cuda:0]

Without ``--scan`` a synthetic chest scan of ``--scan-size`` is generated
(:mod:`projects.study_demo.synthetic.volumes`); without ``--checkpoint`` the
model has random weights (same layers, so the same cost per slice up to the
number of boxes kept). ``--amp`` runs the detector under float16 autocast
(CUDA). The end-to-end line adds reading, resampling and box stacking to
the detection time of the fastest batch size: that is what a user waits for
per scan (the goal for the full-size 2.5D detectors on one H100 with AMP:
200 slices/s or more). The pipeline line is the test pipeline alone
(slices/s of :func:`~mmlesion.apis.whole_scan.slices.volume_slice_loader`
with each ``--workers`` count, no model): the most the detection loop can
reach with that many workers. Timed runs of the batch sizes and worker
counts are interleaved (each repeat runs them all), the best of
``--repeats`` is kept.

Whole runs: each of ``--repeats`` rounds reads the file alone, then runs
read + resample + detect (largest batch size) + stack as one timed call
for three paths and every ``--workers`` count: ``today`` (SimpleITK
resampling, the configured transforms slice by slice: the path before
2026-11-24), ``torch-resample`` (only the resampling changed) and ``new``
(torch resampling and batched windowing, ``infer_volume``'s default).
Printed per path: median (min-max) seconds, the parts' medians and the
ratio to the read time (the median over runs of a run's time over its own
read, and the fastest run over the fastest read). With ``--stand-in-ms 0``
(a detector of no cost) that is the pipeline around the model; the goal is
at most 3x the read time. ``--stand-in-boxes N`` makes the stand-in
predict N boxes per slice, so that stacking has tens of thousands.
"""
# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from mmlesion_cli import tool_parser  # noqa: E402
from mmlesion_cli.common_args import (  # noqa: E402
    add_trust_checkpoint_argument, check_config_file)


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--config',
        default='configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py',
        help='the 2.5D detector config')
    parser.add_argument(
        '--checkpoint', help='its weights (default: random weights)')
    parser.add_argument('--scan', help='default: a synthetic chest scan')
    parser.add_argument(
        '--pixel-spacing', type=float, default=1.4,
        help='in-plane mm/px the slices are resampled to')
    parser.add_argument(
        '--batch-sizes', type=int, nargs='+', default=[1, 4, 8],
        help='slices per forward pass, one timing each')
    parser.add_argument(
        '--workers', type=int, nargs='+', default=[0],
        help='threads (or processes, --worker-type) preparing slices while '
        'the model runs, one timing each (0: in the main process)')
    parser.add_argument(
        '--worker-type', choices=('thread', 'process'), default='thread',
        help='how --workers run (mmlesion.apis.whole_scan.slices)')
    parser.add_argument(
        '--pipeline-only', action='store_true',
        help='time only the test pipeline with each --workers count (no '
        'model: cheap for a full-size config on a CPU)')
    parser.add_argument(
        '--stand-in-ms', type=float, metavar='MS',
        help='replace the detector by a stand-in that waits MS ms per slice '
        'without holding the GIL and finds nothing (what a GPU forward pass '
        'looks like to the CPU): measures how much of the pipeline the '
        'workers hide, on a machine without a GPU')
    parser.add_argument(
        '--stand-in-boxes', type=int, default=0, metavar='N',
        help='boxes per slice the stand-in detector predicts (the same '
        'boxes, jittered, on every slice: stacking time with N x slices '
        'boxes)')
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed runs per batch size (best kept) and '
                        'interleaved rounds of the whole runs (median)')
    parser.add_argument('--scan-size', type=int, nargs=2, default=[160, 120],
                        metavar=('XY', 'Z'),
                        help='synthetic scan: in-plane pixels and slices')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument('--amp', action='store_true',
                        help='float16 autocast (CUDA)')
    parser.add_argument('--json', help='also write the results here')
    add_trust_checkpoint_argument(parser)
    args = parser.parse_args(argv)
    check_config_file(parser, '--config', args.config)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    for w in args.workers:
        from mmlesion.apis.whole_scan.slices import check_workers
        check_workers(w, args.worker_type)
    if args.repeats < 1:
        raise ValueError(f'--repeats must be >= 1, got {args.repeats}')
    with tempfile.TemporaryDirectory() as tmp:
        scan = args.scan
        if scan is None:
            from projects.study_demo.synthetic.volumes import \
                generate_demo_volumes
            generate_demo_volumes(Path(tmp) / 'v', seed=0, num_luna=1,
                                  num_kits=0, num_lits=0, val_fraction=0.,
                                  size_range=(args.scan_size[0],) * 2,
                                  num_slices_range=(args.scan_size[1],) * 2)
            scan = str(next((Path(tmp) / 'v').rglob('*.mhd')))
        return _run(args, scan)


def _spread(times) -> str:
    """``median s (min-max, n runs)``."""
    return (f'{statistics.median(times):.3f} s ({min(times):.3f}-'
            f'{max(times):.3f}, {len(times)} runs)')


def _run(args, scan: str) -> dict:
    import torch
    from mmengine.config import Config

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apis.detector_loader import (DetectorLoadSettings,
                                               init_lesion_detector)
    from mmlesion.apis.whole_scan.detect import detect_slices
    from mmlesion.apis.whole_scan.resample import prepare_volume
    from mmlesion.apis.whole_scan.settings import (
        DetectionSettings, build_volume_pipeline, volume_settings_from_config)
    from mmlesion.apis.whole_scan.slices import (volume_slice_dataset,
                                                 volume_slice_loader)
    from mmlesion.datasets.volumes import load_ct_volume
    from mmlesion.evaluation.functional.box_stacking import (
        StackSettings, stack_slice_boxes)
    from mmlesion.utils.writing.atomic import atomic_write_text
    from projects.benchmarks.benchmark_timing import sync
    cfg = Config.fromfile(args.config)
    settings = volume_settings_from_config(cfg, args.pixel_spacing,
                                           args.config)
    t = time.perf_counter()
    volume = load_ct_volume(scan)
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    resampled = prepare_volume(volume, settings)
    t_resample = time.perf_counter() - t
    depth = resampled.shape_zyx[0]
    dataset = volume_slice_dataset(
        resampled.array.astype('float32', copy=False),
        build_volume_pipeline(settings), resampled.spacing_zyx[0],
        resampled.spacing_zyx[2], str(scan), 'scan')
    pipeline_best = {w: float('inf') for w in args.workers}
    for _ in range(args.repeats):  # the pipeline alone, no model
        for w in args.workers:
            t = time.perf_counter()
            for _batch in volume_slice_loader(dataset, max(args.batch_sizes),
                                              w, args.worker_type):
                pass
            pipeline_best[w] = min(pipeline_best[w], time.perf_counter() - t)
    if args.pipeline_only:
        return _report_pipeline_only(args, scan, volume.shape_zyx, resampled,
                                     settings, t_load, t_resample,
                                     pipeline_best, atomic_write_text)
    if args.stand_in_ms is not None:
        from projects.benchmarks.stand_in_detector import StandInDetector
        model = StandInDetector(args.stand_in_ms, args.stand_in_boxes)
    else:
        model = init_lesion_detector(
            cfg, args.checkpoint,
            DetectorLoadSettings(device=args.device)).model
        model.eval()
    amp = torch.autocast(device_type=args.device.split(':')[0],
                         dtype=torch.float16,
                         enabled=args.amp and args.device.startswith('cuda'))
    with amp:
        detect_slices(model, resampled, settings, DetectionSettings(
            batch_size=max(args.batch_sizes), show_progress=False))  # warm-up
    best = {(bs, w): float('inf') for bs in args.batch_sizes
            for w in args.workers}
    boxes = scores = None
    for _ in range(args.repeats):
        for bs, w in best:
            sync(args.device)
            t = time.perf_counter()
            with amp:
                found = detect_slices(
                    model, resampled, settings, DetectionSettings(
                        batch_size=bs, show_progress=False, workers=w,
                        worker_type=args.worker_type))
                boxes, scores = found.boxes, found.scores
            sync(args.device)
            best[bs, w] = min(best[bs, w], time.perf_counter() - t)
    t = time.perf_counter()
    findings = stack_slice_boxes(list(range(depth)), boxes, scores,
                                 StackSettings(score_thr=.05))
    t_stack = time.perf_counter() - t
    bs0, w0 = args.batch_sizes[0], args.workers[0]
    base = best[bs0, w0]

    # whole runs, timed as a user waits for them: read the file, resample
    # (today's SimpleITK path and the torch one), detect, stack; the read
    # alone in the same rounds (interleaved: a change of load hits all)
    bs_full = max(args.batch_sizes)

    def full_run(path: str, w: int) -> dict:
        backend, batched = _PATHS[path]
        sync(args.device)
        t0 = time.perf_counter()
        vol = load_ct_volume(scan)
        t1 = time.perf_counter()
        res = prepare_volume(vol, settings, backend)
        t2 = time.perf_counter()
        with amp:
            found = detect_slices(
                model, res, settings, DetectionSettings(
                    batch_size=bs_full, show_progress=False, workers=w,
                    worker_type=args.worker_type),
                batched_windowing=batched)
            b, s = found.boxes, found.scores
        sync(args.device)
        t3 = time.perf_counter()
        stack_slice_boxes(list(range(len(b))), b, s,
                          StackSettings(score_thr=.05))
        t4 = time.perf_counter()
        return dict(read=t1 - t0, resample=t2 - t1, detect=t3 - t2,
                    stack=t4 - t3, total=t4 - t0)

    paths = [(path, w) for path in _PATHS for w in args.workers]
    runs = {p: [] for p in paths}
    reads = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        load_ct_volume(scan)
        reads.append(time.perf_counter() - t)
        for p in paths:
            runs[p].append(full_run(*p))
    by_workers = {}
    for w in args.workers:
        fastest = min(best[bs, w] for bs in args.batch_sizes)
        end_to_end = t_load + t_resample + fastest + t_stack
        by_workers[w] = dict(
            pipeline_slices_per_second=round(depth / pipeline_best[w], 2),
            batches={bs: dict(seconds=round(best[bs, w], 3),
                              slices_per_second=round(depth / best[bs, w],
                                                      2))
                     for bs in args.batch_sizes},
            end_to_end_seconds=round(end_to_end, 3),
            end_to_end_slices_per_second=round(depth / end_to_end, 2))
    full = {}
    for (path, w), rs in runs.items():
        totals = [r['total'] for r in rs]
        full[f'{path}/{w}'] = dict(
            path=path, resample=_PATHS[path][0],
            batched_windowing=_PATHS[path][1], workers=w,
            batch_size=bs_full,
            seconds=[round(v, 4) for v in totals],
            median_seconds=round(statistics.median(totals), 4),
            parts={k: round(statistics.median(r[k] for r in rs), 4)
                   for k in ('read', 'resample', 'detect', 'stack')},
            # each run against its own read (the same load), the median
            # of those; and the fastest run against the fastest read
            ratio_to_read=round(statistics.median(
                r['total'] / r['read'] for r in rs), 3),
            ratio_min_to_min_read=round(
                min(totals) / min(min(reads), *(r['read'] for r in rs)), 3))
    detector = (f'stand-in detector waiting {args.stand_in_ms} ms per '
                f'slice, {args.stand_in_boxes} boxes per slice'
                if args.stand_in_ms is not None else
                f'{args.device}{" AMP" if args.amp else ""}')
    print(f'scan {scan}: {volume.shape_zyx} voxels -> {depth} slices of '
          f'{settings.interval_mm} mm at {settings.pixel_spacing} mm/px '
          f'({resampled.shape_zyx[1]} x {resampled.shape_zyx[2]} px), '
          f'{detector}, {torch.get_num_threads()} threads, '
          f'{os.cpu_count()} CPUs')
    print(f'load {t_load:.2f} s, resample {t_resample:.2f} s, stacking '
          f'{sum(len(b) for b in boxes)} boxes into {len(findings)} '
          f'findings {t_stack * 1000:.1f} ms')
    print(f'pipeline alone (no model, {args.worker_type} workers): ' +
          ', '.join(f"{r['pipeline_slices_per_second']:.1f} slices/s with "
                    f'{w} workers' for w, r in by_workers.items()))
    print(f'batch  workers  seconds  slices/s  speed-up vs batch {bs0}, '
          f'{w0} workers')
    for (bs, w), sec in best.items():
        print(f'{bs:5d}  {w:7d}  {sec:7.2f}  {depth / sec:8.2f}  '
              f'{base / sec:.2f}x')
    for w, r in by_workers.items():
        print(f'end to end (read + resample + fastest batch + stacking), '
              f"{w} workers: {r['end_to_end_seconds']:.2f} s, "
              f"{r['end_to_end_slices_per_second']:.1f} slices/s")
    around = args.stand_in_ms == 0
    print(f'whole runs (read + resample + detect, batch {bs_full} + '
          f'stacking), {args.repeats} interleaved rounds; seconds: median '
          '(min-max); parts: medians')
    print(f'  read alone: {_spread(reads)}')
    for key, r in full.items():
        parts = ', '.join(f'{k} {v:.3f}' for k, v in r['parts'].items())
        ratio = (f"{r['ratio_to_read']:.2f}x its read (fastest run / "
                 f"fastest read: {r['ratio_min_to_min_read']:.2f}x)"
                 if args.repeats >= 2 else
                 'ratio to the read time: needs --repeats >= 2')
        print(f"  {r['path']:>13s}, {r['workers']} workers: "
              f"{_spread(r['seconds'])} = {ratio} ({parts})")
    if around and args.repeats >= 2:
        w_new = min(args.workers,
                    key=lambda w: full[f'new/{w}']['median_seconds'])
        w_old = min(args.workers,
                    key=lambda w: full[f'today/{w}']['median_seconds'])
        print(f'the pipeline around the model (a detector of no cost): '
              f"{full[f'new/{w_new}']['ratio_to_read']:.2f}x the read time "
              f"(median over runs of run / its read; {w_new} workers; "
              f"today's path: {full[f'today/{w_old}']['ratio_to_read']:.2f}"
              f'x, {w_old} workers); goal <= 3x')
    first = by_workers[w0]
    result = dict(scan=scan, device=args.device, amp=args.amp,
                  num_slices=depth, workers=w0,
                  stand_in_ms=args.stand_in_ms,
                  worker_type=args.worker_type,
                  end_to_end_seconds=first['end_to_end_seconds'],
                  end_to_end_slices_per_second=first[
                      'end_to_end_slices_per_second'],
                  load_seconds=round(t_load, 3),
                  resample_seconds=round(t_resample, 3),
                  stack_seconds=round(t_stack, 4),
                  batches=first['batches'],
                  speedup={bs: round(base / best[bs, w0], 3)
                           for bs in args.batch_sizes},
                  by_workers=by_workers,
                  read_seconds=[round(v, 4) for v in reads],
                  whole_runs=full, threads=torch.get_num_threads())
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    return result


#: The whole runs timed: name -> (resampling backend, batched windowing).
#: ``today``: SimpleITK and the configured transforms slice by slice (the
#: path before torch resampling); ``torch-resample``: only the resampling
#: changed; ``new``: the default path of ``infer_volume``.
_PATHS = {'today': ('sitk', False), 'torch-resample': ('torch', False),
          'new': ('torch', True)}


def _report_pipeline_only(args, scan, shape_zyx, resampled, settings, t_load,
                          t_resample, pipeline_best, write_text) -> dict:
    """Print and return the ``--pipeline-only`` timings."""
    depth = resampled.shape_zyx[0]
    print(f'scan {scan}: {shape_zyx} voxels -> {depth} slices of '
          f'{settings.interval_mm} mm at {settings.pixel_spacing} mm/px '
          f'({resampled.shape_zyx[1]} x {resampled.shape_zyx[2]} px); '
          f'load {t_load:.2f} s, resample {t_resample:.2f} s')
    rates = {w: round(depth / sec, 2) for w, sec in pipeline_best.items()}
    print(f'test pipeline alone, batches of {max(args.batch_sizes)}, '
          f'{args.worker_type} workers: ' +
          ', '.join(f'{r:.1f} slices/s with {w} workers'
                    for w, r in rates.items()))
    result = dict(scan=scan, num_slices=depth, worker_type=args.worker_type,
                  load_seconds=round(t_load, 3),
                  resample_seconds=round(t_resample, 3),
                  pipeline_slices_per_second=rates)
    if args.json:
        write_text(args.json, json.dumps(result, indent=1))
    return result


if __name__ == '__main__':
    main()
