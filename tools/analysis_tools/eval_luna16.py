# Copyright (c) mmlesion contributors. All rights reserved.
"""Evaluate LUNA16 candidates with the official script's semantics.

Reads the official CSV formats and writes into ``--out-dir``:

- ``metrics.json``: ``cpm``, ``sensitivity_at`` (keys ``"0.125"``,
  ``"0.25"``, ``"0.5"``, ``"1"``, ``"2"``, ``"4"``, ``"8"``), the bootstrap
  band at those rates and the CPM interval (``bootstrap``), ``tnp``, the
  counts (scans, nodules, detected, kept marks, FPs, marks on excluded
  findings, double detections) and the options used;
- ``froc.png``: the FROC with its bootstrap band (official style, log x);
- ``froc_curve.csv`` (FPs per scan, sensitivity, threshold of each point),
  ``froc_bootstrap.csv`` (grid, mean, lower, upper; the official
  ``froc_*_bootstrapping.csv`` columns) and ``nodules.csv`` (each nodule,
  detected or not, with the probability of its best mark).

Usage::

    python tools/analysis_tools/eval_luna16.py \\
        --annotations data/luna16/annotations.csv \\
        --excluded data/luna16/annotations_excluded.csv \\
        --seriesuids data/luna16/seriesuids.csv \\
        --candidates work_dirs/x/candidates.csv --out-dir work_dirs/x/luna16

Semantics (cap of 100 marks with ties at the cut dropped, strict hit test,
diameter -1 -> 10 mm, marks on excluded findings dropped, one mark may hit
two nodules, ``sklearn.metrics.roc_curve``, CPM by ``np.interp``, 1,000
bootstrap resamples over scans): see
:mod:`mmlesion.evaluation.functional.luna16`. Bad CSV rows are reported with
the file, line and field; candidates of scans missing from ``--seriesuids``
are an error unless ``--ignore-unknown-seriesuids`` (the official script
ignores them silently). Existing outputs are never overwritten without
``--overwrite``.
"""
import argparse
import csv
import json
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

from mmlesion_cli import tool_parser

OUTPUTS = ('metrics.json', 'froc.png', 'froc_curve.csv',
           'froc_bootstrap.csv', 'nodules.csv')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('--annotations', required=True,
                        help='annotations.csv (included nodules)')
    parser.add_argument('--excluded', default=None,
                        help='annotations_excluded.csv (marks on these '
                        'findings are ignored)')
    parser.add_argument('--seriesuids', required=True,
                        help='seriesuids.csv (the evaluated scans)')
    parser.add_argument('--candidates', required=True,
                        help='seriesuid,coordX,coordY,coordZ,probability')
    parser.add_argument(
        '--out-dir', required=True,
        help='for the FROC picture, the metrics JSON and the lists of hits '
        'and misses')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing outputs in --out-dir')
    parser.add_argument('--num-bootstrap', type=int, default=1000,
                        help='bootstrap resamples (0: no band)')
    parser.add_argument(
        '--seed', type=int, default=0,
        help='bootstrap seed')
    parser.add_argument(
        '--confidence', type=float, default=0.95,
        help='confidence of the bootstrap band')
    parser.add_argument('--max-marks', type=int, default=100,
                        help='marks kept per scan (official: 100)')
    parser.add_argument(
        '--tnp-sensitivity', type=float, default=0.95,
        help='sensitivity at which the TNP threshold is reported')
    parser.add_argument(
        '--ignore-unknown-seriesuids', action='store_true',
        help='skip candidates of scans missing from the annotations '
        '(default: an error naming them)')
    parser.add_argument('--name', default=None,
                        help='system name on the plot (default: the '
                        'candidates file name)')
    return parser.parse_args(argv)


