# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest

from mmlesion.evaluation.functional import ap_at_iou

A = [0., 0., 9., 9.]  # 10 x 10 px with the legacy + 1
B = [20., 20., 29., 29.]
FAR = [50., 50., 59., 59.]


def _dets(*rows):
    return np.array([list(box) + [score] for box, score in rows],
                    np.float64).reshape(-1, 5)


def test_hand_computed_voc_area_ap():
    """Sorted: TP 0.9, duplicate 0.8 (FP), FP 0.7, TP 0.6 on 3 lesions:
    recall 1/3 at precision 1, 2/3 at 1/2 -> AP = 1/3 + 1/3 * 1/2."""
    dets = [_dets((A, .9), (A, .8), (FAR, .7)), _dets((A, .6))]
    gts = [np.array([A, B]), np.array([A])]
    assert ap_at_iou(dets, gts) == pytest.approx(0.5)
    # an image whose detection hits an ignored lesion changes nothing
    dets.append(_dets((A, .95)))
    gts.append(np.zeros((0, 4)))
    ignore = [np.zeros((0, 4)), np.zeros((0, 4)), np.array([A])]
    assert ap_at_iou(dets, gts, ignore) == pytest.approx(0.5)
    # ... but without the ignore it is a first-ranked FP
    assert ap_at_iou(dets, gts) == pytest.approx(1 / 3 * 1 / 2 + 1 / 3 * 2 / 5)


def test_iou_threshold_and_legacy_widths():
    # IoU of [0, 0, 9, 9] and [0, 0, 9, 4]: 50 / 100 with + 1, 36 / 81 without
    dets = [_dets(([0., 0., 9., 4.], .9))]
    gts = [np.array([A])]
    assert ap_at_iou(dets, gts, iou_thr=0.5) == pytest.approx(1.0)
    assert ap_at_iou(
        dets, gts, iou_thr=0.5, use_legacy_coordinate=False) == 0.0


def test_empty_and_bad_input():
    assert ap_at_iou([np.zeros((0, 5))], [np.array([A])]) == 0.0
    assert ap_at_iou([_dets((A, .5))], [np.zeros((0, 4))]) == 0.0
    with pytest.raises(ValueError, match='2 images of detections'):
        ap_at_iou([np.zeros((0, 5))] * 2, [np.array([A])])
