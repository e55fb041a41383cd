# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest
from mmdet.datasets.transforms import Resize
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from mmlesion.datasets import DeepLesionDataset
from mmlesion.datasets.transforms import (ClipBlackBorder, ResampleToSpacing,
                                          WindowHU)
from mmlesion.testing import shared_data_root


def _results(h=100, w=120, channels=3, spacing=0.4):
    img = np.full((h, w, channels), -1024., np.float32)
    img[20:80, 30:90] = 40.  # body
    img[95:97, 5:115] = 300.  # thin table line, removed by the opening
    boxes = np.array([[40., 30., 60., 50.], [70., 60., 80., 70.]], np.float32)
    recists = np.array([[[40, 40], [60, 40], [50, 30], [50, 50]],
                        [[70, 65], [80, 65], [75, 60], [75, 70]]],
                       np.float32)
    masks = np.zeros((2, h, w), np.uint8)
    masks[0, 30:50, 40:60] = 1
    masks[1, 60:70, 70:80] = 1
    return dict(
        img=img,
        img_shape=(h, w),
        ori_shape=(h, w),
        spacing=spacing,
        gt_bboxes=HorizontalBoxes(boxes),
        gt_bboxes_labels=np.zeros(2, np.int64),
        gt_ignore_flags=np.zeros(2, bool),
        gt_recists=recists,
        gt_masks=BitmapMasks(masks, h, w))


# ------------------------------------------------------- ResampleToSpacing
@pytest.mark.parametrize('channels', [3, 9])
def test_resample_to_spacing(channels):
    results = _results(channels=channels)
    out = ResampleToSpacing(spacing=0.8)(results)
    assert out['img'].shape == (50, 60, channels)
    assert out['img'].dtype == np.float32
    assert out['img_shape'] == (50, 60)
    assert out['scale_factor'] == (0.5, 0.5)
    assert out['ori_shape'] == (100, 120)
    np.testing.assert_allclose(out['gt_bboxes'].numpy(),
                               [[20, 15, 30, 25], [35, 30, 40, 35]])
    np.testing.assert_allclose(out['gt_recists'][0],
                               [[20, 20], [30, 20], [25, 15], [25, 25]])
    assert out['gt_masks'].height == 50 and out['gt_masks'].width == 60
    assert out['gt_masks'].masks[0].sum() == 100
    np.testing.assert_allclose(out['homography_matrix'],
                               np.diag([0.5, 0.5, 1]))


def test_resample_composes_with_resize_and_maps_back():
    results = _results(spacing=0.7)
    original = results['gt_bboxes'].numpy().copy()
    results = Resize(scale=(60, 50), keep_ratio=True)(results)
    assert results['scale_factor'] == (0.5, 0.5)
    # now 1.4 mm/px; to 0.8 mm/px: x 1.75 of the resized image
    out = ResampleToSpacing(spacing=0.8)(results)
    assert out['img_shape'] == (88, 105)
    sf = np.array(out['scale_factor'])
    np.testing.assert_allclose(sf, [105 / 120, 88 / 100], rtol=1e-6)
    # mmdet's test-time rescale divides by scale_factor: back to original
    back = out['gt_bboxes'].numpy() / np.tile(sf, 2)
    np.testing.assert_allclose(back, original, rtol=1e-5)
    # homography maps original points to the current image
    pts = np.array([[40., 30., 1.]]) @ out['homography_matrix'].T
    np.testing.assert_allclose(pts[0, :2], out['gt_bboxes'].numpy()[0, :2],
                               rtol=1e-5)
    # ResampleToSpacing twice is idempotent (already at 0.8 mm/px)
    again = ResampleToSpacing(spacing=0.8)(out)
    assert again['img_shape'] == (88, 105)


def test_resample_requires_spacing_and_numpy_boxes():
    results = _results()
    results['gt_bboxes'] = results['gt_bboxes'].numpy()  # plain ndarray
    out = ResampleToSpacing(spacing=0.8)(results)
    assert isinstance(out['gt_bboxes'], np.ndarray)
    np.testing.assert_allclose(out['gt_bboxes'][0], [20, 15, 30, 25])
    with pytest.raises(ValueError, match="x.png.*'spacing'"):
        ResampleToSpacing()(dict(img=np.zeros((4, 4, 3), np.float32),
                                 img_path='x.png'))
    with pytest.raises(ValueError):
        ResampleToSpacing(spacing=0)


