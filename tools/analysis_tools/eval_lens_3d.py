# Copyright (c) mmlesion contributors. All rights reserved.
"""Evaluate a LENS model on the 3D protocol of the DeepLesion manual test
set (Yan et al., TMI 2020, Sec. VI-A and Table I).

Usage::

    python tools/analysis_tools/eval_lens_3d.py CONFIG CHECKPOINT \\
        --ann-3d data/DeepLesion/DeepLesion_manual_1K_test_release.pkl \\
        --out-dir work_dirs/lens_3d [--experts 0] \\
        [--fpr-config FPR_CONFIG --fpr-checkpoint FPR_CHECKPOINT \\
         [--fpr-cfg-options KEY=VALUE ...]]

``FPR_CONFIG``: e.g.
``configs/lens/lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion.py``.

Every stored slice of the series of the config's test dataset that hold an
evaluated sub-volume is predicted (``--max-offset N``: only slices within N
of a key slice), the 2D boxes are stacked into 3D findings per sub-volume,
optionally re-scored by the FPR network (``(s_LENS + s_FPR) / 2``, row (e))
and scored with 3D IoBB >= 0.3 at 1/8..8 FPs per sub-volume. Writes into
``--out-dir``: ``metrics.json`` (sensitivities, their average, counts,
options), ``findings_3d.json`` (per sub-volume), ``froc3d_curve.png`` and
``froc3d_detections.json`` (each finding's outcome). Existing outputs are
never replaced without ``--overwrite``. See :mod:`mmlesion.methods.lens.eval_3d`.
"""
import argparse
import sys
from typing import Optional, Sequence

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import (CfgOptionsAction,
                                      add_cfg_options_argument,
                                      add_trust_checkpoint_argument)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='the LENS detector config')
    parser.add_argument('checkpoint', help='its trained weights')
    parser.add_argument('--ann-3d', required=True,
                        help='DeepLesion_manual_1K_test_release.pkl (or a '
                        'file in its format)')
    parser.add_argument('--splits', nargs='+', default=['test'],
                        choices=['val', 'test'],
                        help='splits of the manual file to evaluate')
    parser.add_argument(
        '--series', nargs='+', metavar='SERIES',
        help='evaluate only the sub-volumes of these series (e.g. '
        '000016_01_01): a quick look at a subset, not a result comparable '
        'with the paper')
    parser.add_argument(
        '--skip-missing-series', action='store_true',
        help='evaluate the series the test dataset has and skip the '
        'others with a warning (default: refuse, since their lesions '
        'would count as missed); metrics.json records the subset')
    parser.add_argument('--fpr-config', help='FPR config (row (e))')
    parser.add_argument('--fpr-checkpoint', help='FPR weights')
    parser.add_argument(
        '--fpr-cfg-options', nargs='+', action=CfgOptionsAction,
        help='override settings of --fpr-config, key=value pairs: those '
        'the FPR network was trained with')
    parser.add_argument('--experts', type=int, nargs='+',
                        help='LENS experts to fuse (default: the config\'s '
                        'test_cfg.expert_fusion.experts)')
    parser.add_argument('--max-offset', type=int,
                        help='only slices within N of a key slice')
    parser.add_argument('--iou-thr', type=float, default=.5,
                        help='2D -> 3D stacking IoU (paper: 0.5)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument('--out-dir', required=True, help='output folder')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing outputs in --out-dir')
    add_cfg_options_argument(parser)
    add_trust_checkpoint_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.methods.lens.eval_3d import (Lens3DEvalSettings,
                                                 evaluate_lens_3d)
    from mmlesion.utils import (CorruptCheckpointError,
                                UntrustedCheckpointError, get_tool_logger)
    logger = get_tool_logger('eval_lens_3d')
    try:
        res = evaluate_lens_3d(
            args.config, args.checkpoint, args.ann_3d, args.out_dir,
            Lens3DEvalSettings(
                fpr_config=args.fpr_config,
                fpr_checkpoint=args.fpr_checkpoint,
                fpr_cfg_options=args.fpr_cfg_options, experts=args.experts,
                max_offset=args.max_offset, splits=args.splits,
                iou_thr=args.iou_thr, device=args.device,
                overwrite=args.overwrite, cfg_options=args.cfg_options,
                series=args.series,
                skip_missing_series=args.skip_missing_series))
    except (FileNotFoundError, FileExistsError, ValueError,
            CorruptCheckpointError, UntrustedCheckpointError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    rates = ', '.join(f'{k}: {v:.4f}' for k, v in res.sensitivity.items())
    logger.info(
        f"LENS 3D evaluation{' with FPR (Eq. 2)' if res.fpr else ''}: "
        f'{res.sub_volumes} sub-volumes, {res.lesions} lesions, '
        f'{res.findings} findings\n{rates}\n'
        f'average sensitivity: {res.average:.4f}\nwrote '
        f'{args.out_dir}/metrics.json, findings_3d.json, froc3d_curve.png, '
        'froc3d_detections.json')
    return 0


if __name__ == '__main__':
    sys.exit(main())
