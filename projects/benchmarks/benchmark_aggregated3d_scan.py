# Copyright (c) mmlesion contributors. All rights reserved.
"""Seconds per scan of the full 3D Aggregated Faster R-CNN (RPN + FPRN,
sliding windows) and of everything around it, on a LUNA16-size scan.

The steps of whole-scan inference, each timed: **read** the scan file
(``load_ct_volume``), **resample** it to the model's 1 mm
(``resample_volume``: SimpleITK, the path of ``LoadCTVolume``, and torch,
:func:`~mmlesion.datasets.volumes.resampling.resample_volume_torch`, both
in the same run; torch's volume goes on), **lung crop** (the computed lung
box plus 10 mm, as ``CropToLungs`` without official masks:
:func:`~mmlesion.datasets.volumes.lung_mask.compute_lung_box`; the same
region from the whole filled and closed mask, ``compute_lung_mask``, the
way before it, is timed in the same run as **[full mask]**, not in the
total, and checked to give the same region),
**window** (``WindowHU`` -1200..600 HU to -1..1, the tensor), then the
model's ``predict_volume`` over 128^3 windows with the config's overlap,
split into **backbone** (DenseUNet3D, ``extract_feat``), **RPN head**,
**proposals** (decoding and the per-window NMS, ``predict_by_feat``),
**FPRN** (the false-positive reduction branch) and **merge NMS** (the
final 3D NMS over all windows); the rest of ``predict_volume`` (cutting
and padding the windows, keeping each window's core) is **window
overhead**. The RPN alone (the same model without its FPRN, as the
paper's baseline) runs on the same volume in the same rounds: the ratio
full / RPN. **Non-network time** is everything but the backbone, the RPN
head and the FPRN (the read included); it is compared with the read time
(goal: at most 2x; 3x before).

``--baseline`` also runs the steps as they were before that goal
(:mod:`projects.benchmarks.aggregated3d_scan_baseline`: the resampling's
output in torch's memory, the lung box from the whole volume's components
and its region in four passes over a mask, the HU window in four new
arrays, every window padded and stacked into new tensors, copies on
torch's threads) on the same scan in the same rounds, the order of the
two alternating from round to round, the full model's sliding windows
included (a second network pass per round); it checks that both give the
same volume, region, network input and detections (bit for bit) and
prints each part and the non-network time of both.
``--replay-network`` runs the network in the warm-up rounds only and, in
the timed ones, gives every call of the backbone, the RPN head and the
FPRN the output it gave in the first warm-up round (the same scan, so
the same windows): the parts around the network in seconds instead of
minutes on a CPU, its own parts then about 0 (quick comparisons only: the
memory the network churns between the windows is missing).
``--floor`` also times, after each round, the three library calls the
steps cannot do without, alone (:mod:`projects.benchmarks.\
aggregated3d_scan_floor`: torch's resample kernel, SimpleITK's connected
components and label statistics, the copies of the windows) and prints
their sum as a multiple of the read: what no change of the rest (the glue
between them) can go below on this machine.

The scan is synthetic (:mod:`projects.study_demo.synthetic.volumes`: a
chest with lungs and nodules), ``--scan-size`` voxels at ``--spacing`` mm, written
as MetaImage (int16) and read back: by default 300 x 512 x 512 at 0.7 mm,
about a LUNA16 scan. The model is the full-size config's with random
weights (``init_cfg=None``; the cost does not depend on the weights but
for the number of proposals the FPRN scores: at most ``rpn.max_per_img``
= 50 per window either way). On a CPU a full-size scan takes minutes:
``--scan-size 120 192`` is a quick run (say which size a number is for).
``--amp`` runs the model under float16 autocast (CUDA only; on a CPU it is
not measured).

Example::

    python projects/benchmarks/benchmark_aggregated3d_scan.py \\
        --scan-size 120 192 --repeats 2
    python projects/benchmarks/benchmark_aggregated3d_scan.py \\
        --device cuda --amp --json work_dirs/agg3d_scan.json
    OMP_NUM_THREADS=2 python \\
        projects/benchmarks/benchmark_aggregated3d_scan.py --repeats 3 \\
        --baseline

Timing: ``--warmup`` untimed rounds, then ``--repeats`` rounds, each
running the steps once (full model, then the RPN alone); medians, with
min-max. On a GPU every step synchronises the device before its clock
stops.
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
import logging  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Dict, List, Optional  # noqa: E402

from mmlesion_cli import tool_parser  # noqa: E402
from mmlesion_cli.common_args import check_config_file  # noqa: E402
from projects.benchmarks.benchmark_timing import (  # noqa: E402
    add_timing_arguments)

DEFAULT_CONFIG = ('configs/aggregated3d/'
                  'aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py')
#: The network's parts (the rest of the time is "non-network").
NETWORK = ('backbone', 'rpn_head', 'fprn')
#: Parts of a round, in the order printed.
PARTS = ('read', 'resample', 'lung_crop', 'window', 'backbone', 'rpn_head',
         'proposals', 'fprn', 'merge_nms', 'window_overhead')
#: Everything but the network, at most this many times the read (the goal).
GOAL = 2.
#: The parts ``--baseline`` also times the way they were before the goal
#: (the read is the same code).
BASELINE_PARTS = ('resample', 'lung_crop', 'window', 'backbone', 'rpn_head',
                  'proposals', 'fprn', 'merge_nms', 'window_overhead')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='the 3D Aggregated Faster R-CNN config')
    parser.add_argument('--scan-size', type=int, nargs=2, default=[300, 512],
                        metavar=('Z', 'XY'),
                        help='synthetic scan: slices and in-plane voxels')
    parser.add_argument('--spacing', type=float, default=.7,
                        help='voxel size of the synthetic scan (mm, all '
                        'axes)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'],
                        help='where the model runs (the steps before it run '
                        'on the CPU)')
    parser.add_argument('--amp', action='store_true',
                        help='float16 autocast for the model (CUDA only)')
    add_timing_arguments(parser, warmup=1, repeats=2)
    parser.add_argument('--baseline', action='store_true',
                        help='also time the steps as they were before the '
                        '2x goal, in the same rounds (checked to give the '
                        'same output)')
    parser.add_argument('--replay-network', action='store_true',
                        help='run the network in the warm-up only; timed '
                        'rounds replay its outputs (the parts around it '
                        'only)')
    parser.add_argument('--floor', action='store_true',
                        help='also time the library calls the steps cannot '
                        'do without, alone (the resample kernel, the '
                        'connected components, the window copies), each '
                        'round: what no change of the rest goes below')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)
    check_config_file(parser, '--config', args.config)
    return args


def make_scan(folder: Path, size_z: int, size_xy: int,
              spacing: float) -> str:
    """A synthetic chest scan with nodules as ``scan.mhd`` (int16 HU)."""
    import numpy as np
    import SimpleITK as sitk

    from projects.study_demo.synthetic.volumes import generate_demo_volumes
    from mmlesion.datasets.volumes import load_ct_volume
    generate_demo_volumes(folder / 'demo', seed=0, num_luna=1, num_kits=0,
                          num_lits=0, val_fraction=0.,
                          size_range=(size_xy, size_xy),
                          num_slices_range=(size_z, size_z))
    vol = load_ct_volume(str(next((folder / 'demo').rglob('*.mhd'))))
    img = sitk.GetImageFromArray(
        np.clip(np.round(vol.array), -32768, 32767).astype(np.int16))
    img.SetSpacing((spacing, ) * 3)
    img.SetOrigin(vol.origin_xyz)
    path = str(folder / 'scan.mhd')
    sitk.WriteImage(img, path)
    return path


def build_model(config: str, with_fprn: bool, device: str):
    """The config's model with random weights (no pretrained init)."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model
    model_cfg.init_cfg = None
    if 'init_cfg' in model_cfg.get('backbone', {}):
        model_cfg.backbone.init_cfg = None
    if not with_fprn:
        model_cfg.fprn_head = None
    model_cfg.test_cfg.show_progress = False
    model = MODELS.build(model_cfg)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model.to(device).eval()


