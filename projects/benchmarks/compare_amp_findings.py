# Copyright (c) mmlesion contributors. All rights reserved.
"""AMP's findings against fp32's on the same scans.

The whole-scan 2.5D detector (:func:`~mmlesion.apis.whole_scan.infer.
infer_volume`, the detection ``tools/infer_volume.py`` runs) detects each
synthetic scan twice: in float32, then under autocast (``--amp-dtype``,
float16 by default, as ``benchmark_infer_volume.py --amp`` and
``benchmark_infer_scans.py --amp`` time it). The two lists of 3D findings
are matched: each float32 finding, by decreasing score, to the AMP finding
of the highest 3D IoU (their boxes in the resampled volume) not matched
yet, if that IoU is at least ``--iou``. Per scan and over all scans the
tool prints the findings of each, how many matched, the score differences
of the matched pairs (median and largest), their smallest IoU, and the
best score left unmatched on each side; then the same for the findings
that score at least ``--score-thr`` on their own side (those a FROC point
at a few false positives per scan counts; a finding just above the
threshold on one side and just below on the other is unmatched there).

It tells whether the speed measured with ``--amp`` comes with the same
findings: with the real weights (``--checkpoint``) on a GPU. With random
weights (no checkpoint) the findings are whatever the random heads give:
a check of the numerics only. It needs a GPU: under autocast on a CPU the
boxes reach mmcv's CPU NMS in float16 or bfloat16, which it refuses.

The scans are synthetic (:mod:`projects.study_demo.synthetic.volumes`, seed 0),
``--scan-size`` in-plane pixels by slices, as ``benchmark_infer_scans.py``
makes them.

Example::

    python projects/benchmarks/compare_amp_findings.py \\
        --pixel-spacing 0.8 --device cuda --num-scans 4 \\
        --json work_dirs/amp_findings.json
"""
# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[2])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import (Callable, ContextManager, Dict, List,  # noqa: E402
                    Optional, Sequence, Tuple)

from mmlesion_cli import tool_parser  # noqa: E402
from mmlesion_cli.common_args import (add_trust_checkpoint_argument,  # noqa
                                      check_config_file)

DEFAULT_CONFIG = ('configs/elixirnet/'
                  'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py')


@dataclass
class Agreement:
    """How the float32 and the AMP findings of some scans agree.

    Args:
        fp32 (int): float32 findings.
        amp (int): AMP findings.
        matched (int): pairs matched (3D IoU at least the threshold).
        score_diff_median (float | None): median ``|score_amp -
            score_fp32|`` over the pairs (None: no pair).
        score_diff_max (float | None): the largest of them.
        iou_min (float | None): the smallest IoU of a pair.
        unmatched_fp32_best (float | None): the best score of a float32
            finding left unmatched (None: none left).
        unmatched_amp_best (float | None): the same for AMP.
    """
    fp32: int
    amp: int
    matched: int
    score_diff_median: Optional[float]
    score_diff_max: Optional[float]
    iou_min: Optional[float]
    unmatched_fp32_best: Optional[float]
    unmatched_amp_best: Optional[float]


@dataclass
class ScanAgreement:
    """One scan's agreement, all findings and those scoring at least the
    threshold on their own side."""
    scan: str
    all: Agreement
    confident: Agreement


def match_findings(boxes_a: Sequence[Sequence[float]],
                   scores_a: Sequence[float],
                   boxes_b: Sequence[Sequence[float]],
                   iou_thr: float) -> List[Tuple[int, int, float]]:
    """Greedy one-to-one matching of two lists of 3D boxes.

    Args:
        boxes_a (Sequence): (n, 6) ``[x1, y1, z1, x2, y2, z2]``.
        scores_a (Sequence[float]): their scores (the order of matching:
            highest first; ties by index).
        boxes_b (Sequence): (m, 6) boxes in the same grid.
        iou_thr (float): the smallest IoU of a pair.

    Returns:
        list[tuple[int, int, float]]: ``(index in a, index in b, IoU)`` per
        pair, in the order matched.
    """
    import torch

    from mmlesion.structures import bbox_overlaps_3d
    if not len(boxes_a) or not len(boxes_b):
        return []
    iou = bbox_overlaps_3d(
        torch.as_tensor(boxes_a, dtype=torch.float64).reshape(-1, 6),
        torch.as_tensor(boxes_b, dtype=torch.float64).reshape(-1, 6))
    order = sorted(range(len(scores_a)), key=lambda i: (-scores_a[i], i))
    free = torch.ones(len(boxes_b), dtype=torch.bool)
    pairs = []
    for i in order:
        row = torch.where(free, iou[i], torch.full_like(iou[i], -1.))
        j = int(row.argmax())
        if float(row[j]) >= iou_thr:
            pairs.append((i, j, float(row[j])))
            free[j] = False
    return pairs


