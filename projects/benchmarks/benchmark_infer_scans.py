# Copyright (c) mmlesion contributors. All rights reserved.
"""A day's scans through one 2.5D detector: the batch of
``tools/infer_volume.py`` (one model; while it runs on a scan, a thread
reads and resamples the next scans and the last ones are measured and
written: :class:`~mmlesion.apis.whole_scan.settings.Finishing`) against the
same batch one step after another (``--no-overlap``, the baseline) and
against the detector's own time, measured in the same run.

Example::

    python projects/benchmarks/benchmark_infer_scans.py \\
        --config configs/elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py \\
        --pixel-spacing 0.8 --scan-size 512 300 --num-scans 4 \\
        --stand-in-ms 5 --stand-in-boxes 20 --repeats 3

``--num-scans`` synthetic chest scans of ``--scan-size`` are written as
``.mhd``. Without ``--stand-in-ms`` the config's detector runs (random
weights unless ``--checkpoint``; ``--device``, ``--amp``); with it a
stand-in that waits that long per slice without holding the GIL
(:class:`~projects.benchmarks.stand_in_detector. StandInDetector`: 5 ms is a
detector at 200 slices/s, what a GPU looks like to the CPU). Each of
``--repeats`` rounds reads every scan alone, then runs the whole batch
(read, resample, detect, stack, RECIST, pictures, report; every file
written) one step after another, overlapped as the tool does
(``overlapped``) and with each schedule of ``--schedules`` (by default
``threads``: the RECIST measurements in the model's loop and the files
written in a thread; and ``matplotlib``: ``overlapped`` with the pictures
drawn by matplotlib, one figure for a scan's key slices, as before
:class:`~mmlesion.visualization. key_slice_raster.KeySliceRaster`;
``old_code`` is ``overlapped`` with the finishing's earlier code:
:func:`~projects.benchmarks. infer_scans_changes.old_code`; ``huge_pages``
is ``overlapped`` with numpy's huge-page advice,
``RunSettings.huge_pages=True`` (:mod:`mmlesion.utils.huge_pages`),
``not_niced`` with the finishing processes at the batch's priority,
``Finishing(niceness=0)``, ``png_in_turn`` with the key slices' PNGs written
as they are drawn, not by threads, and ``before_evening`` with all three
undone and the overview drawn by matplotlib; ``overview_matplotlib`` is
``overlapped`` with the overview drawn by matplotlib, as before
:class:`~mmlesion.visualization. overview_raster.OverviewRaster`,
``pillow_png`` with the pictures' PNGs encoded by Pillow, as before
:data:`~mmlesion.visualization. pixel_drawing.PNG_ENCODER`,
``stack_in_loop`` with each scan's boxes stacked in the model's loop,
``Finishing(stack_with_detection=True)``, and ``read_ahead_1`` with only the
next scan read ahead, ``Finishing(read_ahead=1)``), in turn, each round
starting one schedule later than the one before. Then (``--change-rounds``)
one scan's files are written with each change of the finishing undone and
done, in turn (:func:`~projects.benchmarks.infer_scans_changes.
time_changes`: the key slices and the overview drawn by matplotlib or as
pixels, PNGs at zlib level 6 or 1, records copied by ``asdict`` or not, PNGs
encoded by Pillow or OpenCV).

With ``--operating-point THR`` the run compares instead every finding
measured and written against the findings kept at a validated threshold,
for a stand-in giving few boxes and one giving ``--low-boxes`` more
low-score boxes per slice (:mod:`~projects.benchmarks.
infer_scans_operating_point`).

Printed: per schedule the median (min-max) seconds per batch and per
scan, CPU seconds and cores kept busy, and its speed against one step
after another, ``threads`` and the detector's own time
(``model_seconds_per_scan``); the parts of a scan (wall and CPU seconds:
read, resample, detect, stack, RECIST, pictures, report, DICOM, other
files); whether every schedule wrote the same findings and pictures (for
matplotlib's, the share of agreeing pixels); the machine's load; each
change's CPU seconds, old and new, and whether both wrote the same files.
"""
# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Dict, Iterator, List, Tuple  # noqa: E402

from mmlesion_cli import tool_parser  # noqa: E402
from mmlesion_cli.common_args import (add_trust_checkpoint_argument,  # noqa
                                      check_config_file)
