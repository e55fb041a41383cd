# Copyright (c) mmlesion contributors. All rights reserved.
"""A day's scans through one 2.5D detector: the batch of
``tools/infer_volume.py`` (one model; while it runs on a scan, threads read
and resample the next scan and write the files of the last one) against
the same batch one step after another (``--no-overlap``, the baseline),
measured in the same run.

Example::

    python projects/benchmarks/benchmark_infer_scans.py \\
        --config configs/elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py \\
        --pixel-spacing 0.8 --scan-size 512 300 --num-scans 4 \\
        --stand-in-ms 5 --repeats 2

``--num-scans`` synthetic chest scans of ``--scan-size`` are written as
``.mhd`` (:mod:`mmlesion.datasets.demo.volumes`). Without ``--stand-in-ms``
the config's detector runs (random weights unless ``--checkpoint``;
``--device``, ``--amp``); with it a stand-in that waits that long per slice
without holding the GIL (:class:`~projects.benchmarks.stand_in_detector.
StandInDetector`: 5 ms is a detector at 200 slices/s, what a GPU looks
like to the CPU). Each of ``--repeats`` rounds reads every scan alone, then
runs the whole batch (read, resample, detect, stack, RECIST, pictures,
report; every file written) with and without the overlap, in turn.
Printed: median (min-max) seconds per batch and per scan, the ratio, the
read time per scan, each path's parts per scan (``scans.csv``: load = read
and resample, detect = the model, stacking and RECIST, write = the
files; overlapped, they run at the same time) and whether both batches
wrote the same findings.
"""
import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import (add_trust_checkpoint_argument,
                                      check_config_file)


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument(
        '--config',
        default='configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py',
        help='the 2.5D detector config')
    parser.add_argument('--checkpoint',
                        help='its weights (default: random weights)')
    parser.add_argument('--num-scans', type=int, default=4,
                        help='scans in the batch (>= 2)')
    parser.add_argument('--scan-size', type=int, nargs=2, default=[160, 120],
                        metavar=('XY', 'Z'),
                        help='synthetic scans: in-plane pixels and slices')
    parser.add_argument('--pixel-spacing', type=float, default=1.4,
                        help='in-plane mm/px the slices are resampled to')
    parser.add_argument('--batch-size', type=int, default=32,
                        help='slices per forward pass')
    parser.add_argument('--workers', type=int, default=1,
                        help='threads preparing slices while the model runs')
    parser.add_argument(
        '--stand-in-ms', type=float, metavar='MS',
        help='a stand-in detector waiting MS ms per slice without holding '
        'the GIL (default: the config\'s detector)')
    parser.add_argument('--stand-in-boxes', type=int, default=5, metavar='N',
                        help='boxes per slice the stand-in predicts')
    parser.add_argument('--repeats', type=int, default=2,
                        help='interleaved rounds (median over them, >= 2)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument('--amp', action='store_true',
                        help='float16 autocast for the detector (CUDA)')
    parser.add_argument('--json', help='also write the results here')
    add_trust_checkpoint_argument(parser)
    args = parser.parse_args(argv)
    check_config_file(parser, '--config', args.config)
    if args.num_scans < 2:
        parser.error('--num-scans must be >= 2: a batch overlaps a scan '
                     'with the next')
    if args.repeats < 2:
        parser.error('--repeats must be >= 2 (one round has no spread)')
    return args


