# Copyright (c) mmlesion contributors. All rights reserved.
"""Whether two runs found the same (:func:`compare_detections`): the
same kept boxes, within 0.5 px and 1e-3 of score, the backend's promise at
f32."""
from dataclasses import dataclass

import numpy as np

from ..results import SliceDetections


@dataclass(frozen=True)
class Agreement:
    """How closely two runs' 2D detections agree
    (:func:`compare_detections`).

    Args:
        slices (int): slices compared.
        boxes (int): boxes of the reference run.
        unmatched (int): boxes of either run without a partner of the same
            label in the other (a different kept set).
        box_px (float): the largest coordinate difference of a matched pair
            (pixels of the resampled slice).
        score (float): the largest score difference of a matched pair.
        box_tol (float): the box tolerance of :attr:`same`.
        score_tol (float): the score tolerance of :attr:`same`.
    """
    slices: int
    boxes: int
    unmatched: int
    box_px: float
    score: float
    box_tol: float = .5
    score_tol: float = 1e-3

    @property
    def same(self) -> bool:
        """The same findings: the same kept set, each box within
        ``box_tol`` px and its score within ``score_tol``."""
        return (self.unmatched == 0 and self.box_px <= self.box_tol
                and self.score <= self.score_tol)


def compare_detections(reference: SliceDetections, other: SliceDetections,
                       box_tol: float = .5,
                       score_tol: float = 1e-3) -> Agreement:
    """Pair each slice's boxes of two runs (per label, the pairing of the
    smallest largest coordinate difference: Hungarian) and give the worst
    differences.

    Args:
        reference (SliceDetections): e.g. eager torch's.
        other (SliceDetections): e.g. the backend's.
        box_tol (float): pixels. Defaults to 0.5.
        score_tol (float): Defaults to 1e-3.

    Returns:
        Agreement: unmatched boxes and the worst box and score differences.

    Raises:
        ValueError: the runs cover different numbers of slices.
    """
    from scipy.optimize import linear_sum_assignment
    if len(reference.boxes) != len(other.boxes):
        raise ValueError(f'{len(reference.boxes)} slices against '
                         f'{len(other.boxes)}')
    unmatched, total, box_px, score = 0, 0, 0., 0.
    for z in range(len(reference.boxes)):
        a_box, b_box = reference.boxes[z], other.boxes[z]
        total += len(a_box)
        a_lab, b_lab = reference.labels[z], other.labels[z]
        for label in set(a_lab.tolist()) | set(b_lab.tolist()):
            ia, ib = np.flatnonzero(a_lab == label), np.flatnonzero(
                b_lab == label)
            cost = np.abs(a_box[ia, None, :] - b_box[None, ib, :]).max(-1)
            rows, cols = linear_sum_assignment(cost)
            unmatched += len(ia) + len(ib) - 2 * len(rows)
            if len(rows):
                box_px = max(box_px, float(cost[rows, cols].max()))
                score = max(score, float(np.abs(
                    reference.scores[z][ia[rows]]
                    - other.scores[z][ib[cols]]).max()))
    return Agreement(len(reference.boxes), total, unmatched, box_px, score,
                     box_tol, score_tol)
