# Copyright (c) mmlesion contributors. All rights reserved.
"""Best-anchor IoU per ground-truth box: mmdet's default RetinaNet anchors
vs the config's anchors vs anchors optimised by our DE optimiser on the
training split (Zlocha et al. 2019, Sec. 2.1).

Prints, per anchor set, the mean and median best-anchor IoU and the
fraction of boxes whose best anchor reaches IoU 0.5 (RetinaNet's positive
threshold), and writes them as JSON (``--out``; an existing file is kept
unless ``--overwrite``).

Example (data with real DeepLesion sizes first, from a clone)::

    python projects/study_demo/tools/generate_study_data.py \
        --out data/demo_deeplesion_dl --size-source deeplesion
    python tools/analysis_tools/anchor_coverage.py \
        configs/retinanet_lesion/demo/retinanet_r18-tiny_fpn_1x_deeplesion-demo.py \
        --data-root data/demo_deeplesion_dl/ --out anchor_coverage.json

A 3D config with cube anchors (``CubeAnchorGenerator3D``, the 3D Aggregated
Faster R-CNN) is measured on the diameters of a LUNA16-style
``annotations.csv`` instead (``--lesion-csv``; 1 mm voxels): per nodule the
fraction of centre positions relative to the anchor grids at which an
anchor reaches ``--iou-thr`` (:mod:`mmlesion.anchors.cube_anchor_coverage`)::

    python tools/analysis_tools/anchor_coverage.py \
        configs/aggregated3d/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py \
        --lesion-csv data/LUNA16/annotations.csv
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

from mmlesion_cli import tool_parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='RetinaNet-style detector config')
    parser.add_argument('--data-root', default=None,
                        help='data root of the split (default: the config)')
    parser.add_argument(
        '--split', default='train', choices=('train', 'val', 'test'),
        help='dataset split whose boxes are matched')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the anchor optimiser')
    parser.add_argument(
        '--iou-thr', type=float, default=.5,
        help='a box is covered when an anchor reaches this IoU')
    parser.add_argument(
        '--lesion-csv', default=None,
        help='3D cube-anchor configs: LUNA16-style annotations.csv whose '
        'diameter_mm column gives the lesions (1 mm voxels)')
    parser.add_argument(
        '--samples-per-axis', type=int, default=32,
        help='3D: lesion centre positions per axis over one anchor period')
    parser.add_argument('--out', default=None, help='JSON file to write')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='replace an existing --out')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.out and osp.exists(args.out) and not args.overwrite:
        print(f'error: {args.out} exists; use --overwrite to replace it',
              file=sys.stderr)
        raise SystemExit(1)
    from mmengine.config import Config

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.anchors.anchor_coverage import coverage_report
    from mmlesion.utils.writing.atomic import atomic_write_json
    cfg = Config.fromfile(args.config)
    generator = (cfg.model.get('rpn_head') or {}).get('anchor_generator',
                                                       {})
    if generator.get('type') == 'CubeAnchorGenerator3D':
        return _cube_main(args, generator)
    if args.data_root is not None:
        cfg[f'{args.split}_dataloader'].dataset.data_root = args.data_root
    report, _ = coverage_report(cfg, args.split, args.seed, args.iou_thr)
    result = dict(config=args.config, split=args.split,
                  data_root=cfg[f'{args.split}_dataloader'].dataset.get(
                      'data_root'),
                  optimiser_seed=args.seed, anchors=report)
    print(f'{"anchors":<15} {"boxes":>6} {"mean IoU":>9} {"median":>7} '
          f'{"IoU>=" + format(args.iou_thr, "g"):>8}')
    for name, row in report.items():
        print(f'{name:<15} {row["num_boxes"]:>6d} {row["mean_iou"]:>9.4f} '
              f'{row["median_iou"]:>7.4f} {row["frac_iou_ge_thr"]:>8.4f}')
    if args.out:
        atomic_write_json(args.out, result, indent=1)
        print(f'written: {args.out}')
    return result


def _cube_main(args: argparse.Namespace, generator) -> dict:
    """Coverage of the cube anchors of a 3D config on a lesion CSV."""
    from mmlesion.anchors.cube_anchor_coverage import (cube_anchor_coverage,
                                                       luna16_diameters)
    from mmlesion.utils.writing.atomic import atomic_write_json
    if args.lesion_csv is None:
        print('error: a cube-anchor (3D) config needs --lesion-csv',
              file=sys.stderr)
        raise SystemExit(1)
    report = cube_anchor_coverage(
        luna16_diameters(args.lesion_csv), generator.strides,
        generator.sizes, args.iou_thr, args.samples_per_axis,
        generator.get('center_offset', 0.5))
    result = dict(config=args.config, lesion_csv=args.lesion_csv,
                  anchors=report)
    n = report['num_lesions']
    thr = format(args.iou_thr, 'g')
    print(f'anchors: strides {report["strides"]}, sizes {report["sizes"]}; '
          f'{n} lesions; positive at IoU >= {thr}')
    print(f'  centred on an anchor:            '
          f'{report["centred_ge_thr"]:>5d} / {n}')
    print(f'  at every centre position:        '
          f'{report["covered_everywhere"]:>5d} / {n}')
    print(f'  at no centre position:           '
          f'{report["covered_nowhere"]:>5d} / {n}')
    print(f'  mean fraction of positions:      '
          f'{report["mean_frac_positions"]:.4f}')
    print(f'  mean best IoU over positions:    '
          f'{report["mean_best_iou"]:.4f}')
    if args.out:
        atomic_write_json(args.out, result, indent=1)
        print(f'written: {args.out}')
    return result


if __name__ == '__main__':
    main()
