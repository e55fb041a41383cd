# Copyright (c) mmlesion contributors. All rights reserved.
"""Check that a study row's mechanism does its job: the TruncatedRPN mask
(ElixirNet) and the attention-gate maps (Improved RetinaNet) of a trained
model on a data split, next to the same model at initialisation.

TruncatedRPN: fraction of feature locations kept (the paper: "filter out half of the regions"),
fraction of lesion locations kept (an anchor of IoU >= the RPN's positive
threshold with a box; these must survive), fraction of the other
locations removed, ground-truth boxes still covered by a kept anchor, and
the mean location map at lesion / other locations
(:mod:`projects.elixirnet.trpn_probe`). Attention gates, per gate: mean
attention inside / outside the ground-truth boxes and the AUC of telling
box pixels from the rest (0.5 = blind; :mod:`projects.study_demo.study.gate_
probe`). Lesion map of the segmentation head: how often it reaches the
score calibration's ``mask_thr`` (below it the calibration changes nothing;
:mod:`projects.retinanet_lesion.seg_probe`). Relation Transfer Module (multi-type
ElixirNet): how many RoIs change their lesion type when the RTM feature is
removed, and how much the classifier reads it
(:mod:`projects.elixirnet.rtm_probe`).

Example (a row of a study, its config as dumped into the row's folder)::

    python projects/study_demo/tools/probe_study_mechanisms.py \
        work_dirs/study_elixirnet/trpn/seed_0/\
elixirnet-trpn_r18-tiny_fpn_1x_deeplesion-demo.py \
        --checkpoint work_dirs/study_elixirnet/trpn/seed_0/epoch_3.pth \
        --out trpn_seed0.json
"""

# projects/ is not installed (as in mmdet): its scripts run from a clone.
import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_ROOT = str(_Path(__file__).resolve().parents[3])
if _ROOT not in _sys.path:
    _sys.path.insert(0, _ROOT)
import argparse
import json
import os.path as osp
import sys
from typing import Optional, Sequence

from mmlesion_cli import tool_parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='the row\'s config')
    parser.add_argument('--checkpoint',
                        default=None,
                        help='trained weights (default: only the '
                        'initialisation)')
    parser.add_argument('--data-root',
                        default=None,
                        help='data root of the split (default: the config)')
    parser.add_argument('--split',
                        default='test',
                        choices=('train', 'val', 'test'),
                        help='the data split whose images are probed')
    parser.add_argument('--iou-thr',
                        type=float,
                        default=None,
                        help='TRPN lesion-location IoU (default: the RPN '
                        'assigner\'s pos_iou_thr)')
    parser.add_argument('--seed',
                        type=int,
                        default=0,
                        help='seed of the initialisation')
    parser.add_argument('--max-images',
                        type=int,
                        default=None,
                        help='probe only the first N images of the split '
                        '(default: all)')
    parser.add_argument('--out', default=None, help='JSON file to write')
    parser.add_argument('--overwrite',
                        action='store_true',
                        help='replace an existing --out file')
    return parser.parse_args(argv)


def _fmt(v: float) -> str:
    return f'{v:.4f}' if isinstance(v, float) else str(v)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.out and osp.exists(args.out) and not args.overwrite:
        print(f'error: {args.out} exists; use --overwrite to replace it',
              file=sys.stderr)
        raise SystemExit(1)
    for path in (args.config, args.checkpoint):
        if path is not None and not osp.isfile(path):
            print(f'error: {path} does not exist', file=sys.stderr)
            raise SystemExit(1)
    from mmengine.config import Config

    import mmlesion  # noqa: F401  (registers components)
    from projects.study_demo.mechanism_probe import probe_mechanisms
    from mmlesion.utils.writing.atomic import atomic_write_json
    cfg = Config.fromfile(args.config)
    if args.data_root is not None:
        cfg[f'{args.split}_dataloader'].dataset.data_root = args.data_root
    result = dict(
        config=args.config,
        split=args.split,
        data_root=cfg[f'{args.split}_dataloader'].dataset.get('data_root'),
        seed=args.seed)
    runs = dict(init=None)
    if args.checkpoint is not None:
        runs['trained'] = args.checkpoint
    for name, checkpoint in runs.items():
        result[name] = probe_mechanisms(cfg, checkpoint, args.split,
                                        args.iou_thr, args.seed,
                                        args.max_images)
        result[name]['checkpoint'] = checkpoint
    for name in runs:
        res = result[name]
        print(f'== {name} ({res["images"]} images)')
        if 'trpn' in res:
            print('TRPN: ' + ', '.join(f'{k} {_fmt(v)}'
                                       for k, v in res['trpn'].items()))
        if 'rtm' in res:
            print('RTM: ' + ', '.join(f'{k} {_fmt(v)}'
                                      for k, v in res['rtm'].items()))
        if 'lesion_map' in res:
            print('lesion map: ' +
                  ', '.join(f'{k} {_fmt(v)}'
                            for k, v in res['lesion_map'].items()))
        for gate, stats in res.get('gates', {}).items():
            print(f'gate {gate}: ' + ', '.join(f'{k} {_fmt(v)}'
                                               for k, v in stats.items()))
    if args.out:
        atomic_write_json(args.out, json.loads(json.dumps(result)), indent=1)
        print(f'written: {args.out}')
    return result


if __name__ == '__main__':
    main()