from projects.benchmarks.infer_scans_changes import (  # noqa: E402
    NEW, old_code, other_renderer, picture_agreement, same_files,
    time_changes)

#: The schedules besides one step after another and ``overlapped`` (the
#: tool's default): name -> ``Finishing`` keywords.
SCHEDULES = {
    'threads': dict(processes=0, recist_with_detection=True),
    'threads_recist_later': dict(processes=0, recist_with_detection=False),
    'processes_1': dict(processes=1),
    'processes_2': dict(processes=2),
    'processes_3': dict(processes=3),
    # overlapped with the pictures drawn by matplotlib (the key slices on
    # one figure, the overview)
    'matplotlib': dict(),
    # overlapped with the pictures and records of before 2026-11-26
    'old_code': dict(),
    # overlapped with numpy's huge-page advice (the code before
    # 2026-11-26's evening: RunSettings.huge_pages=True)
    'huge_pages': dict(),
    # overlapped with the finishing processes at the batch's priority
    # (before 2026-11-26's evening)
    'not_niced': dict(niceness=0),
    # overlapped with the key slices' PNGs written as they are drawn
    # (before 2026-11-26's evening)
    'png_in_turn': dict(),
    # overlapped with the batch code before 2026-11-26's evening: the
    # three changes of that evening undone, the overview by matplotlib
    'before_evening': dict(niceness=0, stack_with_detection=True,
                           read_ahead=1),
    # overlapped with the overview drawn by matplotlib (before
    # OverviewRaster)
    'overview_matplotlib': dict(),
    # overlapped with the pictures' PNGs encoded by Pillow (before
    # 2026-11-26's night)
    'pillow_png': dict(),
    # overlapped with each scan's boxes stacked in the model's loop (before
    # 2026-11-26's night)
    'stack_in_loop': dict(stack_with_detection=True),
    # overlapped with only the next scan read ahead (before 2026-11-26's
    # night)
    'read_ahead_1': dict(read_ahead=1),
}
#: The schedules run with other ``RunSettings``: name -> its fields.
RUN_SCHEDULES = {'huge_pages': dict(huge_pages=True),
                 'before_evening': dict(huge_pages=True)}
#: The schedules run with
#: :func:`~projects.benchmarks.infer_scans_changes.old_code`: name -> its
#: keywords. Where their key slices or their overview come from another
#: renderer (``raster``, ``overview``, True by default:
#: :func:`~projects.benchmarks.infer_scans_changes.other_renderer`), their
#: pictures are compared by :func:`~projects.benchmarks.
#: infer_scans_changes.picture_agreement`, not pixel for pixel.
OLD_CODE_SCHEDULES = {
    # all pictures by matplotlib, the rest of the code now
    'matplotlib': dict(pictures=False, png_level=False, records=False,
                       png_threads=False),
    'old_code': dict(),
}
#: The evening's changes of 2026-11-26 undone one at a time, and the
#: overview drawn by matplotlib (the rest of
#: :func:`~projects.benchmarks.infer_scans_changes.old_code` kept new);
#: ``before_evening``: the code of that afternoon, the evening's three
#: changes undone and the overview by matplotlib.
OLD_CODE_SCHEDULES.update({
    'png_in_turn': dict(NEW, png_threads=True),
    'before_evening': dict(NEW, png_threads=True, overview=True,
                           png_encoder=True),
    'overview_matplotlib': dict(NEW, overview=True),
    'pillow_png': dict(NEW, png_encoder=True),
})
BASELINE = 'one_after_another'
DEFAULT = 'overlapped'
#: The parts of a scan timed one step after another, in their order.
PARTS = ('read', 'resample', 'detect', 'model', 'stack', 'recist', 'write',
         'key_slices', 'overview', 'report', 'dicom', 'other_files')


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
    parser.add_argument(
        '--operating-point', type=float, metavar='THR',
        help='instead of the schedules: every finding measured and written '
        'against the findings kept at a validated threshold THR, for a '
        'stand-in with few boxes and one with --low-boxes more '
        '(projects/benchmarks/infer_scans_operating_point.py)')
    parser.add_argument('--low-boxes', type=int, default=100, metavar='N',
                        help='--operating-point: low-score boxes per slice '
                        'of the poorly trained stand-in')
    parser.add_argument(
        '--schedules', nargs='*', default=['threads', 'matplotlib'],
        choices=sorted(SCHEDULES),
        help='schedules run besides one step after another and the '
        'default one ("overlapped"): threads = the schedule before '
        '2026-11-25 (RECIST in the model\'s loop, files in a thread), '
        'threads_recist_later = RECIST with the files in the thread, '
        'processes_N = N scans (1-3) finished at once in forked '
        'processes, '
        'matplotlib = overlapped with the key slices (one figure for a '
        'scan) and the overview drawn by matplotlib, old_code = overlapped '
        'with the code before 2026-11-26 (a new matplotlib figure per key '
        'slice, the overview by matplotlib, PNGs at zlib level 6, records '
        'copied by dataclasses.asdict), overview_matplotlib = overlapped '
        'with the overview drawn by matplotlib, pillow_png = overlapped '
        'with the PNGs encoded by Pillow, stack_in_loop = overlapped with '
        'the boxes stacked in the model\'s loop, read_ahead_1 = overlapped '
        'with only the next scan read ahead')
    parser.add_argument('--change-rounds', type=int, default=2,
                        help='rounds timing each change of the finishing '
                        'on one scan, old and new in turn (0: none)')
    parser.add_argument('--repeats', type=int, default=2,
                        help='interleaved rounds (median over them; 1 has '
                        'no spread: for trying things out)')
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
    if args.repeats < 1:
        parser.error('--repeats must be >= 1')
    return args