class _Clock:
    """Seconds spent in wrapped callables, by name."""

    def __init__(self, device: str) -> None:
        from projects.benchmarks.benchmark_timing import sync
        self.sync = lambda: sync(device)
        self.seconds: Dict[str, float] = {}

    def wrap(self, name: str, fn):

        def timed(*args, **kwargs):
            self.sync()
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            self.sync()
            self.seconds[name] = self.seconds.get(name, 0.) + \
                time.perf_counter() - t
            return out

        return timed


class _Replay:
    """Calls of one network part, recorded, then replayed in order.

    While ``recording`` (the first pass over the windows), each call runs
    the part and keeps its output; in every later pass
    (:meth:`start_pass`) each call returns the next kept output (the same
    calls in the same order: the same scan's windows)."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self.outputs: list = []
        self.recording = True
        self.next = 0

    def start_pass(self) -> None:
        """A pass over the windows begins: once one was recorded, replay it
        from its first call."""
        self.recording = not self.outputs
        self.next = 0

    def __call__(self, *args, **kwargs):
        if self.recording:
            out = self.fn(*args, **kwargs)
            self.outputs.append(out)
            return out
        out = self.outputs[self.next]
        self.next += 1
        return out


def instrument(model, clock: _Clock, replay: bool = False) -> List[_Replay]:
    """Time the model's parts through ``clock`` (instance attributes, the
    model's code unchanged; the merge NMS through the detector module's
    ``nms_3d``, see :func:`_patched_nms`). With ``replay`` the network's
    parts are :class:`_Replay` (returned) inside the clock."""
    players = []

    def part(fn):
        if not replay:
            return fn
        players.append(_Replay(fn))
        return players[-1]

    model.extract_feat = clock.wrap('backbone', part(model.extract_feat))
    model.rpn_head.forward = clock.wrap('rpn_head',
                                        part(model.rpn_head.forward))
    model.rpn_head.predict_by_feat = clock.wrap(
        'proposals', model.rpn_head.predict_by_feat)
    if getattr(model, 'fprn_head', None) is not None:
        model.fprn_head.forward = clock.wrap('fprn',
                                             part(model.fprn_head.forward))
    return players


def _patched_nms(clock: _Clock):
    """A context in which the detector's final ``nms_3d`` is timed."""
    from mmlesion.methods.aggregated3d.models import \
        aggregated_faster_rcnn_3d as det

    @contextlib.contextmanager
    def ctx():
        original = det.nms_3d
        det.nms_3d = clock.wrap('merge_nms', original)
        try:
            yield
        finally:
            det.nms_3d = original

    return ctx()


