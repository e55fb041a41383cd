# Copyright (c) mmlesion contributors. All rights reserved.
"""``benchmark_infer_scans.py --operating-point THR``: a batch of scans
with every finding measured, drawn and written (``every_finding``: the
path before findings were kept at a validated operating point, what
``--score-thr`` still does) against the batch keeping the findings at a
validated operating point (``operating_point``: a checkpoint's record of
threshold ``THR`` at 4 FPs per image) and the same with the stacking of
before the candidates were arrays (``operating_point_before``: every
candidate a :class:`~mmlesion.apis.whole_scan.results.Finding`, the kept
ones filtered from them, :func:`every_candidate_a_finding`), for a
stand-in detector giving few
boxes (``few``: ``--stand-in-boxes`` per slice, scores near 0.5) and one
giving as many again plus ``--low-boxes`` low-score boxes per slice
(0.06-0.2, new ones on every slice: a poorly trained detector), in one
run, the six batches in turn in each of ``--repeats`` rounds (each round
starting one later).

Printed per detector and path: the median (min-max) seconds per scan, the
findings kept and the candidates (every stacked finding) per scan; and per
path the time of the ``many`` detector over the ``few`` one (the median of
the rounds' ratios): with the operating point it should stay near 1 (the
time per scan no longer follows the boxes below the operating point).
"""
import statistics
import tempfile
import time
from pathlib import Path
from typing import Dict, List
from unittest import mock


def every_candidate_a_finding(detections, resampled, volume, detection,
                              rescorer=None, measure=False,
                              lesion_maps=None):
    """``mmlesion.apis.whole_scan.infer._stacked`` as it was before the
    candidates were arrays: every stacked finding built as a
    :class:`~mmlesion.apis.whole_scan.results.Finding` (and typed), the
    kept ones filtered from them, ``candidates.csv``'s rows taken from the
    findings. The same files (tested)."""
    from dataclasses import replace

    import numpy as np

    from mmlesion.apis.whole_scan import infer
    from mmlesion.apis.whole_scan.results import Candidates
    every = infer.stack_findings(
        detections.boxes, detections.scores, resampled, volume,
        replace(detection, keep_thr=None), rescorer).kept
    thr = detection.keep_thr
    kept = [f for f in every
            if thr is None or max(b.score for b in f.boxes_2d) >= thr]
    if measure:
        infer.measure_findings(kept, resampled, volume, lesion_maps,
                               show_progress=detection.show_progress)
    if detections.classes is not None:
        infer.add_lesion_types(every, detections.boxes, detections.labels,
                               detections.classes)
    return kept, Candidates(
        np.array([f.center_world for f in every]).reshape(-1, 3),
        np.array([f.score for f in every]))


def operating_point_comparison(args, cfg, scans: List[str], run) -> dict:
    """The six batches of the module doc, timed; the results.

    Args:
        args (Namespace): ``stand_in_ms``, ``stand_in_boxes``,
            ``low_boxes``, ``operating_point``, ``repeats``.
        cfg (Config): the config of the stand-in's input convention.
        scans (list[str]): the batch.
        run (RunSettings): the batch's settings.
    """
    from dataclasses import replace

    from mmlesion.apis.whole_scan import infer
    from mmlesion.apis.whole_scan import run as scan_run
    from mmlesion.apps.whole_scan.batch import (BatchOptions,
                                                run_batch_inference)
    from mmlesion.apis.whole_scan.results import OperatingPoint
    from projects.benchmarks.stand_in_detector import StandInDetector

    ms = 0. if args.stand_in_ms is None else args.stand_in_ms
    detectors = dict(
        few=StandInDetector(ms, args.stand_in_boxes),
        many=StandInDetector(ms, args.stand_in_boxes,
                             low_boxes=args.low_boxes))
    validated = OperatingPoint('validation', args.operating_point, 4.,
                               'image', None, 'benchmark', 0)
    paths = dict(every_finding=(replace(run, fp_rate=None), None),
                 operating_point=(run, validated),
                 operating_point_before=(run, validated))
    runs = [(d, p) for d in detectors for p in paths]
    times: Dict[tuple, List[float]] = {key: [] for key in runs}
    counts: Dict[tuple, tuple] = {}
    n = len(scans)
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeats):
            shift = round_ % len(runs)
            for key in runs[shift:] + runs[:shift]:
                settings, point = paths[key[1]]
                out = Path(tmp) / f'{key[0]}_{key[1]}_{round_}'
                stacked = (every_candidate_a_finding
                           if key[1] == 'operating_point_before' else
                           infer._stacked)
                with mock.patch.object(
                        scan_run,
                        'choose_operating_point',
                        lambda *a, p=point, f=scan_run.choose_operating_point:
                        p or f(*a)), mock.patch.object(infer, '_stacked',
                                                       stacked):
                    start = time.perf_counter()
                    rows = run_batch_inference(
                        cfg,
                        None,
                        scans,
                        str(out),
                        settings,
                        options=BatchOptions(model=detectors[key[0]]))
                    times[key].append((time.perf_counter() - start) / n)
                if any(r.status != 'done' for r in rows):
                    raise RuntimeError(f'the batch failed: {rows}')
                counts[key] = (
                    statistics.median(r.findings for r in rows),
                    statistics.median(_candidates(out / r.folder)
                                      for r in rows))
            same = same and all(_same_files(
                Path(tmp) / f'{d}_operating_point_{round_}',
                Path(tmp) / f'{d}_operating_point_before_{round_}')
                for d in detectors)
    result = {f'{d}/{p}': dict(
        seconds_per_scan=round(statistics.median(times[(d, p)]), 3),
        spread=[round(min(times[(d, p)]), 3), round(max(times[(d, p)]), 3)],
        findings_per_scan=counts[(d, p)][0],
        candidates_per_scan=counts[(d, p)][1]) for d, p in runs}
    for p in paths:
        result[f'many_over_few/{p}'] = round(statistics.median(
            a / b for a, b in zip(times[('many', p)], times[('few', p)])), 3)
    result['same_files'] = same
    return result


def _same_files(a: Path, b: Path) -> bool:
    """Whether two batch folders hold the same ``candidates.csv`` files
    and findings (``findings.json`` but its times), byte for byte."""
    import json

    def record(path: Path) -> str:
        found = json.loads(path.read_text())
        for key in ('detect_seconds', 'slices_per_second'):
            found.pop(key)
        return json.dumps(found)

    files = sorted(p.relative_to(a) for p in a.rglob('*')
                   if p.name in ('candidates.csv', 'findings.json'))
    return bool(files) and all(
        (a / f).read_bytes() == (b / f).read_bytes() if f.suffix == '.csv'
        else record(a / f) == record(b / f) for f in files)


def _candidates(folder: Path) -> int:
    """The rows of a scan's ``candidates.csv``."""
    return len((folder / 'candidates.csv').read_text().splitlines()) - 1


def print_comparison(result: dict) -> None:
    """The lines of the module doc."""
    for key, row in result.items():
        if not isinstance(row, dict):
            print(f'{key}: {row}')
            continue
        lo, hi = row['spread']
        print(f"{key}: {row['seconds_per_scan']} s per scan ({lo}-{hi}), "
              f"{row['findings_per_scan']} findings kept of "
              f"{row['candidates_per_scan']} candidates per scan")
