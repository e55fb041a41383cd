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

import numpy as np
from mmengine.config import DictAction

from mmlesion.apis import load_lens_and_train_set, predict_series_3d
from mmlesion.datasets.lens_fpr_patches import FORMAT, label_fpr_proposal
from mmlesion.mining.mined_file import read_mined_file


def _add(d, z, boxes):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if len(boxes):
        d[z] = np.concatenate([d.get(z, np.zeros((0, 4), np.float32)),
                               boxes])


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
    positives, everything = {}, {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        name = osp.basename(osp.normpath(info['series_dir']))
        boxes = [ins['bbox'] for ins in info['instances']]
        key = (name, int(info['key_slice']))
        _add(positives, key, [
            b for b, ins in zip(boxes, info['instances'])
            if not ins['ignore_flag']
        ])
        _add(everything, key, boxes)
    if args.mined:
        for s in read_mined_file(args.mined)['slices']:
            key = (s['series_dir'], s['slice'])
            _add(positives, key, s['mined'])
            _add(everything, key, s['mined'] + s['uncertain'])
    findings = predict_series_3d(model, dataset, args.tp_thr,
                                 args.max_offset)
    out, counts = [], dict(tp=0, fp=0, unused=0)
    for name, items in findings.items():
        pos = {z: b for (n, z), b in positives.items() if n == name}
        every = {z: b for (n, z), b in everything.items() if n == name}
        for f in items:
            label = label_fpr_proposal(f['boxes_2d'], pos, every,
                                       args.tp_thr, args.fp_thr)
            if label is None:
                counts['unused'] += 1
                continue
            counts['tp' if label else 'fp'] += 1
            out.append(dict(series_dir=name,
                            bbox_3d=[round(float(v), 2)
                                     for v in f['bbox_3d']],
                            score=round(float(f['score']), 4), label=label))
    with open(args.out, 'w') as f:
        json.dump(dict(metainfo=dict(format=FORMAT, counts=counts,
                                     tp_thr=args.tp_thr,
                                     fp_thr=args.fp_thr),
                       proposals=out), f)
    print(json.dumps(dict(counts=counts, out=args.out)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
