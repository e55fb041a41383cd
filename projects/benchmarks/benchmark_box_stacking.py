# Copyright (c) mmlesion contributors. All rights reserved.
"""Speed of 2D -> 3D box stacking on a scan's worth of detections: the new
:func:`~mmlesion.evaluation.functional.stack_slice_boxes` against the first,
chain-by-chain implementation (the baseline, measured in the same run), with
a check that both give identical findings.

Example::

    OMP_NUM_THREADS=1 python projects/benchmarks/benchmark_box_stacking.py
    python projects/benchmarks/benchmark_box_stacking.py --max-gap 1

The input is what a randomly initialised detector gives on a scan, the
boxes ``benchmark_infer_volume.py`` stacks (default 188 slices x 100
boxes): anchor-shaped boxes (16 to 128 px, aspect ratios 1:2, 1:1, 2:1, on
a 16 px grid of an ``--image-size`` px slice, scores near 0.5), most of
them kept with a little jitter from one slice to the next (the slices look
alike, so do the detections), the rest replaced by new ones. The baseline
keeps one list of ``(z, box, score)`` per chain, runs mmdet's
``bbox_overlaps`` in torch per slice and matches by repeated argmax. Both
run with the options of ``benchmark_infer_volume.py`` (``score_thr=0.05``);
the findings must be identical (``repr`` equality: values, types and
order). Printed: milliseconds per scan (CPU time of the process, robust on
a shared machine, and wall-clock time; median of ``--repeat`` runs, each
after a full garbage collection) and the speed ratio.

``--join-gap N`` times one lesion step instead, the join of fragments
along z, on that scan's chains (stacked with the options above): the
new join, which tests a finding's candidates all at once, against the
first one, one pair at a time (:func:`reference_join_along_z`).

Exit status: 0 when the findings are identical and the CPU-time ratio
reaches ``--min-speedup`` (default 1), 1 otherwise.
"""
import argparse
import gc
import os
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from mmlesion_cli import tool_parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--num-slices', type=int, default=188,
                        help='slices of the scan')
    parser.add_argument('--boxes-per-slice', type=int, default=100,
                        help='detections on each slice')
    parser.add_argument('--image-size', type=float, default=256.,
                        help='in-plane size of a slice in px')
    parser.add_argument(
        '--persist', type=float, default=.9,
        help='fraction of the boxes kept (jittered) on the next slice')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random boxes')
    parser.add_argument('--iou-thr', type=float, default=.5,
                        help='link boxes with IoU above this')
    parser.add_argument('--max-gap', type=int, default=0,
                        help='slices a chain may bridge')
    parser.add_argument('--score-thr', type=float, default=.05,
                        help='boxes with a lower score are dropped first')
    parser.add_argument(
        '--join-gap', type=int, default=None,
        help='time the join of fragments along z at this gap (slices) on '
        'the chains instead of the stacking')
    parser.add_argument('--repeat', type=int, default=3,
                        help='timed runs of each implementation (median)')
    parser.add_argument(
        '--min-speedup', type=float, default=1.,
        help='exit 1 if the new code is not this much faster (CPU time)')
    return parser.parse_args(argv)