def _spread(values) -> str:
    return (f'{statistics.median(values):.3f} ({min(values):.3f}-'
            f'{max(values):.3f})')


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch
    from mmengine.config import Config

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apis.whole_scan.batch import run_batch_inference
    from mmlesion.apis.whole_scan.model import init_volume_detector
    from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                                   RunSettings)
    from mmlesion.datasets.demo.volumes import generate_demo_volumes
    from mmlesion.datasets.volumes import load_ct_volume
    from projects.benchmarks.stand_in_detector import StandInDetector
    from mmlesion.utils.atomic_io import atomic_write_text
    from mmlesion.utils.benchmark_timing import sync

    cfg = Config.fromfile(args.config)
    if args.stand_in_ms is not None:
        model = StandInDetector(args.stand_in_ms, args.stand_in_boxes)
        detector = (f'stand-in detector waiting {args.stand_in_ms} ms per '
                    f'slice, {args.stand_in_boxes} boxes per slice')
    else:
        model = init_volume_detector(cfg, args.checkpoint, args.device)
        detector = (f'{Path(args.config).name} on {args.device}'
                    + (' with AMP' if args.amp else ''))
    amp = torch.autocast(device_type=args.device.split(':')[0],
                         dtype=torch.float16,
                         enabled=args.amp and args.device.startswith('cuda'))
    xy, z = args.scan_size
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / 'scans'
        generate_demo_volumes(root, seed=0, num_luna=args.num_scans,
                              num_kits=0, num_lits=0, val_fraction=0.,
                              size_range=(xy, xy), num_slices_range=(z, z))
        scans = sorted(str(p) for p in root.rglob('*.mhd'))

        parts = {True: [], False: []}
        run = RunSettings(
            detection=DetectionSettings(batch_size=args.batch_size,
                                        workers=args.workers,
                                        show_progress=False),
            pixel_spacing=args.pixel_spacing, device=args.device,
            overwrite=True, cfg_name=args.config)

        def batch(overlap: bool, out: Path) -> float:
            sync(args.device)
            start = time.perf_counter()
            with amp:
                rows = run_batch_inference(
                    cfg, args.checkpoint, scans, str(out), run, overlap,
                    model)
            sync(args.device)
            seconds = time.perf_counter() - start
            failed = [r for r in rows if r['status'] != 'done']
            if failed:
                raise RuntimeError(f'the batch failed on {failed[0]}')
            parts[overlap].extend(rows)
            return seconds

        batch(True, Path(tmp) / 'warmup')  # allocations, lazy imports
        reads, times = [], {True: [], False: []}
        for round_ in range(args.repeats):
            start = time.perf_counter()
            for scan in scans:
                load_ct_volume(scan)
            reads.append((time.perf_counter() - start) / len(scans))
            for overlap in (False, True):
                times[overlap].append(batch(
                    overlap, Path(tmp) / f'out_{overlap}_{round_}'))
        same = all(
            json.loads((Path(tmp) / 'out_True_0' / name / 'findings.json'
                        ).read_text())['findings'] ==
            json.loads((Path(tmp) / 'out_False_0' / name / 'findings.json'
                        ).read_text())['findings']
            for name in (p.name for p in (Path(tmp) / 'out_True_0').iterdir()
                         if p.is_dir()))
    n = len(scans)
    ratio = statistics.median(a / b for a, b in zip(times[False],
                                                    times[True]))
    result = dict(
        config=args.config, detector=detector, num_scans=n,
        scan_size_xy_z=[xy, z], pixel_spacing=args.pixel_spacing,
        batch_size=args.batch_size, workers=args.workers,
        threads=torch.get_num_threads(), repeats=args.repeats,
        read_seconds_per_scan=[round(v, 4) for v in reads],
        batch_seconds={('overlapped' if k else 'one_after_another'):
                       [round(v, 3) for v in vs] for k, vs in times.items()},
        speedup=round(ratio, 3), same_findings=same,
        parts_per_scan={('overlapped' if k else 'one_after_another'): {
            part: round(statistics.median(float(r[f'{part}_seconds'])
                                          for r in rows), 3)
            for part in ('load', 'detect', 'write')}
            for k, rows in parts.items()})
    print(f'{n} scans of {xy} x {xy} x {z} voxels, {detector}, batch '
          f'{args.batch_size}, {args.workers} slice workers, '
          f'{torch.get_num_threads()} torch threads; {args.repeats} rounds '
          'after 1 warm-up; median (min-max) seconds')
    print(f'  read alone, per scan       {_spread(reads)}')
    for overlap, label in ((False, 'one after another'),
                           (True, 'overlapped')):
        per_scan = [v / n for v in times[overlap]]
        print(f'  {label:26s} {_spread(times[overlap])} per batch, '
              f'{_spread(per_scan)} per scan')
        kind = 'overlapped' if overlap else 'one_after_another'
        print('    parts per scan (median): ' + ', '.join(
            f'{k} {v:.3f}' for k, v in result['parts_per_scan'][kind].items())
            + ' (read + resample, detect + stack + RECIST, files)')
    print(f'one after another / overlapped: {ratio:.2f}x (median of the '
          f'rounds); same findings: {"yes" if same else "NO"}')
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1) + '\n')
    return result


if __name__ == '__main__':
    main()
