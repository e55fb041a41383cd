# Copyright (c) mmlesion contributors. All rights reserved.
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
    # shrunk about the centre (40, 32): the image covers x 20..60, y 16..48;
    # the border around it is air
    assert (img[:15] == fill).all() and (img[49:] == fill).all()
    assert (img[:, :19] == fill).all() and (img[:, 61:] == fill).all()
    np.testing.assert_allclose(out['gt_bboxes'].numpy(),
                               [[25, 21, 35, 26], [45, 36, 55, 46]])
    np.testing.assert_allclose(out['gt_recists'][1, 0], [45, 41])
    assert out['gt_masks'].masks.shape == (2, 64, 80)
    assert out['gt_masks'].masks[0].sum() == 50
    np.testing.assert_allclose(
        out['homography_matrix'],
        [[0.5, 0, 20], [0, 0.5, 16], [0, 0, 1]], atol=1e-6)
    t2 = MultiSliceRandomAffine(
        max_rotate_degree=0,
        max_translate_ratio=0,
        scaling_ratio_range=(0.5, 0.5),
        max_shear_degree=0,
        border_val=-1.)
    assert (t2(_results(channels))['img'][49:, 61:] == -1).all()


def test_random_affine_keeps_annotations_aligned():
    np.random.seed(3)  # mmdet's RandomAffine draws with numpy.random
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
    results = _results(9)
    # box 1 moves to x 40 + 2 * (2 - 40) = -36 .. -16 (outside): dropped
    results['gt_bboxes'] = HorizontalBoxes(
        np.array([[2., 10., 12., 20.], [50., 40., 70., 60.]], np.float32))
    out = t(results)
    assert len(out['gt_bboxes']) == 1
    assert out['gt_bboxes_labels'].tolist() == [1]
    assert out['gt_ignore_flags'].tolist() == [True]
    assert out['gt_recists'].shape == (1, 4, 2)
    np.testing.assert_allclose(out['gt_recists'][0, 0], [60, 68])
    assert len(out['gt_masks']) == 1


def test_bad_border_and_polygon_masks():
    with pytest.raises(TypeError, match='border_val'):
        MultiSliceRandomAffine(border_val=(114, 114, 114))
    results = _results(3)
    results['gt_masks'] = PolygonMasks([[np.array([0., 0, 5, 0, 5, 5])]],
                                       64, 80)
    with pytest.raises(TypeError, match='BitmapMasks'):
        MultiSliceRandomAffine()(results)


def _blob(h=64, w=80, cx=20.0, cy=15.0, sigma=3.0):
    """Gaussian blob centred at (cx, cy) in box coordinates (pixel i spans
    [i, i + 1], so its centre is at i + 0.5)."""
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    g = np.exp(-((xs - cx)**2 + (ys - cy)**2) / (2 * sigma**2))
    return np.repeat(g[..., None], 3, axis=2).astype(np.float32)


def _centroid(img):
    """Intensity centroid in box coordinates."""
    w = img[..., 0].astype(np.float64)
    ys, xs = np.mgrid[0:w.shape[0], 0:w.shape[1]] + 0.5
    return np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])


@pytest.mark.parametrize(
    'kwargs', [
        dict(max_rotate_degree=10.),
        dict(scaling_ratio_range=(0.9, 0.9)),
        dict(scaling_ratio_range=(1.1, 1.1)),
        dict(max_shear_degree=5.73),
        dict(max_rotate_degree=5.73, max_shear_degree=5.73,
             scaling_ratio_range=(0.9, 1.1)),
    ])
def test_centre_stays_fixed_and_boxes_follow_the_image(kwargs):
    """Improved RetinaNet Sec. 3.1 augmentation about the image centre
    (mmdet's RandomAffine turns about the top-left corner)."""
    args = dict(
        max_rotate_degree=0.,
        max_translate_ratio=0.,
        scaling_ratio_range=(1., 1.),
        max_shear_degree=0.,
        border_val=0.)
    args.update(kwargs)
    t = MultiSliceRandomAffine(**args)
    h, w = 64, 80
    for seed in range(3):
        np.random.seed(seed)  # mmdet draws with numpy.random
        # a blob at the image centre does not move
        out = t(dict(img=_blob(h, w, w / 2, h / 2), img_shape=(h, w)))
        matrix = out['homography_matrix']
        np.testing.assert_allclose(
            project_points(np.array([[w / 2, h / 2]]), matrix)[0],
            [w / 2, h / 2], atol=1e-4)
        np.testing.assert_allclose(_centroid(out['img']), [w / 2, h / 2],
                                   atol=0.05)
        assert not np.allclose(matrix, np.eye(3), atol=1e-3)
        # an off-centre lesion: its box follows the image content
        box = np.array([[14., 9., 26., 21.]], np.float32)
        out = t(
            dict(
                img=_blob(h, w, 20., 15.),
                img_shape=(h, w),
                gt_bboxes=HorizontalBoxes(box),
                gt_bboxes_labels=np.array([0]),
                gt_ignore_flags=np.array([False])))
        moved = project_points(
            np.array([[20., 15.]]), out['homography_matrix'])[0]
        assert np.linalg.norm(moved - [20., 15.]) > 0.3
        np.testing.assert_allclose(_centroid(out['img']), moved, atol=0.05)
        new_box = out['gt_bboxes'].numpy()[0]
        np.testing.assert_allclose((new_box[:2] + new_box[2:]) / 2, moved,
                                   atol=1e-3)


def test_translation_is_the_only_displacement_of_the_centre():
    np.random.seed(0)  # mmdet draws with numpy.random
    t = MultiSliceRandomAffine(
        max_rotate_degree=10.,
        max_translate_ratio=0.1,
        scaling_ratio_range=(0.9, 1.1),
        max_shear_degree=5.73)
    h, w = 512, 512
    for _ in range(20):
        out = t(dict(img=np.zeros((h, w, 3), np.float32), img_shape=(h, w)))
        centre = project_points(
            np.array([[w / 2, h / 2]]), out['homography_matrix'])[0]
        # at most 10 % of the size (mmdet: up to 125 px for these ranges)
        assert np.all(np.abs(centre - 256) <= 0.1 * 512 + 1e-3)