def _write_outputs(result, args, out_dir: str, name: str) -> List[str]:
    from mmlesion.evaluation.functional.luna16 import (read_findings_csv,
                                                       read_seriesuids_csv)
    from mmlesion.utils.writing.atomic import atomic_write
    from mmlesion.visualization.luna16_froc import plot_luna16_froc

    payload = result.to_dict()
    payload['files'] = dict(
        annotations=osp.abspath(args.annotations),
        excluded=osp.abspath(args.excluded) if args.excluded else None,
        seriesuids=osp.abspath(args.seriesuids),
        candidates=osp.abspath(args.candidates))
    written = []
    path = osp.join(out_dir, 'metrics.json')
    with atomic_write(path) as f:
        json.dump(payload, f, indent=2)
    written.append(path)
    path = osp.join(out_dir, 'froc.png')
    plot_luna16_froc(result, path, name=name)
    written.append(path)
    path = osp.join(out_dir, 'froc_curve.csv')
    with atomic_write(path, newline='') as f:
        w = csv.writer(f)
        w.writerow(['fps_per_scan', 'sensitivity', 'threshold'])
        for row in zip(result.fps, result.sens, result.thresholds):
            w.writerow([f'{v:.9f}' for v in row])
    written.append(path)
    if result.bootstrap is not None:
        b = result.bootstrap
        path = osp.join(out_dir, 'froc_bootstrap.csv')
        with atomic_write(path, newline='') as f:
            w = csv.writer(f)
            w.writerow(['FPrate', 'Sensivity[Mean]', 'Sensivity[Lower bound]',
                        'Sensivity[Upper bound]'])
            for row in zip(b.fps, b.mean, b.lower, b.upper):
                w.writerow([f'{float(v):.9f}' for v in row])
        written.append(path)
    # per nodule: the rows of annotations.csv of the evaluated scans
    ann = read_findings_csv(args.annotations)
    uids = set(read_seriesuids_csv(args.seriesuids))
    listed = [i for i, u in enumerate(ann.seriesuids) if u in uids]
    m = result.match
    path = osp.join(out_dir, 'nodules.csv')
    with atomic_write(path, newline='') as f:
        w = csv.writer(f)
        w.writerow(['seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm',
                    'detected', 'probability', 'num_marks'])
        for k, i in enumerate(listed):
            det = bool(m.nodule_hits[k] > 0)
            w.writerow([ann.seriesuids[i], *ann.xyz[i].tolist(),
                        float(ann.diameter_mm[i]), int(det),
                        f'{m.nodule_prob[k]:.9f}' if det else 'NA',
                        int(m.nodule_hits[k])])
    written.append(path)
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import numpy as np

    from mmlesion.evaluation.functional.luna16 import evaluate_luna16
    from mmlesion.utils import get_tool_logger

    logger = get_tool_logger('eval_luna16')
    out_dir = args.out_dir
    existing = [
        osp.join(out_dir, name) for name in OUTPUTS
        if osp.exists(osp.join(out_dir, name))
    ]
    if existing and not args.overwrite:
        print(f'error: {len(existing)} output(s) already exist: '
              f'{", ".join(existing)}; pass --overwrite to replace them',
              file=sys.stderr)
        return 2
    for path in (args.annotations, args.seriesuids, args.candidates,
                 args.excluded):
        if path is not None and not osp.isfile(path):
            print(f'error: no such file: {path}', file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    try:
        result = evaluate_luna16(
            args.candidates,
            args.annotations,
            args.excluded,
            args.seriesuids,
            max_marks=args.max_marks,
            num_bootstrap=args.num_bootstrap,
            seed=args.seed,
            confidence=args.confidence,
            tnp_sensitivity=args.tnp_sensitivity,
            unknown='ignore' if args.ignore_unknown_seriesuids else 'error',
            progress=args.num_bootstrap > 0)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    os.makedirs(out_dir, exist_ok=True)
    stale = osp.join(out_dir, 'froc_bootstrap.csv')
    if result.bootstrap is None and osp.exists(stale):
        os.remove(stale)  # from an earlier run; only with --overwrite
    name = args.name or osp.splitext(osp.basename(args.candidates))[0]
    written = _write_outputs(result, args, out_dir, name)
    counts = result.counts()
    rates = ', '.join(f'{k}: {v:.4f}' for k, v in
                      result.to_dict()['sensitivity_at'].items())
    lines = [
        f'LUNA16 evaluation of {args.candidates} '
        f'({time.perf_counter() - t0:.2f} s)',
        f'scans {counts["num_scans"]}, nodules {counts["num_nodules"]} '
        f'(detected {counts["num_detected"]}), marks '
        f'{counts["num_candidates"]}'
        f' (kept {counts["num_kept"]}, FP {counts["num_fp"]}, on excluded '
        f'findings {counts["num_irrelevant"]}, double detections '
        f'{counts["num_double_detections"]})',
        f'sensitivity at FPs/scan: {rates}',
        f'CPM: {result.cpm:.4f}',
    ]
    if result.bootstrap is not None:
        lo, hi = result.bootstrap.cpm_interval()
        lines.append(f'CPM {result.bootstrap.confidence:.0%} bootstrap '
                     f'interval ({result.bootstrap.num_resamples} '
                     f'resamples): [{lo:.4f}, {hi:.4f}]')
    tnp = result.tnp
    if tnp['tnp'] is None:
        lines.append(f'TNP: undefined (sensitivity '
                     f'{tnp["target_sensitivity"]} never reached or no scan '
                     'without nodules)')
    else:
        lines.append(
            f'TNP: {tnp["tnp"]:.4f} ({tnp["num_true_negatives"]}/'
            f'{tnp["num_negative_scans"]} scans without nodules, threshold '
            f'{tnp["threshold"]:.6g} at sensitivity {tnp["sensitivity"]:.4f})')
    lines.append('wrote ' + ', '.join(written))
    logger.info('\n'.join(lines))
    match = result.match
    empty = match.num_scans - len(
        np.unique(match.cand_scan[match.cand_scan >= 0]))
    if empty:
        logger.warning(
            f'{empty} of {match.num_scans} scans have no candidate at all: '
            'every nodule there counts as missed (a detector that found '
            'nothing there, or scans the candidates file lacks)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
