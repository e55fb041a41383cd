# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS step 5, data (Sec. IV-D, VI-B): 3D proposals of a trained LENS model
on the training set of DeepLesion, labelled TP / FP for the FPR network.

A proposal is a TP when one of its 2D boxes has IoU > 0.5 with an annotation
or mined annotation on its slice, an FP when all its 2D boxes have IoU < 0.3
with everything (annotations, mined and uncertain lesions); the rest is not
used. Writes the file LENSFPRPatchDataset reads.

Example::

    python tools/lens_fpr_proposals.py CONFIG CHECKPOINT \
        --mined data/DeepLesion/lens_mined.json \
        --out data/DeepLesion/lens_fpr_proposals.json
"""
import json
import os.path as osp
import sys

from mmlesion_cli import tool_parser
from mmlesion_cli.package_data import package_json
from mmlesion_cli.common_args import (add_cfg_options_argument,
                                      add_trust_checkpoint_argument)


def main(argv=None) -> int:
    p = tool_parser(__doc__)
    shown = package_json('methods/lens/tool_defaults.json')[
        'FPRProposalSettings']
    p.add_argument(
        'config',
        help='LENS config the model was trained with')
    p.add_argument(
        'checkpoint',
        help='trained LENS checkpoint')
    p.add_argument(
        '--out', required=True,
        help='FPR proposal JSON')
    p.add_argument(
        '--overwrite', action='store_true',
        help='replace an existing --out')
    p.add_argument('--mined', default=None,
                   help='mined annotation file (lens_mine_annotations.py)')
    p.add_argument(
        '--dataset-index', type=int, default=0,
        help='the dataset whose training split is used')
    p.add_argument(
        '--tp-thr', type=float, default=shown['tp_thr'],
        help='a proposal is a TP when a 2D box has IoU above this with an '
        'annotation')
    p.add_argument(
        '--fp-thr', type=float, default=shown['fp_thr'],
        help='a proposal is an FP when all its boxes have IoU below this '
        'with everything')
    p.add_argument(
        '--max-offset', type=int, default=shown['max_offset'],
        help='only slices within this many slices of a key slice (default: '
        'all)')
    add_cfg_options_argument(p)
    add_trust_checkpoint_argument(p)
    args = p.parse_args(argv)
    from mmlesion.methods.lens.experts import load_lens_and_train_set
    from mmlesion.methods.lens.fpr_proposals import (FPRProposalSettings,
                                                     make_fpr_proposals)
    from mmlesion.utils.writing.atomic import atomic_write
    if osp.exists(args.out) and not args.overwrite:
        print(f'error: {args.out} exists: pass --overwrite to replace it',
              file=sys.stderr)
        return 1
    try:
        loaded = load_lens_and_train_set(
            args.config, args.checkpoint, args.dataset_index,
            args.cfg_options)
        model, dataset = loaded.model, loaded.dataset
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    made = make_fpr_proposals(model, dataset, args.mined, FPRProposalSettings(
        args.tp_thr, args.fp_thr, args.max_offset))
    with atomic_write(args.out) as f:
        json.dump(made.to_dict(tp_thr=args.tp_thr, fp_thr=args.fp_thr), f)
    print(json.dumps(dict(counts=made.counts.to_dict(), out=args.out)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