def _steps(baseline: bool) -> dict:
    """The resampling, the lung box, its region, the HU window and the
    sliding windows: the current code, or (``baseline``) the code before
    the 2x goal."""
    import numpy as np

    from mmlesion.datasets.transforms.windowing import window_hu
    from mmlesion.datasets.volumes import mask_region, resample_volume
    from mmlesion.datasets.volumes.lung_mask import compute_lung_box
    window = ((-1200., 600.), (-1., 1.))  # WindowHU's, to -1..1
    if baseline:
        from projects.benchmarks import aggregated3d_scan_baseline as v1
        return dict(resample=lambda vol: v1.resample_volume_torch_v1(
            vol, (1., 1., 1.)), lung_box=v1.compute_lung_box_v1,
                    region=v1.mask_region_v1,
                    window=lambda img: v1.window_hu_v1(
                        np.ascontiguousarray(img), *window),
                    predict=v1.predict_volume_v1)
    return dict(resample=lambda vol: resample_volume(vol, (1., 1., 1.),
                                                     backend='torch'),
                lung_box=compute_lung_box, region=mask_region,
                window=lambda img: window_hu(img, *window),
                predict=lambda model, volume: model.predict_volume(volume))


def _crop_steps(vol, steps: dict, parts: dict, suffix: str = ''):
    """Resample ``vol`` and crop it to the lungs with ``steps``; the
    seconds of each into ``parts`` (names + ``suffix``). Returns the
    resampled volume, the region and the crop."""
    from mmlesion.datasets.volumes import CTVolume, crop_volume
    from mmlesion.datasets.volumes.lung_mask import box_corner_mask
    t = time.perf_counter()
    res = steps['resample'](vol)
    parts['resample' + suffix] = time.perf_counter() - t
    t = time.perf_counter()
    box = steps['lung_box'](res)
    region = None if box is None else steps['region'](
        CTVolume(box_corner_mask(res.shape_zyx, *box), res.spacing_zyx,
                 res.origin_xyz, res.direction), res, 10.)
    crop = res if region is None else crop_volume(res, *region)
    parts['lung_crop' + suffix] = time.perf_counter() - t
    return res, region, crop


