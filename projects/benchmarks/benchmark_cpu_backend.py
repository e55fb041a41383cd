# Copyright (c) mmlesion contributors. All rights reserved.
"""Whole-scan inference on a CPU: eager torch against the exported backends
(``tools/infer_volume.py --backend onnxruntime|openvino``), timed
alternately in one run, at the same threads, on the same scan.

Example::

    python projects/benchmarks/benchmark_cpu_backend.py --quick
    python projects/benchmarks/benchmark_cpu_backend.py --scan-size 512 40 \\
        --repeats 3 [--config CONFIG] [--checkpoint CKPT] [--scan SCAN]

Each timed run is a whole scan as ``tools/infer_volume.py`` runs it, files
aside: read, resample, detect every slice, stack the boxes into findings,
measure the findings kept (RECIST). Each backend's exports (or their read
from the cache beside ``--checkpoint``) and checks come first, untimed.
Then ``--warmup`` untimed runs of each side, and ``--repeats`` timed runs
of each, interleaved (torch, onnxruntime, openvino, torch, ...) so that a
change of the machine's load hits all. Every side runs at torch's threads
(the backends' intra-op threads are set to them). Printed per side: seconds per
scan and per slice (median, min-max), and the detector's share (its loop
over the slices, ``detect_slices``: test pipeline, network, RPN decoding
and NMS, RoI head) and the process's CPU seconds per scan (every thread's;
steadier than the wall time on a loaded machine) and stacking and RECIST
(the same work in every side); then the convolutions alone in each. The
last lines, one per backend (``--backends``' order), are the ratio of the
medians per scan and whether every run found what the first torch run
found (the same kept 2D boxes, each within 0.5 px and its score within 1e-3:
:func:`~mmlesion.apis.whole_scan.backend.compare_detections`).

Findings are kept as ``tools/infer_volume.py`` keeps them by default: at
the per-scan operating point of :data:`~mmlesion.apis.whole_scan.settings.
DEFAULT_FP_PER_SCAN` false findings a scan (``--fp-per-scan``), the
checkpoint's record; only those are measured. Random weights have no
record, and every finding of theirs is false: the best
``DEFAULT_FP_PER_SCAN`` findings of an untimed torch run are kept (their
threshold, on the findings' own scores, used in every side).
``--measure-all`` keeps and measures every finding instead (what a
checkpoint without a record gives: random weights keep some 30 a slice).

Without ``--scan`` a synthetic chest scan of ``--scan-size`` is generated
(:mod:`projects.study_demo.synthetic.volumes`); without ``--checkpoint`` the
detector has random weights (the same layers: the same cost per slice).
``--quick``: the full-size R50-FPN 3-slice config on a 512-pixel scan of a
few slices, 1 warm-up and 3 timed runs of each (a few minutes on 2 cores).
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

from mmlesion_cli import package_json, tool_parser  # noqa: E402
from mmlesion_cli.common_args import check_config_file  # noqa: E402
from projects.benchmarks.benchmark_timing import (  # noqa: E402
    add_timing_arguments, check_timing)

#: The full-size 2.5D config ``--quick`` runs (and the default).
FULL_SIZE_CFG = ('configs/elixirnet/'
                 'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py')
#: ``--quick``: scan size (in-plane pixels, slices), warm-up and repeats.
QUICK = dict(scan_size=[512, 8], warmup=1, repeats=3)


def _default_fp_per_scan() -> int:
    """``tools/infer_volume.py``'s default ``--fp-per-scan`` (read without
    importing torch)."""
    return int(package_json('apis/whole_scan/tool_defaults.json')
               ['RunSettings']['fp_per_scan'])


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--config', default=FULL_SIZE_CFG,
                        help='the 2.5D detector config')
    parser.add_argument('--checkpoint',
                        help='its weights (default: random weights)')
    parser.add_argument('--scan', help='default: a synthetic chest scan')
    parser.add_argument(
        '--pixel-spacing', type=float, default=0.8,
        help='in-plane mm/px the slices are resampled to (DeepLesion at 512 '
        'px)')
    parser.add_argument('--scan-size', type=int, nargs=2, default=[512, 40],
                        metavar=('XY', 'Z'),
                        help='synthetic scan: in-plane pixels and slices')
    parser.add_argument(
        '--backends', nargs='+', default=['onnxruntime', 'openvino'],
        choices=package_json('apis/whole_scan/tool_defaults.json')
        ['BACKENDS'][1:],
        help='the backends timed against eager torch (the last line is the '
        "last one's)")
    parser.add_argument('--batch-size', type=int, default=4,
                        help='slices per forward pass')
    parser.add_argument(
        '--quick', action='store_true',
        help=f"the full-size config on a {QUICK['scan_size'][0]}-pixel scan "
        f"of {QUICK['scan_size'][1]} slices, {QUICK['warmup']} warm-up and "
        f"{QUICK['repeats']} timed runs of each (overrides --config, "
        '--scan-size, --warmup and --repeats)')
    parser.add_argument(
        '--measure-all', action='store_true',
        help='keep and measure every finding (default: those at the '
        'per-scan operating point of infer_volume.py, the best '
        f"{_default_fp_per_scan()} findings of random weights)")
    add_timing_arguments(parser, warmup=1, repeats=3)
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)
    if args.quick:
        args.config = FULL_SIZE_CFG
        args.scan_size = list(QUICK['scan_size'])
        args.warmup, args.repeats = QUICK['warmup'], QUICK['repeats']
    check_config_file(parser, '--config', args.config)
    check_timing(args.warmup, args.repeats)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    from projects.benchmarks.synthetic_scans import write_synthetic_scans
    with tempfile.TemporaryDirectory() as tmp:
        scan = args.scan or write_synthetic_scans(Path(tmp) / 'v', 1,
                                                  *args.scan_size)[0]
        return _run(args, scan)


def _spread(values, unit: str = 's') -> str:
    """``median unit (min-max)``."""
    return (f'{statistics.median(values):.3f} {unit} ({min(values):.3f}-'
            f'{max(values):.3f})')


def _run(args, scan: str) -> dict:
    import torch
    from mmengine.config import Config

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apis.detector_loader import (DetectorLoadSettings,
                                               init_lesion_detector)
    from mmlesion.apis.whole_scan.backend import (BackendKey,
                                                  attach_backend,
                                                  attached_parts,
                                                  compare_detections,
                                                  detach_backend,
                                                  use_backend)
    from mmlesion.apis.whole_scan.infer import (ScanSteps, infer_volume,
                                                stack_result)
    from mmlesion.apis.whole_scan.measure import measure_result
    from mmlesion.apis.whole_scan.model import config_record
    from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                                   volume_settings_from_config)
    from mmlesion.datasets.volumes import load_ct_volume
    from mmlesion.utils.checkpoints.checksum import sha256_file
    from mmlesion.utils.writing.atomic import atomic_write_text
    load_before = os.getloadavg()
    cfg = Config.fromfile(args.config)
    if args.checkpoint is None:  # random weights: nothing downloaded
        cfg.model.backbone.init_cfg = None
        torch.manual_seed(0)  # the same weights, boxes and findings
    settings = volume_settings_from_config(cfg, args.pixel_spacing,
                                           args.config)
    loaded = init_lesion_detector(cfg, args.checkpoint,
                                  DetectorLoadSettings())
    model, meta = loaded.model.eval(), loaded.checkpoint_meta
    key = BackendKey(args.checkpoint,
                     args.checkpoint and sha256_file(args.checkpoint),
                     config_record(cfg).text)
    parts, exports = {}, {}
    for backend in args.backends:
        status = use_backend(model, backend, key)
        print(status.line())
        if status.backend != backend:
            raise SystemExit(f'{args.config}: {status.reason}')
        parts[backend], exports[backend] = attached_parts(model), \
            status.line()
    detection = DetectionSettings(batch_size=args.batch_size,
                                  show_progress=False)
    kept = 'every finding kept and measured (--measure-all)'
    if not args.measure_all:
        detach_backend(model)
        detection, kept = _kept_at_operating_point(
            model, args, scan, settings, detection, meta)
    print(kept)

    def whole_scan(backend: str):
        """One scan from its file; the seconds, the detector's seconds and
        the 2D boxes."""
        detach_backend(model)
        if backend != 'torch':
            attach_backend(model, parts[backend].features,
                           parts[backend].box_head)
        start, cpu = time.perf_counter(), time.process_time()
        volume = load_ct_volume(scan)
        result = infer_volume(model, volume, settings, detection,
                              steps=ScanSteps(measure=False, stack=False))
        boxes = result.slice_detections
        finish = time.perf_counter()
        stack_result(result, volume)
        measure_result(result, volume)
        end = time.perf_counter()
        return (end - start, result.detect_seconds, boxes, result,
                time.process_time() - cpu, end - finish)

    sides = ('torch', ) + tuple(args.backends)
    for _ in range(args.warmup):
        for side in sides:
            whole_scan(side)
    runs = {side: [] for side in sides}
    for _ in range(args.repeats):
        for side in sides:
            runs[side].append(whole_scan(side))
    reference = runs['torch'][0][2]
    last = runs['torch'][0][3]
    slices = last.num_slices
    threads = torch.get_num_threads()
    print(f'scan {scan}: {last.original.shape_zyx} voxels -> {slices} '
          f'slices of {last.resampled_geometry.shape_zyx[1]} x '
          f'{last.resampled_geometry.shape_zyx[2]} px '
          f'({settings.interval_mm:g} mm, {settings.pixel_spacing:g} mm/px)'
          f'; {last.num_boxes_2d} 2D boxes, {len(last.findings)} findings')
    sessions = ', '.join(f'{b} {parts[b].features.session.threads}'
                         for b in args.backends)
    print(f'threads: torch {threads}, intra-op {sessions}; '
          f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
          f'{args.warmup} warm-up and {args.repeats} timed runs of each, '
          f'alternated; load average {load_before[0]:.1f} before, '
          f'{os.getloadavg()[0]:.1f} after (a shared machine: other jobs '
          'load it)')
    out = dict(config=args.config, checkpoint=args.checkpoint, scan=scan,
               slices=slices, threads=threads, export=exports, kept=kept,
               load_before=load_before[0], load_after=os.getloadavg()[0])
    for side in sides:
        total = [r[0] for r in runs[side]]
        detect = [r[1] for r in runs[side]]
        cpu = [r[4] for r in runs[side]]
        finish = [r[5] for r in runs[side]]
        share = statistics.median(d / t for d, t in zip(detect, total))
        print(f'{side:>13s}: {_spread(total)} per scan, '
              f'{_spread([t / slices for t in total])} per slice; the '
              f'detector {_spread([d / slices for d in detect])} per slice, '
              f'{100 * share:.0f} % of the scan; stacking and RECIST '
              f'{_spread([f / slices for f in finish])} per slice; CPU '
              f'{_spread(cpu)} per scan')
        out[side] = dict(seconds=total, detect_seconds=detect, share=share,
                         cpu_seconds=cpu, finish_seconds=finish)
    detach_backend(model)  # the torch side of the part is torch's
    convs = _time_convolutions(model, parts, args, last, statistics.median(
        r[1] for r in runs['torch']) / slices)
    out.update(convolutions=convs)
    alone = ', '.join(f"{b} {convs[b]:.3f} s ({convs['torch'] / convs[b]:.2f}"
                      'x)' for b in args.backends)
    print(f'convolutions alone (backbone, neck, RPN head; a batch of '
          f"{args.batch_size}): eager {convs['torch']:.3f} s per slice, "
          f"{alone}; the rest of the eager detector {convs['rest']:.3f} s "
          'per slice')
    lines = []
    for backend in args.backends:
        agreements = [compare_detections(reference, r[2])
                      for r in runs['torch'] + runs[backend]]
        same = all(a.same for a in agreements)
        worst = max(agreements,
                    key=lambda a: (a.unmatched, a.box_px, a.score))
        ratio = (statistics.median(r[0] for r in runs['torch'])
                 / statistics.median(r[0] for r in runs[backend]))
        detector = (statistics.median(r[1] for r in runs['torch'])
                    / statistics.median(r[1] for r in runs[backend]))
        cpu = (statistics.median(r[4] for r in runs['torch'])
               / statistics.median(r[4] for r in runs[backend]))
        out[backend].update(ratio=ratio, detector_ratio=detector, same=same,
                            worst=worst.__dict__, cpu_ratio=cpu)
        print(f'{backend} against the first torch run: {worst.unmatched} '
              f'boxes unmatched, boxes within {worst.box_px:.2g} px, scores '
              f'within {worst.score:.2g}; CPU seconds per scan {cpu:.2f}x '
              'fewer')
        precision = parts[backend].features.session.precision
        lines.append(f'{ratio:.2f}x eager per scan with {backend} (the '
                     f'detector alone {detector:.2f}x; {threads} threads, '
                     f'{precision}) same findings: {same}')
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=1))
    print('\n'.join(lines))
    return out


def _kept_at_operating_point(model, args, scan: str, settings, detection,
                             meta: dict):
    """``detection`` keeping the findings at the default per-scan operating
    point (module doc) and a line saying which."""
    from dataclasses import replace

    from mmlesion.apis.whole_scan.infer import ScanSteps, infer_volume
    from mmlesion.apis.whole_scan.model import choose_operating_point
    from mmlesion.apis.whole_scan.run import detection_at
    from mmlesion.apis.whole_scan.settings import (DEFAULT_FP_PER_SCAN,
                                                   RunSettings)
    from mmlesion.datasets.volumes import load_ct_volume
    if args.checkpoint is not None:
        point = choose_operating_point(meta, RunSettings(detection=detection),
                                       args.checkpoint)
        return detection_at(point, detection), (
            "findings kept at the checkpoint's operating point: "
            f'{point.source} {point.threshold:g}')
    result = infer_volume(model, load_ct_volume(scan), settings, detection,
                          steps=ScanSteps(measure=False))
    scores = sorted((f.score for f in result.findings), reverse=True)
    count = int(DEFAULT_FP_PER_SCAN)
    if len(scores) <= count:
        return detection, f'every finding kept ({len(scores)})'
    threshold = scores[count - 1]
    return replace(detection, keep_thr=threshold, keep_on='finding'), (
        f'findings kept at a per-scan operating point of {count} false '
        f'findings (random weights: all false): score >= {threshold:g}, '
        f'{sum(s >= threshold for s in scores)} of {len(scores)}')


def _time_convolutions(model, parts, args, result,
                       eager_detector: float) -> dict:
    """Median seconds per slice of the exported convolutions in torch and
    in each backend (``parts``: its runners; interleaved, on a batch of the
    scan's padded slice size), and what the eager detector
    (``eager_detector`` s per slice) spends besides."""
    import torch

    from mmlesion.apis.whole_scan.backend import ExportedPart, dense_head_of
    from projects.benchmarks.benchmark_timing import time_interleaved
    size = [-(-n // 32) * 32 for n in result.resampled_geometry.shape_zyx[1:]]
    channels = next(iter(parts.values())).features.layout.in_channels
    inputs = torch.randn(args.batch_size, channels, *size,
                         generator=torch.Generator().manual_seed(0))
    part = ExportedPart(model, dense_head_of(model))
    calls = dict(torch=lambda: part(inputs))
    calls.update({b: (lambda r=p.features: r(inputs))
                  for b, p in parts.items()})
    with torch.no_grad():
        times = time_interleaved(calls, args.warmup, args.repeats, 'cpu')
    out = {k: statistics.median(v) / args.batch_size
           for k, v in times.items()}
    out['rest'] = eager_detector - out['torch']
    return out


if __name__ == '__main__':
    main()
