# Copyright (c) mmlesion contributors. All rights reserved.
"""``slices_from_volume``, shared by both multi-slice loaders."""
import numpy as np

from mmlesion.datasets.transforms import (LoadDeepLesionSlices,
                                          LoadVolumeSlices)
from mmlesion.datasets.transforms import loading
from mmlesion.datasets.transforms.loading import slices_from_volume


def test_interpolated_and_clamped_channels():
    volume = np.arange(5, dtype=np.float32)[:, None, None] * np.ones(
        (1, 2, 3), np.float32) * 100
    img = slices_from_volume(volume, 2, [-2.5, -0.5, 0., 1.25, 9.], None)
    assert img.shape == (2, 3, 5) and img.dtype == np.float32
    assert img[0, 0].tolist() == [0., 150., 200., 325., 400.]
    img = slices_from_volume(volume, 2, [-1., 0., 1.], (120., 250.))
    assert img[0, 0].tolist() == [120., 200., 250.]


def test_both_loaders_take_the_same_channels():
    assert loading.slices_from_volume is slices_from_volume
    rng = np.random.default_rng(0)
    volume = rng.normal(0., 300., (9, 8, 8)).astype(np.float32)
    kw = dict(num_slices=3, interval_mm=2.0)
    a = LoadVolumeSlices(**kw)(dict(volume=volume, key_slice=4,
                                    slice_interval=1.5))['img']
    b = LoadDeepLesionSlices(**kw)(dict(volume=volume, key_slice=4,
                                        slice_interval=1.5))['img']
    np.testing.assert_array_equal(a, b)