def _spread(values) -> str:
    return (f'{statistics.median(values):.3f} ({min(values):.3f}-'
            f'{max(values):.3f})')


def cpu_seconds() -> float:
    """CPU seconds of this process and its children that ended (the
    forked finishers, once joined)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _load() -> str:
    """The machine's load averages (1, 5, 15 minutes)."""
    try:
        return ', '.join(f'{v:.2f}' for v in os.getloadavg())
    except OSError:
        return 'unknown'


@contextlib.contextmanager
def timed(targets: Dict[str, Tuple[object, str]],
          device: str = 'cpu') -> Iterator[Dict[str, List[float]]]:
    """Wrap ``getattr(owner, name)`` of each part with a timer while in the
    block: ``totals[part] = [wall, cpu, calls]`` (CPU: the process's, so
    only meaningful where nothing else runs, one step after another).

    Args:
        targets (dict): part -> (module or object, attribute name).
        device (str): synchronised after each call (CUDA).

    Yields:
        dict: the totals, filled as the parts run.
    """
    from projects.benchmarks.benchmark_timing import sync
    totals = {part: [0., 0., 0] for part in targets}
    originals = []

    def wrap(part, fn):

        def timed_call(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                sync(device)
                total = totals[part]
                total[0] += time.perf_counter() - wall
                total[1] += time.process_time() - cpu
                total[2] += 1

        return timed_call

    try:
        for part, (owner, name) in targets.items():
            fn = getattr(owner, name)  # a renamed step fails loudly here
            originals.append((owner, name, fn, name in vars(owner)))
            setattr(owner, name, wrap(part, fn))
        yield totals
    finally:
        for owner, name, fn, own in reversed(originals):
            if own:
                setattr(owner, name, fn)
            else:  # a method of the class: drop the instance's wrapper
                delattr(owner, name)


def part_targets(model) -> Dict[str, Tuple[object, str]]:
    """Where each part of a scan is called (see :data:`PARTS`)."""
    import mmlesion.visualization.volume_report as volume_report
    from mmlesion.apis.whole_scan import infer, run
    from mmlesion.apps.whole_scan import batch
    return dict(
        read=(batch, 'read_scan'), resample=(batch, 'prepare_volume'),
        detect=(infer, 'detect_slices'), model=(model, 'test_step'),
        stack=(infer, 'stack_findings'), recist=(batch, 'measure_result'),
        write=(batch, 'write_scan'),
        key_slices=(volume_report.KeySliceRaster, 'draw'),
        overview=(volume_report, 'draw_overview'),
        report=(volume_report, 'write_html_report'),
        dicom=(run, 'write_dicom_results'))


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch
    from mmengine.config import Config

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apis.detector_loader import (DetectorLoadSettings,
                                               init_lesion_detector)
    from mmlesion.apps.whole_scan.batch import (BatchOptions, Finishing,
                                                run_batch_inference)
    from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                                   RunSettings)
    from mmlesion.datasets.volumes import load_ct_volume
    from mmlesion.utils.writing.atomic import atomic_write_text
    from projects.benchmarks.benchmark_timing import sync
    from projects.benchmarks.infer_scans_operating_point import (
        operating_point_comparison, print_comparison)
    from projects.benchmarks.stand_in_detector import StandInDetector
    from projects.benchmarks.synthetic_scans import write_synthetic_scans

    load_before = _load()
    cfg = Config.fromfile(args.config)
    if args.stand_in_ms is not None:
        model = StandInDetector(args.stand_in_ms, args.stand_in_boxes)
        detector = (f'stand-in detector waiting {args.stand_in_ms} ms per '
                    f'slice, {args.stand_in_boxes} boxes per slice')
    else:
        model = init_lesion_detector(
            cfg, args.checkpoint,
            DetectorLoadSettings(device=args.device)).model
        detector = (f'{Path(args.config).name} on {args.device}'
                    + (' with AMP' if args.amp else ''))
    amp = torch.autocast(device_type=args.device.split(':')[0],
                         dtype=torch.float16,
                         enabled=args.amp and args.device.startswith('cuda'))
    names = [BASELINE, DEFAULT] + [s for s in SCHEDULES
                                   if s in args.schedules]
    finishing = {BASELINE: None, DEFAULT: Finishing()}
    finishing.update({s: Finishing(**SCHEDULES[s]) for s in names[2:]})
    with tempfile.TemporaryDirectory() as tmp:
        scans = write_synthetic_scans(Path(tmp) / 'scans', args.num_scans,
                                      *args.scan_size)
        n = len(scans)
        run = RunSettings(
            detection=DetectionSettings(batch_size=args.batch_size,
                                        workers=args.workers,
                                        show_progress=False),
            pixel_spacing=args.pixel_spacing, device=args.device,
            overwrite=True, cfg_name=args.config)
        if args.operating_point is not None:
            result = dict(
                detector=f'stand-in, {args.stand_in_ms or 0} ms per slice, '
                f'{args.stand_in_boxes} boxes per slice (+ {args.low_boxes} '
                'low-score ones: many)', num_scans=n,
                scan_size_xy_z=list(args.scan_size),
                operating_point=args.operating_point,
                threads=torch.get_num_threads(), load_before=load_before,
                **operating_point_comparison(args, cfg, scans, run),
                load_after=_load())
            print_comparison(result)
            if args.json:
                atomic_write_text(args.json,
                                  json.dumps(result, indent=1) + '\n')
            return result
        rows_of = {name: [] for name in names}
        model_of = {name: [] for name in names}
        cpu_of = {name: [] for name in names}
        parts: Dict[str, List[Tuple[float, float]]] = {p: [] for p in PARTS}

        def batch(name: str, out: Path, batch_scans=None) -> float:
            batch_scans = batch_scans or scans
            targets = part_targets(model)
            if name != BASELINE:  # only the model's time: parts overlap
                targets = dict(model=targets['model'])
            sync(args.device)
            with (old_code(**OLD_CODE_SCHEDULES[name]) if name
                  in OLD_CODE_SCHEDULES else contextlib.nullcontext()), timed(
                      targets, args.device) as totals:
                start, cpu = time.perf_counter(), cpu_seconds()
                with amp:
                    rows = run_batch_inference(
                        cfg, args.checkpoint, batch_scans, str(out),
                        replace(run, **RUN_SCHEDULES.get(name, {})),
                        options=BatchOptions(name != BASELINE, model,
                                             finishing[name]))
                sync(args.device)
                seconds = time.perf_counter() - start
                cpu = cpu_seconds() - cpu
            failed = [r for r in rows if r.status != 'done']
            if failed:
                raise RuntimeError(f'the batch failed on {failed[0]}')
            if batch_scans is scans:
                rows_of[name].extend(rows)
                model_of[name].append(totals['model'][0] / n)
                cpu_of[name].append(cpu / n)
                if name == BASELINE:
                    record_parts(totals, seconds)
            return seconds

        def record_parts(totals: dict, seconds: float) -> None:
            per = {p: (t[0] / n, t[1] / n) for p, t in totals.items()}
            inner = ('key_slices', 'overview', 'report', 'dicom')
            per['other_files'] = tuple(
                per['write'][i] - sum(per[p][i] for p in inner)
                for i in (0, 1))
            for part in PARTS:
                parts[part].append(per[part])

        # lazy imports, allocations, first pictures: in this process and
        # (forked) for the finishers
        batch(BASELINE, Path(tmp) / 'warmup_a', scans[:1])
        batch(DEFAULT, Path(tmp) / 'warmup_b', scans[:2])

        def changed_finishing(scan: str, folder: Path) -> Dict[str, dict]:
            """:func:`time_changes` on a scan read, detected and measured
            here."""
            from mmlesion.apps.whole_scan.batch import _load_scan
            from mmlesion.apis.whole_scan.measure import measure_result
            from mmlesion.apis.whole_scan.infer import ScanSteps
            from mmlesion.apis.whole_scan.run import (detect_scan,
                                                      load_volume_run,
                                                      volume_run_config)
            settings = volume_run_config(cfg, run, None).settings
            loaded = load_volume_run(cfg, args.config, None, run, model)
            volume, resampled, _ = _load_scan(
                scan, settings, run.detection.resample_backend)
            with amp:
                result = detect_scan(
                    loaded.model, volume, settings, loaded.info, run.detection,
                    ScanSteps(loaded.rescorer, resampled, measure=False))
            measure_result(result, volume)
            return time_changes(result, volume, loaded.info, folder,
                                args.change_rounds)

        reads = []
        times: Dict[str, List[float]] = {name: [] for name in names}
        for round_ in range(args.repeats):
            start = time.perf_counter()
            for scan in scans:
                load_ct_volume(scan)
            reads.append((time.perf_counter() - start) / n)
            # each round starts one schedule later: no schedule always
            # runs first or after the same one (the machine's state drifts
            # over a round)
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(batch(name,
                                         Path(tmp) / f'out_{name}_{round_}'))
        same = {name: same_files(Path(tmp) / f'out_{BASELINE}_0',
                                 Path(tmp) / f'out_{name}_0')
                for name in names[1:]}
        agreement = {name: picture_agreement(Path(tmp) / f'out_{BASELINE}_0',
                                             Path(tmp) / f'out_{name}_0')
                     for name in names[1:] if name in OLD_CODE_SCHEDULES
                     and other_renderer(OLD_CODE_SCHEDULES[name])}
        changes = {}
        if args.change_rounds > 0:
            changes = changed_finishing(scans[0], Path(tmp) / 'changes')
    load_after = _load()
    model_seconds = statistics.median(model_of[BASELINE])
    ratio = statistics.median(a / b for a, b in zip(times[BASELINE],
                                                    times[DEFAULT]))
    schedules = {}
    old = 'threads' if 'threads' in times else None
    for name in names:
        per_scan = [v / n for v in times[name]]
        schedules[name] = dict(
            batch_seconds=[round(v, 3) for v in times[name]],
            seconds_per_scan=round(statistics.median(per_scan), 3),
            over_model=round(statistics.median(per_scan) / model_seconds, 3),
            speedup=round(statistics.median(
                a / b for a, b in zip(times[BASELINE], times[name])), 3),
            over_old=None if old is None else round(statistics.median(
                a / b for a, b in zip(times[old], times[name])), 3),
            model_seconds_per_scan=round(statistics.median(model_of[name]),
                                         3),
            cpu_seconds_per_scan=round(statistics.median(cpu_of[name]), 3),
            cores_busy=round(statistics.median(
                c * n / t for c, t in zip(cpu_of[name], times[name])), 2),
            parts_per_scan={
                part: round(statistics.median(
                    float(getattr(r, f'{part}_seconds') or 0.)
                    for r in rows_of[name]), 3)
                for part in ('load', 'detect', 'measure', 'write')})
        if name in agreement:
            schedules[name].update(same_findings=same[name][0],
                                   same_pictures=None,
                                   picture_agreement=round(agreement[name],
                                                           4))
        elif name in same:
            schedules[name].update(same_findings=same[name][0],
                                   same_pictures=same[name][1])
    result = dict(
        config=args.config, detector=detector, num_scans=n,
        scan_size_xy_z=list(args.scan_size), pixel_spacing=args.pixel_spacing,
        batch_size=args.batch_size, workers=args.workers,
        threads=torch.get_num_threads(), repeats=args.repeats,
        cpus=len(os.sched_getaffinity(0)) if hasattr(
            os, 'sched_getaffinity') else os.cpu_count(),
        load_before=load_before, load_after=load_after,
        read_seconds_per_scan=[round(v, 4) for v in reads],
        model_seconds_per_scan=round(model_seconds, 3),
        overlapped_over_model=schedules[DEFAULT]['over_model'],
        batch_seconds={k: schedules[k]['batch_seconds']
                       for k in (DEFAULT, BASELINE)},
        speedup=round(ratio, 3),
        same_findings=all(v[0] for v in same.values()),
        same_pictures=all(v[1] for k, v in same.items()
                          if k not in agreement),
        parts_per_scan={k: schedules[k]['parts_per_scan']
                        for k in (DEFAULT, BASELINE)},
        scan_parts={part: dict(
            wall=round(statistics.median(v[0] for v in parts[part]), 3),
            cpu=round(statistics.median(v[1] for v in parts[part]), 3))
            for part in PARTS},
        schedules=schedules, changes=changes)
    _print(result, args, names)
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1) + '\n')
    return result


