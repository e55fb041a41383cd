# Copyright (c) mmlesion contributors. All rights reserved.
"""Merge two models' LUNA16 candidates CSVs (Table III "Merged" rows).

The 3D Aggregated Faster R-CNN paper merges 3D-AG and 3D-AG-LM (both with
ABS) by averaging overlapped proposals and keeping (union) or discarding
(intersection) the others: CPM 0.943 (intersection) and 0.942 (union).
Overlap (the paper is silent; :mod:`mmlesion.evaluation.functional.
luna16_merge`): same scan, centres closer than ``--max-distance`` mm,
matched one to one, nearest first; a pair becomes one mark at the mean
centre with the mean probability.

Usage (pooled 10-fold candidates of the two models, then the score)::

    python tools/analysis_tools/merge_luna16_candidates.py \\
        work_dirs/3dag_abs/candidates.csv work_dirs/3dag-lm_abs/candidates.csv \\
        --out work_dirs/merged_intersection/candidates.csv
    python tools/analysis_tools/eval_luna16.py --candidates \\
        work_dirs/merged_intersection/candidates.csv ...

The output (official format) is written atomically (a temporary file in the
same directory, then renamed) and never replaces an existing file without
``--overwrite``; bad input rows are reported with file, line and field.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
from typing import Optional, Sequence

from mmlesion_cli import tool_parser
from mmlesion_cli.package_data import package_json


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    shown = package_json('evaluation/functional/tool_defaults.json')
    defaults = shown['merge_candidates']
    parser.add_argument('candidates_a', help="model A's candidates CSV")
    parser.add_argument('candidates_b', help="model B's candidates CSV")
    parser.add_argument('--out', required=True, help='merged candidates CSV')
    parser.add_argument(
        '--mode', choices=shown['MERGE_MODES'], default=defaults['mode'],
        help='keep candidates found by both models, or by either')
    parser.add_argument('--max-distance', type=float,
                        default=defaults['max_distance_mm'],
                        help='centres closer than this (mm) overlap')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --out')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    from mmlesion.evaluation.functional import (read_candidates_csv,
                                                write_candidates_csv)
    from mmlesion.evaluation.functional.luna16_merge import merge_candidates
    out = osp.abspath(args.out)
    for path in (args.candidates_a, args.candidates_b):
        if osp.exists(out) and osp.samefile(out, path):
            raise SystemExit(f'--out {args.out} is an input file')
    if osp.exists(out) and not args.overwrite:
        raise SystemExit(f'{args.out} exists; pass --overwrite to replace it')
    a = read_candidates_csv(args.candidates_a)
    b = read_candidates_csv(args.candidates_b)
    res = merge_candidates(a, b, args.mode, args.max_distance)
    out_dir = osp.dirname(out)
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.candidates-', suffix='.csv',
                               dir=out_dir)
    os.close(fd)
    try:
        c = res.candidates
        write_candidates_csv(tmp, c.seriesuids, c.xyz, c.probability)
        os.replace(tmp, out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    summary = dict(mode=args.mode, max_distance_mm=args.max_distance,
                   marks_a=len(a.seriesuids), marks_b=len(b.seriesuids),
                   pairs=res.num_pairs, unmatched_a=res.unmatched_a,
                   unmatched_b=res.unmatched_b,
                   written=len(res.candidates.seriesuids))
    print(f'{args.out}: ' + ', '.join(f'{k} {v}' for k, v in
                                      summary.items()))
    return summary


if __name__ == '__main__':
    sys.exit(main() and 0)