# --------------------------------------------------------- ClipBlackBorder
@pytest.mark.parametrize('channels', [3, 9])
def test_clip_black_border(channels):
    out = ClipBlackBorder()(_results(channels=channels))
    # body rows 20..79, cols 30..89; the 2-px table line is opened away
    assert out['img'].shape == (60, 60, channels)
    assert out['img_shape'] == (60, 60)
    assert out['crop_offset'] == (30.0, 20.0)
    np.testing.assert_allclose(out['gt_bboxes'].numpy(),
                               [[10, 10, 30, 30], [40, 40, 50, 50]])
    np.testing.assert_allclose(out['gt_recists'][1, 0], [40, 45])
    assert out['gt_masks'].masks.shape == (2, 60, 60)
    assert out['gt_masks'].masks[0, 10:30, 10:30].all()
    assert (out['img'] == 40).all()
    # predictions in the crop + crop_offset = original coordinates
    np.testing.assert_allclose(
        out['gt_bboxes'].numpy()[0] + np.tile(out['crop_offset'], 2),
        [40, 30, 60, 50])
    np.testing.assert_allclose(
        out['homography_matrix'],
        [[1, 0, -30], [0, 1, -20], [0, 0, 1]])


def test_clip_after_window_margin_and_annotations():
    windowed = WindowHU()(_results())
    out = ClipBlackBorder(margin=2)(windowed)
    assert out['crop_offset'] == (28.0, 18.0)
    assert out['img_shape'] == (64, 64)
    # a box outside the body widens the crop so that it is kept
    results = _results()
    results['gt_bboxes'] = HorizontalBoxes(
        np.array([[5., 10., 15., 20.]], np.float32))
    results['gt_recists'] = results['gt_recists'][:1] * 0 + 10
    results['gt_masks'] = results['gt_masks'][[0]]
    out = ClipBlackBorder()(results)
    assert out['crop_offset'] == (5.0, 10.0)
    np.testing.assert_allclose(out['gt_bboxes'].numpy(), [[0, 0, 10, 10]])
    kept = ClipBlackBorder(keep_annotations=False)(_results())
    assert kept['crop_offset'] == (30.0, 20.0)


def test_clip_empty_mask_and_offset_in_original_pixels():
    results = _results()
    results['img'][:] = -1024
    out = ClipBlackBorder()(results)
    assert out['img_shape'] == (100, 120) and out['crop_offset'] == (0, 0)
    # after a resize the offset is recorded in original pixels
    results = _results()
    del results['gt_recists']  # mmdet's Resize does not rescale them
    results = Resize(scale_factor=2.0, keep_ratio=True)(results)
    original = np.array([40., 30., 60., 50.])
    out = ClipBlackBorder()(results)
    # bilinear upsampling blurs the body edge by half an original pixel
    np.testing.assert_allclose(out['crop_offset'], (30.0, 20.0), atol=0.5)
    sf = np.tile(out['scale_factor'], 2)
    back = out['gt_bboxes'].numpy()[0] / sf + np.tile(out['crop_offset'], 2)
    np.testing.assert_allclose(back, original, atol=1e-4)


def test_clip_and_resample_real_key_slice():
    root = shared_data_root()
    if root is None or not (root / 'deeplesion' / 'Images_png').is_dir():
        pytest.skip('shared DeepLesion data ($MMLESION_SHARED_DATA/deeplesion) is '
                    'not available')
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    ds = DeepLesionDataset(
        data_root=str(root / 'deeplesion'),
        ann_file='annotations/DL_info_test.csv',
        skip_missing_key_slices=True,
        serialize_data=False,
        indices=[0, 1, 2],
        pipeline=[
            dict(type='LoadDeepLesionSlices', num_slices=3),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='LoadRecistPoints'),
            dict(type='ClipBlackBorder'),
            dict(type='ResampleToSpacing', spacing=0.8),
            dict(type='WindowHU'),
        ])
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        out = ds[i]
        h, w = out['img_shape']
        # the body is smaller than the 512 x 512 field of view
        assert h * w < 512 * 512 * (info['spacing'] / 0.8)**2
        box = out['gt_bboxes'].numpy()
        assert (box[:, :2] >= 0).all() and (box[:, 2] <= w).all()
        assert (box[:, 3] <= h).all()
        sf = np.tile(out['scale_factor'], 2)
        back = box / sf + np.tile(out['crop_offset'], 2)
        np.testing.assert_allclose(
            back, [ins['bbox'] for ins in info['instances']], atol=1e-3)
        recist_back = out['gt_recists'] / np.array(out['scale_factor']) + \
            np.array(out['crop_offset'])
        np.testing.assert_allclose(
            recist_back, [ins['recist'] for ins in info['instances']],
            atol=1e-3)
