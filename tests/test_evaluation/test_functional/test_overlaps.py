# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest
from mmdet.evaluation.functional import bbox_overlaps

from projects.benchmarks.froc_reference import reference_overlaps
from tests.helpers.legacy_overlaps import (aligned_legacy_overlaps,
                                           legacy_bbox_overlaps)


def _random_boxes(rng, n):
    xy = rng.uniform(0, 100, size=(n, 2))
    wh = rng.uniform(0, 40, size=(n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    boxes[::2] = np.round(boxes[::2])
    return boxes


def test_legacy_iou_hand_worked():
    det = np.array([[0., 0., 9., 9.]])  # 10 x 10 pixels
    gts = np.array([
        [5., 5., 14., 14.],  # 5 x 5 overlap: 25 / (100 + 100 - 25)
        [0., 0., 19., 9.],  # 100 / 200, exactly the threshold
        [10., 10., 20., 20.],  # touching corners only: no pixel shared
        [9., 9., 9., 9.],  # a single pixel inside: 1 / 100
    ])
    iou = legacy_bbox_overlaps(det, gts)
    assert iou.shape == (1, 4)
    assert iou.dtype == np.float64
    np.testing.assert_allclose(iou[0], [25 / 175, 0.5, 0.0, 1 / 100])
    assert iou[0, 1] == 0.5


def test_iobb_differs_from_iou():
    small = np.array([[10., 10., 19., 19.]])  # 100 px
    big = np.array([[0., 0., 39., 39.]])  # 1600 px
    # small detection inside a big lesion: IoBB 1, IoU 1/16
    assert legacy_bbox_overlaps(small, big, 'iobb')[0, 0] == 1.0
    assert legacy_bbox_overlaps(small, big, 'iou')[0, 0] == 100 / 1600
    # big detection around a small lesion: IoBB divides by the detection
    assert legacy_bbox_overlaps(big, small, 'iobb')[0, 0] == 100 / 1600
    # IoBB is not symmetric, IoU is
    assert legacy_bbox_overlaps(big, small, 'iou')[0, 0] == 100 / 1600


def test_empty_inputs():
    boxes = np.array([[0., 0., 1., 1.]])
    assert legacy_bbox_overlaps(np.zeros((0, 4)), boxes).shape == (0, 1)
    assert legacy_bbox_overlaps(boxes, np.zeros((0, 4))).shape == (1, 0)
    assert legacy_bbox_overlaps([], []).shape == (0, 0)
    assert aligned_legacy_overlaps(np.zeros((0, 4)),
                                   np.zeros((0, 4))).shape == (0, )


def test_bad_input():
    boxes = np.zeros((2, 4))
    with pytest.raises(ValueError, match='overlap mode'):
        legacy_bbox_overlaps(boxes, boxes, mode='iof')
    with pytest.raises(ValueError, match=r'shape \(N, 4\)'):
        legacy_bbox_overlaps(np.zeros((2, 5)), boxes)
    with pytest.raises(ValueError, match='same number'):
        aligned_legacy_overlaps(boxes, np.zeros((3, 4)))


@pytest.mark.parametrize('mode', ['iou', 'iobb'])
def test_matrix_equals_reference_bitwise(mode):
    rng = np.random.default_rng(0)
    dets = _random_boxes(rng, 40)
    gts = _random_boxes(rng, 7)
    mat = legacy_bbox_overlaps(dets, gts, mode)
    for i, det in enumerate(dets):
        # identical arithmetic to the reference IOU / IOBB of MULAN
        assert np.array_equal(mat[i], reference_overlaps(det, gts, mode))
    pairs = aligned_legacy_overlaps(dets[:7], gts, mode)
    assert np.array_equal(pairs, np.diag(mat[:7]))


@pytest.mark.parametrize('mode,mmdet_mode', [('iou', 'iou'),
                                             ('iobb', 'iof')])
def test_agrees_with_mmdet_to_float32_precision(mode, mmdet_mode):
    rng = np.random.default_rng(1)
    dets = _random_boxes(rng, 30)
    gts = _random_boxes(rng, 5)
    ours = legacy_bbox_overlaps(dets, gts, mode)
    theirs = bbox_overlaps(
        dets, gts, mode=mmdet_mode, use_legacy_coordinate=True)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_mmdet_float32_cast_flips_a_threshold_decision():
    """Why mmdet's bbox_overlaps is not reused: it computes in float32."""
    det = np.array([[0., 0., 9., 9.]])
    gt = np.array([[0., 0., 19. + 1e-9, 9.]])
    ours = legacy_bbox_overlaps(det, gt)[0, 0]
    theirs = bbox_overlaps(det, gt, use_legacy_coordinate=True)[0, 0]
    assert ours < 0.5  # the reference (float64) calls this a miss
    assert theirs == 0.5  # float32 rounds the box and calls it a hit
    assert ours == reference_overlaps(det[0], gt)[0]
