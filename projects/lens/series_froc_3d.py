# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS 3D FROC of per-series findings (continuous voxel boxes) against
per-series 3D truth (docs/protocols.md §2), as the LENS demo scores its
rows."""
import os.path as osp
from typing import Dict, Sequence

import numpy as np

from mmlesion.evaluation.functional.froc import (FROCCurve, match_detections,
                                                sens_at_fp)
from mmlesion.evaluation.functional.froc_3d import (LENS_FP_RATES,
                                                   LENS_IOBB_THR,
                                                   continuous_to_inclusive)
from mmlesion.structures.finding_3d import Finding3D


def froc_3d_curve(dets: Sequence[np.ndarray],
                  gts: Sequence[np.ndarray],
                  iou_thr: float = LENS_IOBB_THR,
                  overlap: str = 'iobb') -> FROCCurve:
    """Raw 3D FROC curve (FPs per sub-volume, sensitivity): the LENS hit
    walk (:func:`~mmlesion.evaluation.functional.froc.match_detections`
    with ``ndim=3``) over sub-volumes.

    Args:
        dets (Sequence[np.ndarray]): per sub-volume ``(N_i, 7)`` detections
            ``x1, y1, z1, x2, y2, z2, score`` (inclusive voxel indices).
        gts (Sequence[np.ndarray]): per sub-volume ``(M_i, 6)`` boxes.
        iou_thr (float): overlap threshold. Defaults to 0.3.
        overlap (str): ``'iobb'`` (default, the protocol) or ``'iou'``.

    Returns:
        FROCCurve: ``fps_per_image`` are FPs per sub-volume.
    """
    return match_detections(dets, gts, iou_thr, overlap, ndim=3).curve()


def lens_sensitivities(curve: FROCCurve,
                       fp_rates: Sequence[float] = LENS_FP_RATES
                       ) -> Dict[str, float]:
    """Sensitivity at each rate and their average (the headline).

    Args:
        curve (FROCCurve): from :func:`froc_3d_curve`.
        fp_rates (Sequence[float]): rates. Defaults to 1/8 .. 8.

    Returns:
        dict[str, float]: ``'sens@{r:g}'`` per rate and ``'average'``.
    """
    sens = sens_at_fp(curve, fp_rates)
    out = {f'sens@{float(r):g}': float(s) for r, s in zip(fp_rates, sens)}
    out['average'] = float(np.mean(sens))
    return out


def findings_to_dets(findings: Sequence[Finding3D]) -> np.ndarray:
    """Findings of :func:`stack_slice_boxes` -> ``(N, 7)`` continuous
    boxes + score."""
    return np.asarray([list(f.bbox_3d) + [f.score] for f in findings],
                      np.float64).reshape(-1, 7)


def _inclusive(boxes: np.ndarray) -> np.ndarray:
    """:func:`continuous_to_inclusive`, with a box thinner than one voxel
    kept as one voxel (x2 >= x1) instead of becoming invalid."""
    out = continuous_to_inclusive(boxes)
    if out.size:
        out[:, 3:6] = np.maximum(out[:, 3:6], out[:, 0:3])
    return out


def evaluate_3d(dets: Dict[str, np.ndarray],
                gts: Dict[str, np.ndarray]) -> Dict[str, float]:
    """LENS 3D FROC of per-series detections against per-series truth.

    Both are continuous voxel boxes; they are turned into the release's
    inclusive convention (:func:`continuous_to_inclusive`; a box thinner
    than one voxel becomes one voxel) before the hit walk, a series is a
    sub-volume.

    Returns:
        dict: ``sens@{rate}`` for 1/8..8 FPs per sub-volume, ``average``,
        ``lesions`` and ``findings``.
    """
    names = sorted(gts)
    d = [_inclusive(dets.get(n, np.zeros((0, 7)))) for n in names]
    g = [_inclusive(gts[n]) for n in names]
    out = lens_sensitivities(froc_3d_curve(d, g))
    out.update(lesions=int(sum(len(x) for x in g)),
               findings=int(sum(len(x) for x in d)))
    return out


def annotation_reference(dataset, gts: Dict[str, np.ndarray]
                         ) -> Dict[str, float]:
    """The evaluation's sanity reference: the CSV boxes of the evaluated
    key slices as detections one slice thick (score 1).

    It checks that the 3D truth and the detections share coordinates and
    shows the ceiling a key-slice-only annotation reaches: unannotated
    lesions are missed, and a padded 2D box of a small lesion can fall
    under IoBB 0.3 (the intersection is over the *detected* box).

    Args:
        dataset (DeepLesionDataset): the evaluated split.
        gts (dict): from
            :func:`projects.lens.lens_demo.demo_ground_truth_3d`.

    Returns:
        dict: as :func:`evaluate_3d`.
    """
    dets: Dict[str, list] = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        name = osp.basename(osp.normpath(info['series_dir']))
        k = int(info['key_slice'])
        for ins in info['instances']:
            x1, y1, x2, y2 = ins['bbox']
            dets.setdefault(name, []).append(
                [x1, y1, k - 0.5, x2, y2, k + 0.5, 1.])
    return evaluate_3d(
        {n: np.asarray(v, np.float64).reshape(-1, 7)
         for n, v in dets.items()}, gts)
