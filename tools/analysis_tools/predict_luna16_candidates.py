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
        configs/aggregated3d/aggregated3d_denseunet3d-tiny_demo_luna16vol.py \\
        work_dirs/agg3d_demo/epoch_12.pth --out work_dirs/agg3d_demo/cand.csv \\
        --annotations data/demo_volumes/luna16/annotations.csv \\
        --excluded data/demo_volumes/luna16/annotations_excluded.csv
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope
from mmengine.utils import track_iter_progress

from mmdet.registry import DATASETS, MODELS
from mmlesion.datasets.volumes import add_scan_check_arguments
from mmlesion.evaluation.functional.luna16 import (LUNA16Candidates,
                                                   evaluate_luna16,
                                                   write_candidates_csv)
from mmlesion.evaluation.metrics.luna16_metric import \
    boxes_to_world_candidates
from mmlesion.utils import (add_trust_checkpoint_argument,
                            load_model_checkpoint)


def predict_candidates(cfg: Config,
                       checkpoint: Optional[str],
                       device: str = 'cpu',
                       max_scans: Optional[int] = None
                       ) -> Tuple[LUNA16Candidates, List[str]]:
    """Run the test set and collect world candidates.

    Args:
        cfg (Config): a 3D detector config.
        checkpoint (str, optional): weights (None: the config's init).
        device (str): device.
        max_scans (int, optional): stop after this many scans.

    Returns:
        tuple: candidates, and the series UIDs of every processed scan.
    """
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      'mmdet')):
        model = MODELS.build(cfg.model)
        if checkpoint:
            load_model_checkpoint(model, checkpoint)
        model.to(device).eval()
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    n = len(dataset) if max_scans is None else min(max_scans, len(dataset))
    uids, xyz, probs, scans = [], [], [], []
    for idx in track_iter_progress(range(n)):
        data = dataset[idx]
        batch = dict(inputs=[data['inputs']],
                     data_samples=[data['data_samples']])
        with torch.no_grad():
            sample = model.test_step(batch)[0]
        uid = sample.metainfo.get('series_uid') or sample.metainfo['img_id']
        scans.append(uid)
        pred = sample.pred_instances
        meta = sample.metainfo
        missing = [k for k in ('spacing_zyx', 'origin_xyz') if k not in meta]
        if missing:
            raise KeyError(f"{meta.get('img_path', '<scan>')}: metainfo has "
                           f'no {missing}; pack it with PackVolumeDetInputs')
        pts, _ = boxes_to_world_candidates(
            pred.bboxes.cpu().numpy(), meta['spacing_zyx'],
            meta['origin_xyz'], meta.get('direction', np.eye(3)))
        xyz.append(pts)
        probs.append(pred.scores.cpu().numpy().astype(np.float64))
        uids.extend([uid] * len(pts))
    cands = LUNA16Candidates(
        np.asarray(uids, dtype=object),
        np.concatenate(xyz) if xyz else np.zeros((0, 3)),
        np.concatenate(probs) if probs else np.zeros(0))
    return cands, scans


def main(argv=None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?')
    parser.add_argument('--out', required=True, help='candidates CSV')
    parser.add_argument('--annotations', help='annotations.csv: evaluate')
    parser.add_argument('--excluded', help='annotations_excluded.csv')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--max-scans', type=int)
    parser.add_argument('--overwrite', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_trust_checkpoint_argument(parser)
    add_scan_check_arguments(parser)
    args = parser.parse_args(argv)
    metrics_path = osp.join(osp.dirname(osp.abspath(args.out)),
                            'metrics.json')
    outputs = [args.out] + ([metrics_path] if args.annotations else [])
    for path in outputs:
        if osp.exists(path) and not args.overwrite:
            parser.error(f'{path} exists; pass --overwrite to replace it')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cands, scans = predict_candidates(cfg, args.checkpoint, args.device,
                                      args.max_scans)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    write_candidates_csv(args.out, cands.seriesuids, cands.xyz,
                         cands.probability)
    print(f'{len(cands.probability)} candidates of {len(scans)} scans -> '
          f'{args.out}')
    if not args.annotations:
        return {}
    result = evaluate_luna16(cands, args.annotations, args.excluded, scans,
                             num_bootstrap=0, unknown='ignore')
    metrics = result.to_dict()
    metrics.update(scans=len(scans), config=args.config,
                   checkpoint=args.checkpoint)
    with open(metrics_path, 'w') as f:
        json.dump(metrics, f, indent=2)
    print(f"CPM {metrics['cpm']:.3f} over {len(scans)} scans -> "
          f'{metrics_path}')
    return metrics


if __name__ == '__main__':
    main()