def agreement(fp32: Sequence, amp: Sequence,
              iou_thr: float) -> Tuple[Agreement, List[float]]:
    """The :class:`Agreement` of two lists of findings (anything with
    ``bbox_voxel_resampled`` and ``score``, e.g.
    :class:`~mmlesion.apis.whole_scan.results.Finding`), and the score
    difference of each pair."""
    pairs = match_findings([f.bbox_voxel_resampled for f in fp32],
                           [f.score for f in fp32],
                           [f.bbox_voxel_resampled for f in amp], iou_thr)
    diffs = [abs(amp[j].score - fp32[i].score) for i, j, _ in pairs]
    left_a = set(range(len(fp32))) - {i for i, _, _ in pairs}
    left_b = set(range(len(amp))) - {j for _, j, _ in pairs}
    return Agreement(
        fp32=len(fp32), amp=len(amp), matched=len(pairs),
        score_diff_median=statistics.median(diffs) if diffs else None,
        score_diff_max=max(diffs) if diffs else None,
        iou_min=min(p[2] for p in pairs) if pairs else None,
        unmatched_fp32_best=max((fp32[i].score for i in left_a),
                                default=None),
        unmatched_amp_best=max((amp[j].score for j in left_b),
                               default=None)), diffs


def combine(parts: Sequence[Agreement], diffs: Sequence[float]
            ) -> Agreement:
    """Several scans' agreements as one (``diffs``: every pair's score
    difference, for the median)."""

    def best(values):
        values = [v for v in values if v is not None]
        return max(values) if values else None

    ious = [p.iou_min for p in parts if p.iou_min is not None]
    return Agreement(
        fp32=sum(p.fp32 for p in parts), amp=sum(p.amp for p in parts),
        matched=sum(p.matched for p in parts),
        score_diff_median=statistics.median(diffs) if diffs else None,
        score_diff_max=max(diffs) if diffs else None,
        iou_min=min(ious) if ious else None,
        unmatched_fp32_best=best(p.unmatched_fp32_best for p in parts),
        unmatched_amp_best=best(p.unmatched_amp_best for p in parts))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='the 2.5D detector config')
    parser.add_argument('--checkpoint', help='its weights (default: random '
                        'weights, a check of the numerics only)')
    parser.add_argument('--num-scans', type=int, default=4,
                        help='synthetic scans, each detected twice')
    parser.add_argument('--scan-size', type=int, nargs=2, default=[512, 300],
                        metavar=('XY', 'Z'),
                        help='synthetic scans: in-plane pixels and slices')
    parser.add_argument('--pixel-spacing', type=float, default=None,
                        help='in-plane mm/px the slices are resampled to '
                        '(default: the checkpoint\'s or the config\'s)')
    parser.add_argument('--batch-size', type=int, default=32,
                        help='slices per forward pass')
    parser.add_argument('--device', default='cuda',
                        help='a CUDA device, e.g. cuda or cuda:1')
    parser.add_argument('--amp-dtype', default='float16',
                        choices=['float16', 'bfloat16'],
                        help='the autocast dtype')
    parser.add_argument('--iou', type=float, default=.5,
                        help='smallest 3D IoU of a matched pair')
    parser.add_argument('--score-thr', type=float, default=.5,
                        help='the findings compared a second time: those '
                        'scoring at least this on their own side')
    parser.add_argument('--json', help='also write the results here')
    add_trust_checkpoint_argument(parser)
    args = parser.parse_args(argv)
    check_config_file(parser, '--config', args.config)
    if args.num_scans < 1 or min(args.scan_size) < 16:
        parser.error('--num-scans must be >= 1 and --scan-size at least 16 '
                     'voxels per axis')
    if not 0 < args.iou <= 1:
        parser.error(f'--iou must be in (0, 1], got {args.iou}')
    if not args.device.startswith('cuda'):
        parser.error(f'--device {args.device}: AMP needs a CUDA device (on a '
                     f'CPU, autocast hands mmcv\'s CPU NMS boxes that are not '
                     f'float32, which it refuses)')
    return args


def _detect(model, volume, settings, detection, amp) -> list:
    """The findings of one scan (no RECIST), under ``amp``."""
    import torch

    from mmlesion.apis.whole_scan.infer import ScanSteps, infer_volume
    with torch.no_grad(), amp:
        return infer_volume(model, volume, settings, detection,
                            steps=ScanSteps(measure=False)).findings


@dataclass
class AmpComparison:
    """The agreement per scan and over all scans, all findings and those
    scoring at least the threshold on their own side."""
    per_scan: List[ScanAgreement]
    all: Agreement
    confident: Agreement