def random_weight_like_boxes(
        num_slices: int = 188,
        boxes_per_slice: int = 100,
        image_size: float = 256.,
        persist: float = .9,
        seed: int = 0) -> Tuple[List[int], List[np.ndarray],
                                List[np.ndarray]]:
    """Per slice the boxes and scores of a randomly initialised detector.

    Args:
        num_slices (int): slices.
        boxes_per_slice (int): boxes on each.
        image_size (float): in-plane size in px (boxes are clipped to it).
        persist (float): chance that a box is kept, jittered by about 1 px,
            on the next slice; the others are replaced by new boxes.
        seed (int): seed.

    Returns:
        tuple: slice indices, (n, 4) float64 boxes and (n,) float64 scores
        per slice, as :func:`~mmlesion.apis.whole_scan.detect.detect_slices`
        returns them.
    """
    rng = np.random.default_rng(seed)
    n = boxes_per_slice

    def new_boxes(k: int) -> np.ndarray:
        centre = rng.integers(0, max(int(image_size) // 16, 1),
                              (k, 2)) * 16. + 8.
        scale = rng.choice([16., 32., 64., 128.], k)
        ratio = np.sqrt(rng.choice([.5, 1., 2.], k))
        half = np.stack([scale / ratio, scale * ratio], 1) / 2
        b = np.concatenate([centre - half, centre + half], 1)
        return np.clip(b + rng.normal(0, 2, b.shape), 0, image_size)

    def new_scores(k: int) -> np.ndarray:
        return np.clip(rng.normal(.5, .03, k), .06, 1.)

    boxes, scores = [], []
    b, s = new_boxes(n), new_scores(n)
    for _ in range(num_slices):
        boxes.append(b)
        scores.append(s)
        kept = rng.random(n) < persist
        b = np.where(kept[:, None],
                     np.clip(b + rng.normal(0, 1, b.shape), 0, image_size),
                     new_boxes(n))
        s = np.where(kept, np.clip(s + rng.normal(0, .01, n), .06, 1.),
                     new_scores(n))
    return list(range(num_slices)), boxes, scores


def reference_greedy_match(iou: np.ndarray, iou_thr: float) -> list:
    """The first implementation's greedy matching: repeated argmax, the best
    pair left first, ties to the lower row, then the lower column
    (``np.argmax`` takes the first in row-major order)."""
    iou = np.where(iou > iou_thr, iou, -1.)
    pairs = []
    for _ in range(min(iou.shape)):
        row, col = divmod(int(np.argmax(iou)), iou.shape[1])
        if iou[row, col] < 0:
            break
        pairs.append((row, col))
        iou[row, :] = -1.
        iou[:, col] = -1.
    return pairs


def reference_stack_slice_boxes(slice_indices, boxes, scores, iou_thr=.5,
                                max_gap=0, score_thr=0., min_slices=1,
                                score_mode='max', slice_half_extent=.5):
    """The first implementation of ``stack_slice_boxes`` (input checks
    left out): the baseline, measured in the same run, and the reference of
    the equivalence tests
    (``tests/test_evaluation/test_functional/test_box_stacking.py``)."""
    import torch
    from mmdet.structures.bbox import bbox_overlaps

    per_slice = {}
    for z, b, s in zip(slice_indices, boxes, scores):
        b = np.asarray(b, dtype=np.float64).reshape(-1, 4) if np.size(
            b) else np.zeros((0, 4))
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        keep = s >= score_thr
        z = int(z)
        if z in per_slice:
            per_slice[z] = (np.concatenate([per_slice[z][0], b[keep]]),
                            np.concatenate([per_slice[z][1], s[keep]]))
        else:
            per_slice[z] = (b[keep], s[keep])
    finished, active = [], []
    for z in sorted(per_slice):
        b, s = per_slice[z]
        still = []
        for track in active:
            (finished if z - track[-1][0] > max_gap + 1 else still).append(
                track)
        active = still
        used = np.zeros(len(b), dtype=bool)
        if active and len(b):
            last = torch.from_numpy(np.stack([t[-1][1] for t in active]))
            iou = bbox_overlaps(last, torch.from_numpy(b)).numpy()
            for row, col in reference_greedy_match(iou, iou_thr):
                active[row].append((z, b[col], float(s[col])))
                used[col] = True
        for col in np.flatnonzero(~used):
            active.append([(z, b[col], float(s[col]))])
    finished.extend(active)
    findings = []
    for track in finished:
        z_first, z_last = track[0][0], track[-1][0]
        if z_last - z_first + 1 < min_slices:
            continue
        tb = np.stack([t[1] for t in track])
        ts = np.array([t[2] for t in track])
        weights = ts if ts.sum() > 0 else np.ones_like(ts)
        xy = (tb * weights[:, None]).sum(0) / weights.sum()
        score = float(ts.max() if score_mode == 'max' else ts.mean())
        findings.append(
            dict(bbox_3d=[float(xy[0]), float(xy[1]),
                          z_first - slice_half_extent, float(xy[2]),
                          float(xy[3]), z_last + slice_half_extent],
                 score=score, slice_range=(int(z_first), int(z_last)),
                 key_slice=int(track[int(np.argmax(ts))][0]),
                 boxes_2d=[(int(t[0]), [float(v) for v in t[1]], t[2])
                           for t in track]))
    findings.sort(key=lambda f: -f['score'])
    return findings


def reference_join_along_z(findings, settings) -> list:
    """The first join of fragments along z, one pair at a time: by
    decreasing score, a finding takes the first other in the list that
    lies at most ``settings.join_gap`` slices beyond one of its ends with
    facing end boxes that link, until none is left to take."""
    from mmlesion.evaluation.functional.box_stacking import fuse_findings

    def joins(f, g):
        if g.slice_range[0] > f.slice_range[1]:
            gap = g.slice_range[0] - f.slice_range[1] - 1
            a, b = f.boxes_2d[-1][1], g.boxes_2d[0][1]
        elif g.slice_range[1] < f.slice_range[0]:
            gap = f.slice_range[0] - g.slice_range[1] - 1
            a, b = f.boxes_2d[0][1], g.boxes_2d[-1][1]
        else:
            return False
        a, b = (np.asarray(e, np.float64).reshape(4, 1) for e in (a, b))
        area = [(e[2] - e[0]) * (e[3] - e[1]) for e in (a, b)]
        return gap <= settings.join_gap and bool(
            settings.linkable(a, area[0], b, area[1])[1][0, 0])

    alive, i = list(findings), 0
    while i < len(alive):
        j = next((j for j, g in enumerate(alive)
                  if j != i and joins(alive[i], g)), None)
        if j is None:
            i += 1
            continue
        alive[i] = fuse_findings([alive[i], alive[j]], settings)
        del alive[j]
        i -= j < i
    return alive


def _time(fn, repeat: int) -> Tuple[list, List[float], List[float]]:
    """Output of the last run, CPU and wall seconds of each run.

    Each run starts after a full garbage collection (not timed): with torch
    and mmdet imported the process holds some 400,000 objects, and a full
    collection, which the objects a run creates set off now and then (0.3 s
    on a busy 2-core machine), would otherwise land in some runs and not in
    others. The young-generation collections a run sets off are timed.
    """
    cpu, wall, out = [], [], None
    for _ in range(max(1, repeat)):
        out = None
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return out, cpu, wall


def run_benchmark(num_slices: int = 188,
                  boxes_per_slice: int = 100,
                  image_size: float = 256.,
                  persist: float = .9,
                  seed: int = 0,
                  iou_thr: float = .5,
                  max_gap: int = 0,
                  score_thr: float = .05,
                  repeat: int = 3,
                  join_gap: Optional[int] = None) -> Dict:
    """Time both implementations on one random scan.

    Args:
        num_slices, boxes_per_slice, image_size, persist, seed: the scan,
            see :func:`random_weight_like_boxes`.
        iou_thr, max_gap, score_thr: options of ``stack_slice_boxes``.
        repeat (int): timed runs of each (after one untimed run of each).
        join_gap (int, optional): time the join along z at this gap on
            the chains instead (:func:`reference_join_along_z` the
            baseline).

    Returns:
        dict: ``identical`` (bool), ``num_boxes``, ``num_findings``,
        ``ref_ms`` and ``fast_ms`` (median CPU ms per scan), ``ref_wall_ms``
        and ``fast_wall_ms`` (median wall ms), ``ref_runs_ms`` and
        ``fast_runs_ms`` (CPU ms of each run), ``speedup`` (CPU ratio) and
        ``wall_speedup``.
    """
    from mmlesion.evaluation.functional.box_stacking import (
        StackSettings, _join_along_z, stack_slice_boxes)
    from mmlesion.structures.finding_3d import findings_by_score
    zs, boxes, scores = random_weight_like_boxes(num_slices, boxes_per_slice,
                                                 image_size, persist, seed)
    opts = dict(iou_thr=iou_thr, max_gap=max_gap, score_thr=score_thr)
    if join_gap is None:
        def ref_fn():
            return reference_stack_slice_boxes(zs, boxes, scores, **opts)

        def fast_fn():
            return stack_slice_boxes(zs, boxes, scores, StackSettings(**opts))
    else:
        chains = findings_by_score(stack_slice_boxes(
            zs, boxes, scores, StackSettings(**opts)))
        settings = StackSettings(**opts, join_gap=join_gap)

        def ref_fn():
            return reference_join_along_z(chains, settings)

        def fast_fn():
            return _join_along_z(list(chains), settings)

    def same(fast, ref) -> bool:  # repr: values, types and order
        ref = ref if join_gap is None else [f.to_dict() for f in ref]
        return repr([f.to_dict() for f in fast]) == repr(ref)

    identical = same(fast_fn(), ref_fn())  # the warm-up
    ref, ref_cpu, ref_wall = _time(ref_fn, repeat)
    fast, fast_cpu, fast_wall = _time(fast_fn, repeat)
    identical = identical and same(fast, ref)
    ms = statistics.median
    return dict(
        identical=bool(identical),
        num_boxes=int(sum(len(s) for s in scores)),
        num_findings=len(fast),
        ref_ms=ms(ref_cpu) * 1e3,
        fast_ms=ms(fast_cpu) * 1e3,
        ref_wall_ms=ms(ref_wall) * 1e3,
        fast_wall_ms=ms(fast_wall) * 1e3,
        ref_runs_ms=[t * 1e3 for t in ref_cpu],
        fast_runs_ms=[t * 1e3 for t in fast_cpu],
        speedup=ms(ref_cpu) / max(ms(fast_cpu), 1e-9),
        wall_speedup=ms(ref_wall) / max(ms(fast_wall), 1e-9))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    res = run_benchmark(args.num_slices, args.boxes_per_slice,
                        args.image_size, args.persist, args.seed,
                        args.iou_thr, args.max_gap, args.score_thr,
                        args.repeat, args.join_gap)
    print(f'scan: {args.num_slices} slices x {args.boxes_per_slice} boxes '
          f'= {res["num_boxes"]} boxes (seed {args.seed}, '
          f'{args.image_size:g} px, {args.persist:g} kept slice to slice); '
          f'iou_thr {args.iou_thr:g}, max_gap {args.max_gap}, score_thr '
          f'{args.score_thr:g}; join_gap {args.join_gap}; '
          f'{res["num_findings"]} findings; '
          f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}')
    runs = ', '.join
    what = ('the join along z, one pair at a time' if args.join_gap
            is not None else 'first implementation')
    print(f'reference ({what}): {res["ref_ms"]:.1f} ms per '
          f'scan CPU (runs {runs(f"{t:.1f}" for t in res["ref_runs_ms"])}),'
          f' wall {res["ref_wall_ms"]:.1f} ms')
    new = 'the join' if args.join_gap is not None else 'stack_slice_boxes'
    print(f'{new}: {res["fast_ms"]:.1f} ms per scan CPU (runs '
          f'{runs(f"{t:.1f}" for t in res["fast_runs_ms"])}), wall '
          f'{res["fast_wall_ms"]:.1f} ms')
    print(f'identical findings: {res["identical"]}')
    print(f'speed ratio (reference / new, median CPU time): '
          f'{res["speedup"]:.1f}x (required >= {args.min_speedup:g}x); '
          f'wall-clock ratio {res["wall_speedup"]:.1f}x')
    ok = res['identical'] and res['speedup'] >= args.min_speedup
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
