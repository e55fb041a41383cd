# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest

from mmlesion.datasets.volumes import (CTVolume, resample_boxes_3d,
                                       resample_volume)


def _ramp_volume():
    z, y, x = np.meshgrid(
        np.arange(20), np.arange(30), np.arange(40), indexing='ij')
    arr = (3 * z + 2 * y + x).astype(np.float32)
    return CTVolume(arr, (2.5, 0.7, 0.6), (-10.0, 20.0, -300.0))


def test_resample_volume_keeps_world_extent_and_values():
    vol = _ramp_volume()
    out = resample_volume(vol, (1.0, 1.0, 1.0))
    assert out.spacing_zyx == (1.0, 1.0, 1.0)
    assert out.shape_zyx == (50, 21, 24)
    # outer edges unchanged
    lo_in = vol.voxel_to_world([[-0.5, -0.5, -0.5]])
    lo_out = out.voxel_to_world([[-0.5, -0.5, -0.5]])
    np.testing.assert_allclose(lo_out, lo_in, atol=1e-6)
    # linear interpolation of a linear ramp is exact inside the volume
    zyx = np.array([[10, 10, 10], [30, 5, 20], [2, 18, 3]], dtype=float)
    src_idx = vol.world_to_voxel(out.voxel_to_world(zyx))
    expect = src_idx @ np.array([3.0, 2.0, 1.0])
    got = out.array[tuple(zyx.astype(int).T)]
    np.testing.assert_allclose(got, expect, atol=1e-3)
    assert out.meta['resampled_from'] == (2.5, 0.7, 0.6)


def test_boxes_and_points_round_trip():
    vol = _ramp_volume()
    out = resample_volume(vol, (1.0, 0.8, 0.8), interpolator='nearest')
    assert out.array.dtype == vol.array.dtype
    boxes = np.array([[3.5, 4.5, 2.5, 10.5, 12.5, 6.5]], dtype=np.float32)
    mapped = resample_boxes_3d(boxes, vol, out)
    # extents scale with the spacing ratio, world centre is kept
    ext_in = (boxes[0, 3:] - boxes[0, :3]) * np.array([0.6, 0.7, 2.5])
    ext_out = (mapped[0, 3:] - mapped[0, :3]) * np.array([0.8, 0.8, 1.0])
    np.testing.assert_allclose(ext_out, ext_in, rtol=1e-5)
    c_in = vol.voxel_to_world(((boxes[:, :3] + boxes[:, 3:]) / 2)[:, ::-1])
    c_out = out.voxel_to_world(((mapped[:, :3] + mapped[:, 3:]) / 2)[:, ::-1])
    np.testing.assert_allclose(c_out, c_in, atol=1e-4)
    np.testing.assert_allclose(
        resample_boxes_3d(mapped, out, vol), boxes, atol=1e-4)
    assert resample_boxes_3d(np.zeros((0, 6)), vol, out).shape == (0, 6)
    with pytest.raises(ValueError, match='N, 6'):
        resample_boxes_3d(np.zeros((2, 4)), vol, out)


def test_bad_arguments():
    vol = _ramp_volume()
    with pytest.raises(ValueError, match='positive'):
        resample_volume(vol, (0, 1, 1))
    with pytest.raises(ValueError, match='interpolator'):
        resample_volume(vol, (1, 1, 1), interpolator='cubic')


def test_label_map_padding_is_background():
    """Outside the input a label map gets 0 (background), not -1024 HU
    (64512 in uint16); images still get air; a fill value that does not fit
    the label dtype is refused."""
    labels = np.zeros((4, 5, 6), dtype=np.uint16)
    labels[1:3, 1:4, 2:5] = 7
    # 0.7 mm x 5 voxels = 3.5 mm -> 4 voxels of 1 mm whose last reaches
    # past the input: SimpleITK fills it with the default value
    vol = CTVolume(labels, (1.0, 0.7, 0.7), (0.0, 0.0, 0.0))
    out = resample_volume(vol, (1.0, 1.0, 1.0), interpolator='nearest')
    assert out.array.dtype == np.uint16
    assert set(np.unique(out.array).tolist()) <= {0, 7}
    assert (out.array == 7).any()
    assert (resample_volume(vol, (1.0, 1.0, 1.0), interpolator='nearest',
                            default_value=3).array == 3).any()
    image = CTVolume(labels.astype(np.float32), (1.0, 0.7, 0.7),
                     (0.0, 0.0, 0.0))
    assert resample_volume(image, (1.0, 1.0, 1.0)).array.min() == -1024.
    with pytest.raises(ValueError, match='uint16'):
        resample_volume(vol, (1.0, 1.0, 1.0), interpolator='nearest',
                        default_value=-1024.)
