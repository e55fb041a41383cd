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
import argparse
import json
import os.path as osp
import sys

from mmengine.config import DictAction

from mmlesion.apis import load_lens_and_train_set, make_fpr_proposals
from mmlesion.datasets.lens_fpr_patches import FORMAT
from mmlesion.utils import add_trust_checkpoint_argument
from mmlesion.utils.atomic_io import atomic_write


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--out', required=True)
    p.add_argument('--overwrite', action='store_true')
    p.add_argument('--mined', default=None,
                   help='mined annotation file (lens_mine_annotations.py)')
    p.add_argument('--dataset-index', type=int, default=0)
    p.add_argument('--tp-thr', type=float, default=0.5)
    p.add_argument('--fp-thr', type=float, default=0.3)
    p.add_argument('--max-offset', type=int, default=None)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_trust_checkpoint_argument(p)
    args = p.parse_args(argv)
    if osp.exists(args.out) and not args.overwrite:
        print(f'error: {args.out} exists: pass --overwrite to replace it',
              file=sys.stderr)
        return 1
    try:
        _, model, dataset = load_lens_and_train_set(
            args.config, args.checkpoint, args.dataset_index,
            args.cfg_options)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    out, counts = make_fpr_proposals(model, dataset, args.mined,
                                     args.tp_thr, args.fp_thr,
                                     args.max_offset)
    with atomic_write(args.out) as f:
        json.dump(dict(metainfo=dict(format=FORMAT, counts=counts,
                                     tp_thr=args.tp_thr,
                                     fp_thr=args.fp_thr),
                       proposals=out), f)
    print(json.dumps(dict(counts=counts, out=args.out)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
