# Copyright (c) mmlesion contributors. All rights reserved.
"""Stack a scan's 2D boxes into 3D findings (:func:`stack_findings`;
docs/protocols.md §2), mapped to the original scan's voxels and to world
coordinates. A multi-type model's finding gets the DeepLesion coarse
lesion type (Yan et al. 2018) with the largest summed score over its 2D
boxes (the stacking itself ignores labels).
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from mmlesion.datasets.deeplesion.dl_info import COARSE_LESION_TYPES
from mmlesion.datasets.volumes import CTVolume, resample_boxes_3d
from mmlesion.evaluation.functional.box_stacking import stack_slice_boxes
from mmlesion.structures.finding_3d import findings_by_score

from .results import Box2D, Candidates, Finding
from .settings import DetectionSettings, FindingRescorer


@dataclass
class StackedFindings:
    """The findings of :func:`stack_findings`.

    Args:
        kept (list[Finding]): those kept at the operating point.
        candidates (Candidates): every one, as arrays.
    """
    kept: List[Finding]
    candidates: Candidates


def stack_findings(boxes: Sequence[np.ndarray],
                   scores: Sequence[np.ndarray],
                   resampled: CTVolume,
                   volume: CTVolume,
                   detection: Optional[DetectionSettings] = None,
                   rescorer: Optional[FindingRescorer] = None
                   ) -> StackedFindings:
    """The 3D findings of a scan's 2D boxes: those kept at
    ``detection.keep_thr`` and every candidate.

    Args:
        boxes (Sequence[np.ndarray]): per resampled slice its (n, 4) boxes
            in continuous voxels (:func:`~mmlesion.apis.whole_scan.detect.
            detect_slices`).
        scores (Sequence[np.ndarray]): per slice the (n,) scores.
        resampled (CTVolume): the volume the boxes are on.
        volume (CTVolume): the original scan.
        detection (DetectionSettings, optional): the stacking's settings
            and ``keep_thr`` (a finding is kept where its best 2D box's
            detector score reaches it, re-scored or not; None: every one).
            Defaults to ``DetectionSettings()``.
        rescorer (FindingRescorer, optional): re-scores the findings
            (loaded).

    Returns:
        StackedFindings: the kept findings (by decreasing score, ``id``
        their rank among every candidate; without ``recist`` and
        ``lesion_type``: :mod:`~mmlesion.apis.whole_scan.measure`,
        :func:`add_lesion_types`) and every candidate.
    """
    d = detection or DetectionSettings()
    stacked = stack_slice_boxes(list(range(len(boxes))), boxes, scores,
                                d.stack_settings())
    if rescorer is not None:
        stacked = findings_by_score(
            rescorer.rescore(stacked, resampled, d.show_progress))
    # every candidate's boxes at once; a Finding only for the kept ones
    boxes_rs = np.array([f.bbox_3d for f in stacked]).reshape(-1, 6)
    boxes_orig = resample_boxes_3d(boxes_rs, resampled, volume)
    world_boxes = _world_box(resampled, boxes_rs)
    centres = resampled.voxel_to_world(
        np.stack([(boxes_rs[:, 2] + boxes_rs[:, 5]) / 2,
                  (boxes_rs[:, 1] + boxes_rs[:, 4]) / 2,
                  (boxes_rs[:, 0] + boxes_rs[:, 3]) / 2],
                 axis=1)) if len(boxes_rs) else np.zeros((0, 3))
    candidates = Candidates(centres, np.array(
        [round(f.score, 6) for f in stacked], np.float64))
    sz, sy, sx = resampled.spacing_zyx
    out = []
    for i, f in enumerate(stacked):
        if d.keep_thr is not None and round(
                f.score if d.keep_on == 'finding' else
                max(s for _, _, s in f.boxes_2d), 6) < d.keep_thr:
            continue
        b = boxes_rs[i]
        ob = boxes_orig[i]
        side_mm = round(float(max((b[3] - b[0]) * sx, (b[4] - b[1]) * sy)),
                        2)
        out.append(Finding(
            id=i + 1, score=round(f.score, 6),
            score_parts={k: round(v, 6) for k, v in f.score_parts.items()},
            center_world=[round(float(v), 3) for v in centres[i]],
            bbox_world=[round(float(v), 3) for v in world_boxes[i]],
            bbox_voxel=[round(float(v), 3) for v in ob],
            bbox_voxel_resampled=[round(float(v), 3) for v in b],
            largest_box_side_mm=side_mm,
            slice_range=list(f.slice_range), key_slice=f.key_slice,
            slice_range_original=[
                max(int(np.floor(ob[2] + .5)), 0),
                min(int(np.ceil(ob[5] - .5)), volume.shape_zyx[0] - 1)
            ],
            boxes_2d=[Box2D(slice=z, bbox=[round(v, 3) for v in box],
                            score=round(s, 6))
                      for z, box, s in f.boxes_2d]))
    return StackedFindings(out, candidates)


def _world_box(volume: CTVolume, boxes: np.ndarray) -> np.ndarray:
    """World axis-aligned [xmin, ymin, zmin, xmax, ymax, zmax] of boxes."""
    if not len(boxes):
        return np.zeros((0, 6))
    x1, y1, z1, x2, y2, z2 = np.asarray(boxes, np.float64).T
    corners = np.stack([
        np.stack([z, y, x], axis=1) for z in (z1, z2) for y in (y1, y2)
        for x in (x1, x2)
    ], axis=1)  # (N, 8, 3)
    world = volume.voxel_to_world(corners.reshape(-1, 3)).reshape(-1, 8, 3)
    return np.concatenate([world.min(1), world.max(1)], axis=1)


def lesion_type_classes(model) -> Optional[List[str]]:
    """The model's classes (``dataset_meta``) by label if they are
    DeepLesion lesion types, else None."""
    meta = getattr(model, 'dataset_meta', None) or {}
    classes = [str(c) for c in (meta.get('classes') or ())]
    if len(classes) > 1 and set(classes) <= set(COARSE_LESION_TYPES):
        return classes
    return None


def add_lesion_types(findings: List[Finding],
                     slice_boxes: Sequence[np.ndarray],
                     slice_labels: Sequence[np.ndarray],
                     classes: Sequence[str],
                     tol: float = 1e-2) -> None:
    """Set every finding's ``lesion_type`` (in place; see the module
    doc).

    Args:
        findings (list[Finding]): findings with their ``boxes_2d``
            (:class:`~mmlesion.apis.whole_scan.results.Box2D`, as
            stacked).
        slice_boxes (Sequence[np.ndarray]): per slice the (n, 4) boxes the
            findings were stacked from.
        slice_labels (Sequence[np.ndarray]): per slice their (n,) labels.
        classes (Sequence[str]): class name of each label.
        tol (float): largest coordinate difference of a matching box (the
            findings' boxes are rounded).

    Raises:
        ValueError: a 2D box of a finding is not among its slice's boxes.
    """
    for f in findings:
        votes = np.zeros(len(classes))
        for item in f.boxes_2d:
            z = item.slice
            boxes = np.asarray(slice_boxes[z]).reshape(-1, 4)
            diff = np.abs(boxes - np.asarray(item.bbox)).max(1) \
                if len(boxes) else np.zeros(0)
            if not len(diff) or diff.min() > tol:
                raise ValueError(f'finding {f.id}: its box {item.bbox}'
                                 f' is not a detection of slice {z}')
            votes[int(slice_labels[z][int(np.argmin(diff))])] += item.score
        f.lesion_type = classes[int(np.argmax(votes))]
