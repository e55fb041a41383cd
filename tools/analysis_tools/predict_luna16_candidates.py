# Copyright (c) mmlesion contributors. All rights reserved.
"""Detect lesions in whole CT scans with a 3D detector and write LUNA16
candidates (and, given the annotation CSVs, the LUNA16 evaluation).

Runs the config's test dataset scan by scan (the model slides its windows
over each whole scan and merges duplicates, e.g. ``AggregatedFasterRCNN3D``),
turns every detection's box centre into a world point (x, y, z mm; the
``LUNA16Metric``'s ``boxes_to_world_candidates``) with the scan's geometry from the data sample's metainfo (``spacing_zyx``,
``origin_xyz``, ``direction``; SimpleITK's index -> physical point) and
writes the official candidates CSV ``seriesuid,coordX,coordY,coordZ,
probability``. With ``--annotations`` (and ``--excluded``) it also computes
the official LUNA16 FROC / CPM over the scans it processed and writes
``metrics.json`` beside the CSV.

Example::

    python tools/analysis_tools/predict_luna16_candidates.py \\
        configs/aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-demo.py \\
        work_dirs/agg3d_demo/epoch_12.pth --out work_dirs/agg3d_demo/cand.csv \\
        --annotations data/demo_volumes/luna16/annotations.csv \\
        --excluded data/demo_volumes/luna16/annotations_excluded.csv
"""
import json
import os
import os.path as osp
import sys
from typing import Dict

from mmengine.config import Config

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import (add_cfg_options_argument,
                                      add_scan_check_arguments,
                                      add_trust_checkpoint_argument,
                                      scan_check_flags)


def main(argv=None) -> Dict:
    parser = tool_parser(__doc__)
    parser.add_argument(
        'config',
        help='a LUNA16 3D detector config')
    parser.add_argument(
        'checkpoint', nargs='?',
        help="its weights (default: the config's load_from)")
    parser.add_argument('--out', required=True, help='candidates CSV')
    parser.add_argument('--annotations', help='annotations.csv: evaluate')
    parser.add_argument('--excluded', help='annotations_excluded.csv')
    parser.add_argument(
        '--device', default='cpu',
        help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--max-scans', type=int,
        help='only the first N scans (a check)')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='replace an existing --out')
    add_cfg_options_argument(parser)
    add_trust_checkpoint_argument(parser)
    add_scan_check_arguments(parser)
    args = parser.parse_args(argv)
    from mmlesion.protocols.luna16_candidates import predict_candidates
    from mmlesion.evaluation.functional.luna16 import (LUNA16Options,
                                                       evaluate_luna16,
                                                       write_candidates_csv)
    from mmlesion.utils.writing.atomic import atomic_write
    metrics_path = osp.join(osp.dirname(osp.abspath(args.out)),
                            'metrics.json')
    outputs = [args.out] + ([metrics_path] if args.annotations else [])
    for path in outputs:
        if osp.exists(path) and not args.overwrite:
            parser.error(f'{path} exists; pass --overwrite to replace it')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        from mmlesion.utils.configs.cfg_options import apply_cfg_options
        apply_cfg_options(cfg, args.cfg_options, source=args.config)
    from mmlesion.datasets.volumes.scan_switches import set_scan_checks
    set_scan_checks(cfg, scan_check_flags(args))  # --force-ct and the like
    tested = predict_candidates(cfg, args.checkpoint, args.device,
                                args.max_scans)
    cands, scans = tested.candidates, tested.scans
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    write_candidates_csv(args.out, cands.seriesuids, cands.xyz,
                         cands.probability)
    print(f'{len(cands.probability)} candidates of {len(scans)} scans -> '
          f'{args.out}')
    empty = sorted(set(scans) - set(cands.seriesuids))
    if empty:
        print(f'warning: {len(empty)} of {len(scans)} scans have no '
              f'candidate at all (e.g. {empty[:3]}): every nodule there is '
              'missed; check the model and its test_cfg score threshold',
              file=sys.stderr)
    if not args.annotations:
        return {}
    result = evaluate_luna16(cands, args.annotations, args.excluded, scans,
                             LUNA16Options(num_bootstrap=0, unknown='ignore'))
    metrics = result.to_dict()
    metrics.update(scans=len(scans), config=args.config,
                   checkpoint=args.checkpoint)
    with atomic_write(metrics_path) as f:
        json.dump(metrics, f, indent=2)
    print(f"CPM {metrics['cpm']:.3f} over {len(scans)} scans -> "
          f'{metrics_path}')
    return metrics


if __name__ == '__main__':
    main()
