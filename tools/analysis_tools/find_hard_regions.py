# Copyright (c) mmlesion contributors. All rights reserved.
"""Find the hard regions of the training scans with a trained 3D detector
(one round of Anchor Based Sampling, 3D Aggregated Faster R-CNN Sec. IV-C).

Runs the model over every whole scan of the config's training set (the
training split and fold, read with the test pipeline; sliding windows and
duplicate merging as in testing; a progress bar over the scans) and writes
the hard regions, i.e. confident false positives (hard negatives) and missed
or poorly scored nodules (hard positives), into a JSON file that
``HardRegionRandomCrop3D`` reads in the next training round (format in
``mmlesion/datasets/volumes/hard_regions.py``), plus a summary PNG beside it.

Example (the LUNA16 "†" rows)::

    python tools/train.py \\
        configs/aggregated3d/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py \\
        --fold 3
    python tools/analysis_tools/find_hard_regions.py \\
        configs/aggregated3d/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py \\
        work_dirs/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16_fold3/\\
epoch_50.pth --fold 3 \\
        --out work_dirs/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16_fold3/\\
hard_regions_fold3.json
    python tools/train.py \\
        configs/aggregated3d/aggregated3d-abs_denseunet3d_anchor1_4xb2-30e_luna16.py \\
        --fold 3

``--fold K`` picks the cross-validation fold as in ``tools/train.py``
(:func:`mmlesion.utils.apply_cv_fold`).
"""
import argparse
import os.path as osp
from typing import List

from mmengine.config import Config

from mmlesion_cli import tool_parser
from mmlesion_cli.package_data import package_json
from mmlesion_cli.common_args import (add_cfg_options_argument,
                                      add_fold_argument,
                                      add_scan_check_arguments,
                                      add_trust_checkpoint_argument,
                                      scan_check_flags)


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='config of the trained round')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument('--out', required=True, help='hard-region JSON')
    shown = package_json(
        'evaluation/functional/tool_defaults.json')['HardRegionSettings']
    parser.add_argument('--neg-score-thr', type=float,
                        default=shown['neg_score_thr'],
                        help='minimum score of a hard negative')
    parser.add_argument('--pos-score-thr', type=float,
                        default=shown['pos_score_thr'],
                        help='nodules scored below this are hard positives')
    parser.add_argument('--max-negatives', type=int,
                        default=shown['max_negatives'],
                        help='hard negatives kept per scan (highest scores)')
    parser.add_argument(
        '--device', default='cpu',
        help='e.g. cpu, cuda:0')
    parser.add_argument('--max-scans', type=int,
                        help='only the first N training scans (a check)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --out (and its PNG)')
    add_cfg_options_argument(parser)
    add_fold_argument(parser)
    add_trust_checkpoint_argument(parser)
    add_scan_check_arguments(parser)
    return parser.parse_args(argv)


def output_paths(out: str) -> List[str]:
    """The JSON and its summary PNG (``<out without .json>.png``)."""
    stem = out[:-5] if out.endswith('.json') else out
    return [out, stem + '.png']


def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    from dataclasses import asdict

    from mmlesion.evaluation.functional.hard_regions import \
        HardRegionSettings
    from mmlesion.methods.aggregated3d.hard_regions import find_hard_regions
    from mmlesion.datasets.volumes.hard_regions import dump_hard_regions
    from mmlesion.utils import apply_cv_fold
    from mmlesion.visualization.hard_regions import plot_hard_regions
    paths = output_paths(args.out)
    for path in paths:
        if osp.exists(path) and not args.overwrite:
            raise SystemExit(f'{path} exists; pass --overwrite to replace '
                             f'it')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        from mmlesion.utils.configs.cfg_options import apply_cfg_options
        apply_cfg_options(cfg, args.cfg_options, source=args.config)
    from mmlesion.datasets.volumes.scan_switches import set_scan_checks
    set_scan_checks(cfg, scan_check_flags(args))  # --force-ct and the like
    if args.fold is not None:
        apply_cv_fold(cfg, args.fold, source=args.config)
    settings = HardRegionSettings(args.neg_score_thr, args.pos_score_thr,
                                  args.max_negatives)
    scans = find_hard_regions(
        cfg, args.checkpoint, device=args.device, max_scans=args.max_scans,
        settings=settings)
    dump_hard_regions(
        args.out, scans, overwrite=args.overwrite, config=args.config,
        checkpoint=args.checkpoint, **asdict(settings))
    plot_hard_regions(scans, paths[1])
    print(f'hard regions of {len(scans)} scans -> {args.out}, '
          f'{paths[1]}')
    return scans


if __name__ == '__main__':
    main()