def _print(result: dict, args: argparse.Namespace, names: List[str]) -> None:
    n, (xy, z) = result['num_scans'], result['scan_size_xy_z']
    model = result['model_seconds_per_scan']
    print(f"{n} scans of {xy} x {xy} x {z} voxels, {result['detector']}, "
          f'batch {args.batch_size}, {args.workers} slice workers, '
          f"{result['threads']} torch threads, {result['cpus']} CPUs; "
          f'{args.repeats} round(s) after a warm-up; median (min-max) '
          f"seconds; load {result['load_before']} before, "
          f"{result['load_after']} after")
    reads = _spread(result['read_seconds_per_scan'])
    print(f'  read alone, per scan          {reads}')
    print(f'  the detector alone, per scan  {model:.3f} '
          '(model_seconds_per_scan: its test_step, one step after another)')
    for name in names:
        s = result['schedules'][name]
        per_scan = [v / n for v in s['batch_seconds']]
        same = ('' if name == BASELINE else
                f", same findings {'yes' if s['same_findings'] else 'NO'}")
        if s.get('picture_agreement') is not None:
            same += (f", pictures of another renderer: "
                     f"{100 * s['picture_agreement']:.1f}% of the pixels "
                     'agree')
        elif name != BASELINE:
            same += f", same pictures {'yes' if s['same_pictures'] else 'NO'}"
        print(f'  {name:29s} {_spread(per_scan)} per scan = '
              f"{s['over_model']:.2f}x the detector, "
              f"{s['speedup']:.2f}x faster than one after another{same}")
        than_old = ('' if s['over_old'] is None or name == 'threads' else
                    f", {s['over_old']:.2f}x faster than 'threads' (the "
                    'schedule before)')
        print(f"    CPU {s['cpu_seconds_per_scan']:.3f} s per scan, "
              f"{s['cores_busy']:.2f} cores busy{than_old}")
        print('    parts per scan (median of scans.csv): ' + ', '.join(
            f'{k} {v:.3f}' for k, v in s['parts_per_scan'].items()))
    print('  parts of a scan, one step after another (wall / CPU seconds):')
    for part, v in result['scan_parts'].items():
        print(f"    {part:12s} {v['wall']:7.3f} / {v['cpu']:.3f}")
    if result['changes']:
        print('  each change, writing one scan (old / new CPU seconds, old '
              'over new):')
    for name, c in result['changes'].items():
        pictures = (f"{100 * c['picture_agreement']:.1f}% of the pixels "
                    'agree (another renderer)'
                    if c['picture_agreement'] is not None else
                    f"same pictures {'yes' if c['same_pictures'] else 'NO'}")
        print(f"    {name:48s} {c['old']:.3f} / {c['new']:.3f} = "
              f"{c['old_over_new']:.2f}x, same findings "
              f"{'yes' if c['same_findings'] else 'NO'}, {pictures}")
    print(f"overlapped / detector: {result['overlapped_over_model']:.2f}x; "
          f"one after another / overlapped: {result['speedup']:.2f}x; same "
          f"findings: {'yes' if result['same_findings'] else 'NO'}; same "
          f"pictures: {'yes' if result['same_pictures'] else 'NO'}")


if __name__ == '__main__':
    main()
