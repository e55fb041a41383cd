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
import sys
from typing import Optional, Sequence

from mmlesion_cli import package_json, tool_parser


def default(name: str):
    """The default of a field of
    :class:`~mmlesion.protocols.luna16_eval.Luna16FilesEval` (the data file
    that module reads, read without importing the library)."""
    return package_json('protocols/tool_defaults.json')['Luna16FilesEval'][
        name]


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
    parser.add_argument('--num-bootstrap', type=int,
                        default=default('num_bootstrap'),
                        help='bootstrap resamples (0: no band)')
    parser.add_argument('--seed', type=int, default=default('seed'),
                        help='bootstrap seed')
    parser.add_argument('--confidence', type=float,
                        default=default('confidence'),
                        help='confidence of the bootstrap band')
    parser.add_argument('--max-marks', type=int, default=default('max_marks'),
                        help='marks kept per scan (official: 100)')
    parser.add_argument(
        '--tnp-sensitivity', type=float, default=default('tnp_sensitivity'),
        help='sensitivity at which the TNP threshold is reported')
    parser.add_argument(
        '--ignore-unknown-seriesuids', action='store_true',
        help='skip candidates of scans missing from the annotations '
        '(default: an error naming them)')
    parser.add_argument('--name', default=None,
                        help='system name on the plot (default: the '
                        'candidates file name)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from mmlesion.protocols.luna16_eval import (Luna16FilesEval,
                                                evaluate_luna16_files)
    from mmlesion.utils import get_tool_logger
    get_tool_logger('eval_luna16')
    settings = Luna16FilesEval(**{
        k: getattr(args, k) for k in Luna16FilesEval.__dataclass_fields__})
    try:
        evaluate_luna16_files(settings)
    except (FileExistsError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