def _windows(model, clock: _Clock, volume, predict, amp) -> tuple:
    """``predict(model, volume)`` timed: (detections, seconds by part)."""
    import torch
    for player in getattr(model, '_bench_players', ()):
        player.start_pass()
    clock.seconds = {}
    clock.sync()
    t = time.perf_counter()
    with torch.no_grad(), amp, _patched_nms(clock):
        dets = predict(model, volume)
    clock.sync()
    total = time.perf_counter() - t
    p = dict(clock.seconds)
    p['predict_volume'] = total
    p['window_overhead'] = total - sum(
        clock.seconds.get(k, 0.) for k in
        ('backbone', 'rpn_head', 'proposals', 'fprn', 'merge_nms'))
    return dets, p


def _same_detections(a, b) -> bool:
    """The same fields with the same values, bit for bit."""
    import torch
    return sorted(a.keys()) == sorted(b.keys()) and all(
        torch.equal(a.get(k), b.get(k)) for k in a.keys())


def run_round(scan: str, full, rpn, args, clock_full: _Clock,
              clock_rpn: _Clock, index: int = 0) -> Dict[str, dict]:
    """One round: the steps with the full model, then the RPN alone on
    the same volume (with ``args.baseline`` the steps before the 2x goal
    too, first in odd rounds). Returns per model the seconds of each part
    (the baseline's parts as ``'<part>_v1'`` of the full model)."""
    import numpy as np
    import torch

    from mmlesion.datasets.volumes import (CTVolume, compute_lung_mask,
                                           load_ct_volume, mask_region,
                                           resample_volume)
    out = {}
    sync = clock_full.sync
    t = time.perf_counter()
    vol = load_ct_volume(scan)
    parts = dict(read=time.perf_counter() - t)
    t = time.perf_counter()
    resample_volume(vol, (1., 1., 1.))
    parts['resample_sitk'] = time.perf_counter() - t
    # the baseline first in odd rounds (each side sees both orders)
    sides = [('', False)] + ([('_v1', True)] if args.baseline else [])
    if index % 2:
        sides.reverse()
    crops = {}
    for suffix, baseline in sides:
        crops[suffix] = _crop_steps(vol, _steps(baseline), parts, suffix)
    res, region, crop = crops['']
    if args.baseline:
        res_v1, region_v1, _ = crops['_v1']
        if not np.array_equal(res.array, res_v1.array) or \
                region != region_v1:
            raise RuntimeError('the baseline resampled or cropped '
                               f'differently: {region_v1} != {region}')
    t = time.perf_counter()
    mask = CTVolume(compute_lung_mask(res), res.spacing_zyx, res.origin_xyz,
                    res.direction)
    region_mask = mask_region(mask, res, 10.)
    parts['lung_crop_mask'] = time.perf_counter() - t
    if region != region_mask:
        raise RuntimeError(f'lung box {region} != the full mask\'s '
                           f'{region_mask}')
    imgs = {}
    for suffix, baseline in sides:
        t = time.perf_counter()
        img = _steps(baseline)['window'](crop.array)
        imgs[suffix] = torch.from_numpy(img)[None].to(args.device)
        sync()
        parts['window' + suffix] = time.perf_counter() - t
    volume = imgs['']
    if args.baseline and not torch.equal(volume, imgs['_v1']):
        raise RuntimeError('the baseline windowed the HU differently')
    shape = tuple(crop.shape_zyx)
    amp = torch.autocast(device_type=args.device, dtype=torch.float16,
                         enabled=args.amp and args.device == 'cuda')
    dets = {}
    for suffix, baseline in sides:
        dets[suffix], p = _windows(full, clock_full, volume,
                                   _steps(baseline)['predict'], amp)
        parts.update({k + suffix: v for k, v in p.items()})
    if args.baseline and not _same_detections(dets[''], dets['_v1']):
        raise RuntimeError('the baseline\'s sliding windows found other '
                           'detections')
    parts['detections'] = len(dets[''])
    parts['volume_zyx'] = shape
    out['full'] = parts
    _, p = _windows(rpn, clock_rpn, volume, _steps(False)['predict'], amp)
    out['rpn'] = p
    if args.floor:
        from projects.benchmarks.aggregated3d_scan_floor import floor_seconds
        parts.update({'floor_' + k: v for k, v in floor_seconds(
            vol, res, volume, full.test_cfg).items()})
    return out


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    import torch

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.methods.aggregated3d.models.aggregated_faster_rcnn_3d import \
        window_layout
    from mmlesion.utils.writing.atomic import atomic_write_text
    from projects.benchmarks.benchmark_timing import check_timing
    check_timing(args.warmup, args.repeats)
    if min(args.scan_size) < 16 or not args.spacing > 0:
        raise ValueError('--scan-size needs >= 16 voxels per axis and '
                         '--spacing > 0 mm')
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('--device cuda: no CUDA device here')
    load_before = os.getloadavg()
    torch.manual_seed(0)
    full = build_model(args.config, True, args.device)
    rpn = build_model(args.config, False, args.device)
    clock_full, clock_rpn = _Clock(args.device), _Clock(args.device)
    for model, clock in ((full, clock_full), (rpn, clock_rpn)):
        model._bench_players = instrument(model, clock, args.replay_network)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        scan = make_scan(Path(tmp), *args.scan_size, args.spacing)
        for i in range(args.warmup + args.repeats):
            r = run_round(scan, full, rpn, args, clock_full, clock_rpn, i)
            if i >= args.warmup:
                rounds.append(r)
    med = statistics.median

    def stat(model: str, key: str) -> dict:
        values = [r[model].get(key, 0.) for r in rounds]
        return dict(median=med(values), min=min(values), max=max(values))

    full_parts = {k: stat('full', k) for k in
                  PARTS + ('resample_sitk', 'lung_crop_mask',
                           'predict_volume')}
    rpn_parts = {k: stat('rpn', k) for k in
                 ('backbone', 'rpn_head', 'proposals', 'merge_nms',
                  'window_overhead', 'predict_volume')}
    per_round = [sum(r['full'][k] for k in PARTS) for r in rounds]
    per_round_rpn = [
        sum(r['full'][k] for k in ('read', 'resample', 'lung_crop', 'window'))
        + r['rpn']['predict_volume'] for r in rounds]
    non_network = [sum(r['full'][k] for k in PARTS if k not in NETWORK)
                   for r in rounds]
    reads = [r['full']['read'] for r in rounds]
    shape = rounds[0]['full']['volume_zyx']
    windows = math.prod(len(s) for s in window_layout(shape,
                                                      full.test_cfg)[1])
    result = dict(
        device=args.device, amp=args.amp and args.device == 'cuda',
        threads=torch.get_num_threads(), cpus=os.cpu_count(),
        config=args.config, scan_zyx=[args.scan_size[0]] +
        [args.scan_size[1]] * 2, spacing_mm=args.spacing,
        lung_crop_zyx=list(shape), windows=windows,
        detections=rounds[0]['full']['detections'],
        repeats=args.repeats, warmup=args.warmup,
        seconds_per_scan=dict(median=med(per_round), min=min(per_round),
                              max=max(per_round)),
        seconds_per_scan_rpn=dict(median=med(per_round_rpn),
                                  min=min(per_round_rpn),
                                  max=max(per_round_rpn)),
        full_over_rpn=med(per_round) / med(per_round_rpn),
        predict_full_over_rpn=(full_parts['predict_volume']['median'] /
                               rpn_parts['predict_volume']['median']),
        non_network_seconds=med(non_network),
        read_seconds=med(reads),
        non_network_over_read=med(non_network) / med(reads),
        non_network_per_round=non_network, read_per_round=reads,
        goal=GOAL, replay_network=args.replay_network,
        load_avg=dict(before=list(load_before), after=list(os.getloadavg())),
        parts=full_parts, rpn_parts=rpn_parts)
    if args.baseline:
        result['baseline'] = _baseline_result(rounds, stat)
    if args.floor:
        from projects.benchmarks.aggregated3d_scan_floor import floor_result
        result['floor'] = floor_result(
            [r['full'] for r in rounds], reads,
            lambda k: stat('full', k))
    _print(result, args)
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    return result