def compare_scans(model, scans: Sequence[str], settings, detection,
                  amp: Callable[[], ContextManager], iou_thr: float,
                  score_thr: float) -> AmpComparison:
    """Detect each scan in float32 and under ``amp`` and match the
    findings.

    Args:
        model (nn.Module): the 2.5D detector, in eval mode.
        scans (Sequence[str]): scan files.
        settings (VolumeInferenceSettings): the detector's input
            convention (:func:`~mmlesion.apis.whole_scan.run.
            volume_run_config`).
        detection (DetectionSettings): batch size and stacking.
        amp (Callable): makes the context of each second run (autocast).
        iou_thr (float): smallest 3D IoU of a pair.
        score_thr (float): the findings compared a second time score at
            least this.

    Returns:
        AmpComparison: per scan and in all.
    """
    import contextlib

    from mmlesion.datasets.volumes import load_ct_volume
    rows: List[ScanAgreement] = []
    diffs: Dict[str, List[float]] = dict(all=[], confident=[])
    for scan in scans:
        volume = load_ct_volume(str(scan))
        fp32 = _detect(model, volume, settings, detection,
                       contextlib.nullcontext())
        other = _detect(model, volume, settings, detection, amp())
        parts = {}
        for key, (a, b) in dict(
                all=(fp32, other),
                confident=([f for f in fp32 if f.score >= score_thr],
                           [f for f in other if f.score >= score_thr])
        ).items():
            parts[key], pair_diffs = agreement(a, b, iou_thr)
            diffs[key] += pair_diffs
        rows.append(ScanAgreement(Path(scan).stem, **parts))
    return AmpComparison(
        rows, combine([r.all for r in rows], diffs['all']),
        combine([r.confident for r in rows], diffs['confident']))


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    import torch
    from mmengine.config import Config

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apis.detector_loader import (DetectorLoadSettings,
                                               init_lesion_detector)
    from mmlesion.apis.whole_scan.run import volume_run_config
    from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                                   RunSettings)
    from mmlesion.utils.writing.atomic import atomic_write_text
    from projects.benchmarks.synthetic_scans import write_synthetic_scans
    if not torch.cuda.is_available():
        raise RuntimeError(f'--device {args.device}: no CUDA device here')
    run = RunSettings(
        detection=DetectionSettings(batch_size=args.batch_size,
                                    show_progress=False),
        pixel_spacing=args.pixel_spacing, device=args.device,
        cfg_name=args.config)
    run_config = volume_run_config(Config.fromfile(args.config), run,
                                   args.checkpoint)
    cfg, settings = run_config.cfg, run_config.settings
    model = init_lesion_detector(
        cfg, args.checkpoint, DetectorLoadSettings(device=args.device),
        preloaded=run_config.checkpoint).model

    def amp():
        return torch.autocast(device_type='cuda',
                              dtype=getattr(torch, args.amp_dtype))

    with tempfile.TemporaryDirectory() as tmp:
        scans = write_synthetic_scans(Path(tmp) / 'scans', args.num_scans,
                                      *args.scan_size)
        comparison = compare_scans(model, scans, settings, run.detection,
                                   amp, args.iou, args.score_thr)
    result = dict(
        config=args.config, checkpoint=args.checkpoint, device=args.device,
        amp_dtype=args.amp_dtype, scans=len(comparison.per_scan),
        scan_size=list(args.scan_size), iou=args.iou,
        score_thr=args.score_thr, **asdict(comparison))
    print_comparison(result)
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    return result


def _fmt(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.4f}'


def print_comparison(r: dict) -> None:
    """Print :func:`main`'s result: a table per scan, then the verdict."""
    print(f"{Path(r['config']).name}, "
          f"{r['checkpoint'] or 'random weights'}, {r['device']}, "
          f"autocast {r['amp_dtype']} against float32; {r['scans']} "
          f"synthetic scans of {r['scan_size'][0]} px x "
          f"{r['scan_size'][1]} slices; pairs at 3D IoU >= {r['iou']:g}")
    head = ('scan', 'fp32', 'amp', 'matched', '|dscore| med', 'max',
            'IoU min', 'unmatched fp32', 'amp')
    print('  ' + ' '.join(f'{h:>14s}' for h in head))
    for key, label in (('all', 'all findings'),
                       ('confident', f"score >= {r['score_thr']:g}")):
        print(f'{label}:')
        for name, a in [(s['scan'], s[key]) for s in r['per_scan']] + [
                ('all scans', r[key])]:
            print('  ' + ' '.join(f'{v:>14s}' for v in (
                name[-14:], str(a['fp32']), str(a['amp']),
                str(a['matched']), _fmt(a['score_diff_median']),
                _fmt(a['score_diff_max']), _fmt(a['iou_min']),
                _fmt(a['unmatched_fp32_best']),
                _fmt(a['unmatched_amp_best']))))
    a = r['all']
    print(f"AMP matched {a['matched']} of {a['fp32']} float32 findings "
          f"({a['amp']} AMP findings); scores of the pairs differ by "
          f"{_fmt(a['score_diff_median'])} (median), "
          f"{_fmt(a['score_diff_max'])} at most")


if __name__ == '__main__':
    main()
