# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 candidates (world points) of a 3D detector on its test scans."""
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmdet.registry import DATASETS
from mmlesion.evaluation.functional.luna16 import LUNA16Candidates
from mmlesion.evaluation.metrics.luna16_metric import \
    boxes_to_world_candidates
from mmlesion.apis.detector_loader import (DetectorLoadSettings,
                                           init_lesion_detector)
from mmlesion.utils.reporting.progress import track_progress


@dataclass
class TestSetCandidates:
    """What :func:`predict_candidates` gives back.

    Args:
        candidates (LUNA16Candidates): every detection as a world point
            with its probability.
        scans (list[str]): the series UIDs of every processed scan (also
            those without a candidate), in order.
    """
    candidates: LUNA16Candidates
    scans: List[str]


def predict_candidates(cfg: Config,
                       checkpoint: Optional[str],
                       device: str = 'cpu',
                       max_scans: Optional[int] = None,
                       show_progress: bool = True) -> TestSetCandidates:
    """Run the config's test set scan by scan and collect world candidates.

    Each detection's box centre becomes a world point (x, y, z mm) through
    the geometry of the sample's metainfo (``spacing_zyx``, ``origin_xyz``,
    ``direction``: the geometry the model ran on, e.g. after
    ``CropToLungs``), as ``LUNA16Metric`` does.

    Args:
        cfg (Config): a 3D detector config.
        checkpoint (str, optional): weights (None: the config's init).
        device (str): device.
        max_scans (int, optional): stop after this many scans.
        show_progress (bool): a progress bar over the scans.

    Returns:
        TestSetCandidates: the candidates and the processed scans.
    """
    model = init_lesion_detector(
        cfg, checkpoint, DetectorLoadSettings(device=device)).model
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      'mmdet')):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    n = len(dataset) if max_scans is None else min(max_scans, len(dataset))
    uids, xyz, probs, scans = [], [], [], []
    indices = track_progress(
        range(n), label='scans') if show_progress and n else range(n)
    for idx in indices:
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
    return TestSetCandidates(cands, scans)