def _baseline_result(rounds: List[dict], stat: Callable) -> dict:
    """The parts before the 2x goal (``'<part>_v1'``), the same rounds:
    each part's median, the non-network time and its ratio to the read."""
    med = statistics.median
    non_network = [
        r['full']['read'] + sum(r['full'][k + '_v1'] for k in BASELINE_PARTS
                                if k not in NETWORK) for r in rounds]
    reads = [r['full']['read'] for r in rounds]
    return dict(
        parts={k: stat('full', k + '_v1') for k in BASELINE_PARTS},
        non_network_per_round=non_network,
        non_network_seconds=med(non_network),
        non_network_over_read=med(non_network) / med(reads),
        same_output=True)


def _print(r: dict, args) -> None:
    fp16 = ('float16 autocast' if r['amp'] else
            'float32 (fp16: not measured on a CPU)' if args.device == 'cpu'
            else 'float32')
    print(f"scan {r['scan_zyx'][0]} x {r['scan_zyx'][1]} x "
          f"{r['scan_zyx'][2]} voxels at {r['spacing_mm']} mm -> 1 mm, "
          f"lung crop {' x '.join(map(str, r['lung_crop_zyx']))} voxels, "
          f"{r['windows']} windows of 128^3; {args.device}, {fp16}, "
          f"{r['threads']} threads, {r['cpus']} CPUs; {r['repeats']} rounds "
          f"after {r['warmup']} warm-up; median (min-max) seconds")

    def line(name, s):
        return (f"  {name:16s} {s['median']:8.3f} ({s['min']:.3f}-"
                f"{s['max']:.3f})")

    labels = dict(read='read', resample='resample (torch)',
                  resample_sitk='[SimpleITK]', lung_crop='lung crop',
                  lung_crop_mask='[full mask]',
                  window='window', backbone='backbone', rpn_head='RPN head',
                  proposals='proposals+NMS', fprn='FPRN',
                  merge_nms='merge NMS', window_overhead='window overhead')
    for key in ('read', 'resample', 'resample_sitk', 'lung_crop',
                'lung_crop_mask', 'window', 'backbone', 'rpn_head',
                'proposals', 'fprn', 'merge_nms', 'window_overhead'):
        print(line(labels[key], r['parts'][key]) +
              ('  (not in the total)' if key in ('resample_sitk',
                                                 'lung_crop_mask') else ''))
    print(line('per scan, full', r['seconds_per_scan']))
    print(line('per scan, RPN', r['seconds_per_scan_rpn']))
    print(f"full / RPN alone: {r['full_over_rpn']:.2f}x per scan, "
          f"{r['predict_full_over_rpn']:.2f}x for the sliding windows")
    if r['replay_network']:
        print('network replayed from the warm-up: its parts and the totals '
              'are not the network\'s')
    if 'baseline' in r:
        b = r['baseline']
        print('before the 2x goal (--baseline), the same rounds, the same '
              'volume, lung box and detections:')
        for key in BASELINE_PARTS:
            ratio = b['parts'][key]['median'] / max(
                r['parts'][key]['median'], 1e-9)
            print(line(labels[key], b['parts'][key]) +
                  f'  now {ratio:.2f}x faster' * (key not in NETWORK))
        print(f"  non-network time {b['non_network_seconds']:.3f} s = "
              f"{b['non_network_over_read']:.2f}x the read time")
    if 'floor' in r:
        from projects.benchmarks.aggregated3d_scan_floor import print_floor
        print_floor(r['floor'], r['goal'], line)
    load = r['load_avg']
    print(f"non-network time {r['non_network_seconds']:.3f} s = "
          f"{r['non_network_over_read']:.2f}x the read time "
          f"({r['read_seconds']:.3f} s); budget {r['goal']:g}x; load "
          f"{load['before'][0]:.1f} before, {load['after'][0]:.1f} after")


if __name__ == '__main__':
    main()
