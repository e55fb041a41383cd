# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 candidates (world points) of a 3D detector on its test scans."""
import copy
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmdet.registry import DATASETS
from mmlesion.evaluation.functional.luna16 import (LUNA16Candidates,
                                                   apply_score_cut)
from mmlesion.evaluation.metrics.luna16_metric import \
    boxes_to_world_candidates
from mmlesion.apis.detector_loader import (DetectorLoadSettings,
                                           init_lesion_detector)
from mmlesion.utils.reporting.progress import track_progress


@dataclass
class TestSetCandidates:
    """What :func:`predict_candidates` gives back.

    Args:
        uncut (LUNA16Candidates): every detection of the run (the model's
            RPN score cut lifted) as a world point with its probability.
        rpn_probability (np.ndarray): ``(N,)`` the RPN score of each.
        rpn_score_thr (float): the config's RPN score cut
            (``model.test_cfg.rpn.score_thr``; 0: none).
        scans (list[str]): the series UIDs of every processed scan (also
            those without a candidate), in order.
    """
    uncut: LUNA16Candidates
    rpn_probability: np.ndarray
    rpn_score_thr: float
    scans: List[str]

    @property
    def candidates(self) -> LUNA16Candidates:
        """The detections the config's cut keeps (its test setting)."""
        return apply_score_cut(self.uncut, self.rpn_probability,
                               self.rpn_score_thr)


def rpn_score_cut(cfg: Config) -> float:
    """The RPN score cut of a 3D detector config
    (``model.test_cfg.rpn.score_thr``; 0 when it has none)."""
    rpn = (cfg.model.get('test_cfg') or {}).get('rpn') or {}
    return float(rpn.get('score_thr') or 0.)


def predict_candidates(cfg: Config,
                       checkpoint: Optional[str],
                       device: str = 'cpu',
                       max_scans: Optional[int] = None,
                       show_progress: bool = True) -> TestSetCandidates:
    """Run the config's test set scan by scan and collect world candidates.

    Each detection's box centre becomes a world point (x, y, z mm) through
    the sample's metainfo geometry, as ``LUNA16Metric`` does. The model runs
    without its RPN score cut, applied afterwards (``candidates``), so that
    one run gives the candidates with and without it.

    Args:
        cfg (Config): a 3D detector config.
        checkpoint (str, optional): weights (None: the config's init).
        device (str): device.
        max_scans (int, optional): stop after this many scans.
        show_progress (bool): a progress bar over the scans.

    Returns:
        TestSetCandidates: the candidates and the processed scans.
    """
    cut = rpn_score_cut(cfg)
    if cut:
        cfg = copy.deepcopy(cfg)
        cfg.model.test_cfg.rpn.score_thr = 0.
    model = init_lesion_detector(
        cfg, checkpoint, DetectorLoadSettings(device=device)).model
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      'mmdet')):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    n = len(dataset) if max_scans is None else min(max_scans, len(dataset))
    uids, xyz, probs, rpn, scans = [], [], [], [], []
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
        rpn.append((pred.rpn_scores if 'rpn_scores' in pred else
                    pred.scores).cpu().numpy().astype(np.float64))
        uids.extend([uid] * len(pts))
    cands = LUNA16Candidates(
        np.asarray(uids, dtype=object),
        np.concatenate(xyz) if xyz else np.zeros((0, 3)),
        np.concatenate(probs) if probs else np.zeros(0))
    return TestSetCandidates(
        cands, np.concatenate(rpn) if rpn else np.zeros(0), cut, scans)
