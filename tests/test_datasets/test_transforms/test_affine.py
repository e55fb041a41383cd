# Copyright (c) mmlesion contributors. All rights reserved.
import random

import cv2
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks, PolygonMasks

from mmlesion.datasets.transforms import MultiSliceRandomAffine
from mmlesion.datasets.transforms.affine import (project_points,
                                                 warp_perspective_channels)


def _results(channels, h=64, w=80):
    rng = np.random.default_rng(0)
    img = rng.uniform(-1, 1, size=(h, w, channels)).astype(np.float32)
    boxes = np.array([[10., 10., 30., 20.], [50., 40., 70., 60.]],
                     np.float32)
    recists = np.array([[[10, 15], [30, 15], [20, 10], [20, 20]],
                        [[50, 50], [70, 50], [60, 40], [60, 60]]],
                       np.float32)
    masks = np.zeros((2, h, w), np.uint8)
    masks[0, 10:20, 10:30] = 1
    masks[1, 40:60, 50:70] = 1
    return dict(
        img=img,
        img_shape=(h, w),
        gt_bboxes=HorizontalBoxes(boxes),
        gt_bboxes_labels=np.array([0, 1]),
        gt_ignore_flags=np.array([False, True]),
        gt_recists=recists,
        gt_masks=BitmapMasks(masks, h, w))


@pytest.mark.parametrize('channels', [1, 3, 4, 5, 9])
def test_chunked_warp_matches_per_channel_warp(channels):
    img = np.random.default_rng(1).normal(size=(20, 24, channels)).astype(
        np.float32)
    matrix = np.array([[0.9, 0.1, 3], [-0.1, 1.1, -2], [0, 0, 1]],
                      np.float32)
    out = warp_perspective_channels(img, matrix, (30, 22), -5.)
    assert out.shape == (22, 30, channels)
    for c in range(channels):
        ref = cv2.warpPerspective(
            np.ascontiguousarray(img[..., c]), matrix, dsize=(30, 22),
            borderValue=(-5., ) * 4)
        np.testing.assert_array_equal(out[..., c], ref)


@pytest.mark.parametrize('channels', [3, 9])
def test_scaling_fills_every_channel_with_air(channels):
    t = MultiSliceRandomAffine(
        max_rotate_degree=0,
        max_translate_ratio=0,
        scaling_ratio_range=(0.5, 0.5),
        max_shear_degree=0)
    results = _results(channels)
    fill = float(results['img'].min())
    out = t(results)
    img = out['img']
    assert img.shape == (64, 80, channels) and img.dtype == np.float32
    # the bottom-right quarter is outside the shrunk image: border value
    assert (img[40:, 50:] == fill).all()
    np.testing.assert_allclose(out['gt_bboxes'].numpy(),
                               [[5, 5, 15, 10], [25, 20, 35, 30]])
    np.testing.assert_allclose(out['gt_recists'][1, 0], [25, 25])
    assert out['gt_masks'].masks.shape == (2, 64, 80)
    assert out['gt_masks'].masks[0].sum() == 50
    np.testing.assert_allclose(out['homography_matrix'],
                               np.diag([0.5, 0.5, 1]), atol=1e-6)
    t2 = MultiSliceRandomAffine(
        max_rotate_degree=0,
        max_translate_ratio=0,
        scaling_ratio_range=(0.5, 0.5),
        max_shear_degree=0,
        border_val=-1.)
    assert (t2(_results(channels))['img'][40:, 50:] == -1).all()


def test_random_affine_keeps_annotations_aligned():
    random.seed(3)  # mmdet's RandomAffine draws with `random`
    t = MultiSliceRandomAffine(
        max_rotate_degree=10,
        max_translate_ratio=0.1,
        scaling_ratio_range=(0.8, 1.2),
        max_shear_degree=5)
    for _ in range(5):
        results = _results(9)
        out = t(results)
        matrix = out['homography_matrix']
        n = len(out['gt_bboxes'])
        assert len(out['gt_bboxes_labels']) == n
        assert len(out['gt_ignore_flags']) == n
        assert out['gt_recists'].shape == (n, 4, 2)
        assert len(out['gt_masks']) == n
        # recists are the original ones projected with the recorded matrix
        # (labels 0 / 1 identify the kept instances)
        orig = _results(9)['gt_recists'][out['gt_bboxes_labels']]
        np.testing.assert_allclose(out['gt_recists'],
                                   project_points(orig, matrix), atol=1e-3)
        # boxes stay valid after projection and clipping
        boxes = out['gt_bboxes'].numpy()
        assert (boxes[:, 2:] >= boxes[:, :2]).all()


def test_instances_leaving_the_image_are_dropped_consistently():
    t = MultiSliceRandomAffine(
        max_rotate_degree=0,
        max_translate_ratio=0,
        scaling_ratio_range=(2.0, 2.0),
        max_shear_degree=0)
    out = t(_results(9))  # box 2 moves to x >= 100 > 80: dropped
    assert len(out['gt_bboxes']) == 1
    assert out['gt_bboxes_labels'].tolist() == [0]
    assert out['gt_ignore_flags'].tolist() == [False]
    assert out['gt_recists'].shape == (1, 4, 2)
    np.testing.assert_allclose(out['gt_recists'][0, 0], [20, 30])
    assert len(out['gt_masks']) == 1


def test_bad_border_and_polygon_masks():
    with pytest.raises(TypeError, match='border_val'):
        MultiSliceRandomAffine(border_val=(114, 114, 114))
    results = _results(3)
    results['gt_masks'] = PolygonMasks([[np.array([0., 0, 5, 0, 5, 5])]],
                                       64, 80)
    with pytest.raises(TypeError, match='BitmapMasks'):
        MultiSliceRandomAffine()(results)
