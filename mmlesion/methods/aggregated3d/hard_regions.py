# Copyright (c) mmlesion contributors. All rights reserved.
"""Find the hard regions of the training scans with a trained 3D detector
(one round of Anchor Based Sampling, 3D Aggregated Faster R-CNN Sec. IV-C).
"""
import copy
from typing import List, Optional

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

from mmdet.registry import DATASETS
from mmlesion.apis.detector_loader import (DetectorLoadSettings,
                                           init_lesion_detector)
from mmlesion.datasets.volumes.hard_regions import HardRegionScan
from mmlesion.evaluation.functional.hard_regions import (HardRegionSettings,
                                                         scan_hard_regions)
from mmlesion.structures.ct_geometry import ScanGrid
from mmlesion.utils.reporting.progress import track_progress


def training_scans_cfg(cfg: Config) -> ConfigDict:
    """The training dataset of a config, read whole-scan.

    Unwraps dataset wrappers, keeps the training split, and replaces the
    training pipeline (random crops) with the test pipeline (whole scans).
    Scans without nodules stay (``filter_cfg=None``: many hard negatives
    are there), each listed once (``crops_per_scan=1``).

    Args:
        cfg (Config): a 3D detector config.

    Returns:
        ConfigDict: a dataset config.
    """
    ds = cfg.train_dataloader.dataset
    while 'dataset' in ds:
        ds = ds.dataset
    if 'datasets' in ds:
        raise ValueError(
            f"find_hard_regions: the training dataset is a {ds.get('type')} "
            f'of several datasets; mine each one with its own config')
    ds = copy.deepcopy(ds)
    ds.pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    ds.filter_cfg = None
    ds.test_mode = False
    if 'crops_per_scan' in ds:
        ds.crops_per_scan = 1  # each scan once
    return ds


def find_hard_regions(cfg: Config,
                      checkpoint: Optional[str],
                      device: str = 'cpu',
                      max_scans: Optional[int] = None,
                      settings: HardRegionSettings = HardRegionSettings()
                      ) -> List[HardRegionScan]:
    """Run a trained model over every training scan and list its hard
    regions.

    Each scan is predicted whole, its detections matched to its nodules
    (:func:`~mmlesion.evaluation.functional.hard_regions.scan_hard_regions`).

    Args:
        cfg (Config): the config of the trained round.
        checkpoint (str, optional): its weights (None: the config's init,
            e.g. for tests).
        device (str): device.
        max_scans (int, optional): stop after this many scans.
        settings (HardRegionSettings): what makes a region hard.

    Returns:
        list[HardRegionScan]: one per scan, an entry of a hard-region file
        (:mod:`mmlesion.datasets.volumes.hard_regions`).
    """
    model_cfg = copy.deepcopy(cfg)
    # one progress bar over the scans instead of one per scan
    model_cfg.model.setdefault('test_cfg', ConfigDict())['show_progress'] = \
        False
    model = init_lesion_detector(
        model_cfg, checkpoint, DetectorLoadSettings(device=device)).model
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      'mmdet')):
        dataset = DATASETS.build(training_scans_cfg(cfg))
    n = len(dataset) if max_scans is None else min(max_scans, len(dataset))
    entries = []
    for idx in track_progress(range(n), label='scans'):
        info = dataset.get_data_info(idx)
        data = dataset[idx]
        with torch.no_grad():
            sample = model.test_step(
                dict(inputs=[data['inputs']],
                     data_samples=[data['data_samples']]))[0]
        meta = sample.metainfo
        where = f"{info.get('img_path')} (scan {info.get('img_id')})"
        missing = [k for k in ('spacing_zyx', 'origin_xyz', 'direction')
                   if k not in meta]
        if missing:
            raise KeyError(f'{where}: metainfo lacks {missing}; pack the '
                           f'test pipeline with PackVolumeDetInputs')
        direction = np.asarray(meta['direction'], np.float64).reshape(9)
        regions = scan_hard_regions(
            sample.pred_instances.bboxes.cpu().numpy(),
            sample.pred_instances.scores.cpu().numpy(),
            ScanGrid(meta['spacing_zyx'], meta['origin_xyz'], direction),
            info.get('instances', []), settings, where)
        entries.append(HardRegionScan(
            id=str(info['img_id']),
            series_uid=info.get('series_uid'),
            img_path=str(info.get('img_path')),
            shape_zyx=[int(s) for s in meta['img_shape']],
            spacing_zyx=[float(s) for s in meta['spacing_zyx']],
            origin_xyz=[float(s) for s in meta['origin_xyz']],
            direction=[float(v) for v in direction],
            regions=regions))
    kinds = [r['kind'] for e in entries for r in e['regions']]
    print_log(
        f'find_hard_regions: {len(entries)} scans, '
        f"{kinds.count('hard_negative')} hard negatives, "
        f"{kinds.count('hard_positive')} hard positives", logger='current')
    return entries
