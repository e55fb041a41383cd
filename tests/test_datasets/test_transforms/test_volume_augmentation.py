# Copyright (c) mmlesion contributors. All rights reserved.
"""3D augmentation: boxes follow the voxels they enclose."""
import numpy as np
import pytest

from mmlesion.datasets.transforms import (RandomFlip3D, RandomRot90Axial,
                                          RandomZoom3D)
from mmlesion.datasets.transforms.volume_flip_rot import rot90_axial


def _block_volume(shape=(20, 24, 24)):
    """A volume with two bright blocks and their exact boxes."""
    img = np.zeros(shape, np.float32)
    blocks = [((3, 6), (4, 10), (15, 20)), ((11, 17), (14, 21), (2, 7))]
    boxes = []
    for (z0, z1), (y0, y1), (x0, x1) in blocks:
        img[z0:z1, y0:y1, x0:x1] = 1.
        # voxels a..b-1 span [a - 0.5, b - 0.5]
        boxes.append([x0 - .5, y0 - .5, z0 - .5, x1 - .5, y1 - .5, z1 - .5])
    return img, np.array(boxes, np.float32)


def _voxel_box(img, box, thr=0.5):
    """Box of the bright voxels inside ``box`` (continuous coordinates)."""
    x1, y1, z1, x2, y2, z2 = box
    sub = np.zeros_like(img, bool)
    sub[int(np.ceil(z1)):int(np.floor(z2)) + 1,
        int(np.ceil(y1)):int(np.floor(y2)) + 1,
        int(np.ceil(x1)):int(np.floor(x2)) + 1] = True
    idx = np.argwhere((img > thr) & sub)
    lo, hi = idx.min(0) - .5, idx.max(0) + .5
    return np.concatenate([lo[::-1], hi[::-1]])


def _results(img, boxes):
    return dict(img=img.copy(), img_shape=img.shape, gt_bboxes=boxes.copy(),
                gt_bboxes_labels=np.zeros(len(boxes), np.int64),
                gt_ignore_flags=np.array([False, True]))


@pytest.mark.parametrize('seed', range(6))
def test_flips_boxes_follow_voxels(seed):
    np.random.seed(seed)
    img, boxes = _block_volume()
    out = RandomFlip3D(prob=0.5)(_results(img, boxes))
    for box in out['gt_bboxes']:
        np.testing.assert_allclose(_voxel_box(out['img'], box), box)
    np.testing.assert_array_equal(
        out['img'], np.flip(img, out['flip_axes']) if out['flip_axes']
        else img)
    assert out['gt_ignore_flags'].tolist() == [False, True]


@pytest.mark.parametrize('k', range(4))
def test_rot90_matches_numpy_and_boxes_follow(k):
    img, boxes = _block_volume()
    rot, rboxes = rot90_axial(img, boxes, k)
    np.testing.assert_array_equal(rot, np.rot90(img, k, axes=(1, 2)))
    for box in rboxes:
        np.testing.assert_allclose(_voxel_box(rot, box), box)
    # the transform: uniform k, non-square crops only half turns
    ks = set()
    for seed in range(40):
        np.random.seed(seed)
        ks.add(RandomRot90Axial()(_results(img, boxes))['rot90_k'])
    assert ks == {0, 1, 2, 3}
    flat = np.zeros((4, 6, 8), np.float32)
    for seed in range(20):
        np.random.seed(seed)
        out = RandomRot90Axial()(dict(img=flat, gt_bboxes=np.zeros((0, 6))))
        assert out['rot90_k'] in (0, 2) and out['img'].shape == (4, 6, 8)


@pytest.mark.parametrize('scale', [0.9, 1.0, 1.1, 1.25])
def test_zoom_boxes_follow_voxels_and_size_is_kept(scale):
    img, boxes = _block_volume((32, 32, 32))
    boxes = boxes + 4  # away from the borders that zooming in cuts
    img = np.roll(img, 4, axis=(0, 1, 2))
    out = RandomZoom3D(scale_range=(scale, scale), pad_value=-1.)(
        _results(img, boxes))
    assert out['img'].shape == img.shape and out['zoom_factor'] == scale
    assert len(out['gt_bboxes']) == 2
    for box, ref in zip(out['gt_bboxes'], boxes):
        # trilinear edges: the bright voxels lie within half a voxel
        np.testing.assert_allclose(_voxel_box(out['img'], box), box,
                                   atol=0.5 + 1e-6)
        np.testing.assert_allclose(box[3:] - box[:3],
                                   (ref[3:] - ref[:3]) * scale, rtol=0.05)
    if scale < 1:
        assert out['img'][0, 0, 0] == -1.  # padded with pad_value


def test_zoom_drops_boxes_that_leave():
    img = np.zeros((20, 20, 20), np.float32)
    box = np.array([[0., 0., 0., 2., 2., 2.]], np.float32)
    res = dict(img=img, gt_bboxes=box, gt_bboxes_labels=np.zeros(1, int),
               gt_ignore_flags=np.zeros(1, bool))
    out = RandomZoom3D(scale_range=(1.3, 1.3))(res)
    assert len(out['gt_bboxes']) == 0 and len(out['gt_ignore_flags']) == 0
    with pytest.raises(ValueError, match='scale_range'):
        RandomZoom3D(scale_range=(1.1, 0.9))
