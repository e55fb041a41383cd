# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest
import torch

from mmlesion.datasets.transforms import PackVolumeDetInputs, RandomCrop3D


def _results(shape=(60, 80, 70)):
    img = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    boxes = np.array([[40., 50., 30., 46., 56., 36.],   # centre x43 y53 z33
                      [5., 5., 5., 9., 9., 9.]], np.float32)
    return dict(img=img, img_shape=shape, gt_bboxes=boxes,
                gt_bboxes_labels=np.array([0, 0]),
                gt_ignore_flags=np.array([False, True]), img_path='scan.mhd')


def test_positive_crop_contains_lesion_and_shifts_boxes():
    np.random.seed(0)
    t = RandomCrop3D(crop_size=32, pos_prob=1.0, margin=4)
    for _ in range(20):
        r = t(_results())
        assert r['img'].shape == (32, 32, 32)
        z, y, x = r['crop_origin_zyx']
        src = _results()['img']
        assert np.array_equal(r['img'], src[z:z + 32, y:y + 32, x:x + 32])
        # the non-ignored lesion is always in, >= margin from the faces
        first = r['gt_bboxes'][0]
        assert np.allclose(first, [40 - x, 50 - y, 30 - z, 46 - x, 56 - y,
                                   36 - z])
        ctr = (first[:3] + first[3:]) / 2
        assert (ctr >= 4).all() and (ctr <= 32 - 1 - 4).all()
        assert len(r['gt_bboxes']) == len(r['gt_bboxes_labels']) == len(
            r['gt_ignore_flags'])


def test_random_crop_drops_outside_boxes_and_pads():
    np.random.seed(1)
    t = RandomCrop3D(crop_size=(16, 100, 16), pos_prob=0.0, pad_value=-5)
    seen_empty = False
    for _ in range(20):
        r = t(_results())
        assert r['img'].shape == (16, 100, 16)
        assert (r['img'][:, 80:] == -5).all()  # y padded after the volume
        seen_empty |= len(r['gt_bboxes']) == 0
        for box in r['gt_bboxes']:
            ctr = (box[:3] + box[3:]) / 2
            assert (ctr >= -0.5).all() and (ctr < np.array([16, 100, 16]) -
                                            0.5).all()
    assert seen_empty
    with pytest.raises(ValueError, match='scan.mhd'):
        t(dict(_results(), img=np.zeros((4, 4))))


def test_pack_volume():
    r = _results((16, 16, 16))
    r.update(series_uid='1.2.3', spacing_zyx=(1., 1., 1.),
             origin_xyz=(0., 0., 0.), img_id='a')
    packed = PackVolumeDetInputs()(r)
    assert packed['inputs'].shape == (1, 16, 16, 16)
    assert torch.equal(packed['inputs'][0], torch.from_numpy(r['img']))
    sample = packed['data_samples']
    assert sample.gt_instances.bboxes.shape == (1, 6)
    assert sample.ignored_instances.bboxes.shape == (1, 6)
    assert sample.metainfo['series_uid'] == '1.2.3'
