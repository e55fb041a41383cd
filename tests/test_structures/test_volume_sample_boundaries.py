# Copyright (c) mmlesion contributors. All rights reserved.
"""The test ``DetDataSample`` of a volume
(:mod:`mmlesion.structures.volume_sample`): its metadata, no boxes by
default, boxes of any array-like reshaped to ``(n, 6)`` float32 with label
0 (docs/mutation_testing.md)."""
import numpy as np
import torch

from mmlesion.structures.volume_sample import volume_sample


def test_metadata_is_a_unit_volume_at_the_origin():
    sample = volume_sample([8, 16, 32])
    assert sample.metainfo == dict(img_shape=(8, 16, 32), series_uid='test',
                                   spacing_zyx=(1., 1., 1.),
                                   origin_xyz=(0., 0., 0.))


def test_no_boxes_by_default():
    gt = volume_sample((4, 4, 4)).gt_instances
    assert gt.bboxes.shape == (0, 6) and gt.bboxes.dtype == torch.float32
    assert gt.labels.shape == (0, ) and gt.labels.dtype == torch.long


def test_boxes_of_any_array_like_become_n_by_6_float32():
    one = volume_sample((4, 4, 4), [1, 2, 3, 4, 5, 6]).gt_instances
    assert one.bboxes.dtype == torch.float32
    assert one.bboxes.tolist() == [[1., 2., 3., 4., 5., 6.]]
    assert one.labels.tolist() == [0] and one.labels.dtype == torch.long
    two = volume_sample((4, 4, 4),
                        np.arange(12, dtype=np.float64)).gt_instances
    assert two.bboxes.dtype == torch.float32
    assert two.bboxes.tolist() == [[0., 1., 2., 3., 4., 5.],
                                   [6., 7., 8., 9., 10., 11.]]
    assert two.labels.tolist() == [0, 0]
