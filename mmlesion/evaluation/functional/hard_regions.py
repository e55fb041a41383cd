# Copyright (c) mmlesion contributors. All rights reserved.
"""Hard regions of one scan for Anchor Based Sampling (3D Aggregated Faster
R-CNN, Sec. IV-C and Fig. 5)."""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from ...structures.ct_geometry import ScanGrid, world_to_voxel
from ...utils.tool_defaults import tool_defaults
from ..metrics.luna16_metric import boxes_to_world_candidates
from .luna16 import (MARK_FP, LUNA16Candidates, MatchSettings,
                     match_luna16)
from .luna16.io import findings_of, instance_finding


#: The defaults ``find_hard_regions.py --help`` shows (``tool_defaults.json``).
_SHOWN = tool_defaults(__file__)['HardRegionSettings']


@dataclass(frozen=True)
class HardRegionSettings:
    """What makes a region hard (the defaults of
    ``tools/analysis_tools/find_hard_regions.py``).

    Args:
        neg_score_thr (float): minimum score of a hard negative.
        pos_score_thr (float): a nodule scored below this is hard.
        max_negatives (int, optional): hard negatives kept per scan, the
            highest scored (None: all).
    """
    neg_score_thr: float = _SHOWN['neg_score_thr']
    pos_score_thr: float = _SHOWN['pos_score_thr']
    max_negatives: Optional[int] = _SHOWN['max_negatives']


def scan_hard_regions(bboxes: np.ndarray,
                      scores: np.ndarray,
                      grid: ScanGrid,
                      instances: Sequence[dict],
                      settings: HardRegionSettings = HardRegionSettings(),
                      where: str = '<scan>') -> List[dict]:
    """Hard negatives and hard positives of one whole-scan prediction.

    The paper (Sec. IV-C, Fig. 5) focuses the next round on false
    positives with high probabilities (hard negatives) and nodules missed or
    poorly scored (hard positives); it gives no thresholds. Here:

    - a *hard negative* is a detection with ``score >= neg_score_thr`` whose
      centre hits no finding under the LUNA16 rule (:func:`match_luna16`;
      detections on ignored findings are neither), at most the
      ``max_negatives`` highest-scored per scan;
    - a *hard positive* is a non-ignored nodule whose best hitting detection
      scores below ``pos_score_thr`` (score 0 when none hits it);

    the three numbers are ``settings``' (:class:`HardRegionSettings`).

    Args:
        bboxes (np.ndarray): ``(N, 6)`` ``[x1, y1, z1, x2, y2, z2]``
            continuous voxels of the scan the geometry describes.
        scores (np.ndarray): ``(N,)`` probabilities.
        grid (ScanGrid): the scan's geometry.
        instances (Sequence[dict]): ``CTVolumeDataset`` instances with
            ``center_world``, ``diameter_mm`` and ``ignore_flag``.
        settings (HardRegionSettings): the thresholds and the cap.
        where (str): the scan, for error messages.

    Returns:
        list[dict]: regions (:mod:`mmlesion.datasets.volumes.hard_regions`),
        hard negatives first by decreasing score, then hard positives.
    """
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 6)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(bboxes):
        raise ValueError(f'{where}: {len(bboxes)} boxes but {len(scores)} '
                         f'scores')
    world, diam = boxes_to_world_candidates(bboxes, *grid)
    inc, exc = [], []
    for k, inst in enumerate(instances):
        xyz, diameter, ignored = instance_finding(inst,
                                                  f'{where}, instance {k}')
        (exc if ignored else inc).append(('scan', xyz, diameter))
    match = match_luna16(
        LUNA16Candidates(np.array(['scan'] * len(scores), dtype=object),
                         world, scores),
        findings_of(inc), findings_of(exc), ['scan'],
        MatchSettings(max_marks=len(scores) + 1))

    def region(kind, score, xyz, diameter):
        zyx = world_to_voxel(np.asarray(xyz)[None], *grid)[0]
        return dict(kind=kind, score=float(score),
                    center_world=[float(v) for v in xyz],
                    center_voxel_zyx=[float(v) for v in zyx],
                    diameter_mm=float(diameter))

    neg = np.flatnonzero((match.outcome == MARK_FP) &
                         (scores >= settings.neg_score_thr))
    neg = neg[np.argsort(-scores[neg],
                         kind='stable')][:settings.max_negatives]
    regions = [
        region('hard_negative', scores[i], world[i], diam[i]) for i in neg
    ]
    best = np.maximum(match.nodule_prob, 0.0)  # -inf (missed) -> 0
    for k, (_, xyz, d) in enumerate(inc):
        if best[k] < settings.pos_score_thr:
            regions.append(region('hard_positive', best[k], xyz, d))
    return regions
