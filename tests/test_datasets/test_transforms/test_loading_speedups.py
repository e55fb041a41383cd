# Copyright (c) mmlesion contributors. All rights reserved.
"""The faster slice loading gives the same pixels and errors as before:
the uint16 offset check and HU conversion, and the channel stacking, each
against the earlier NumPy formula on tiny inputs."""
import numpy as np
import pytest

from mmlesion.datasets.deeplesion.png_slices import (HU_OFFSET, IMPLAUSIBLE_HU,
                                                     png_values_to_hu)
from mmlesion.datasets.transforms.loading import stack_channels


def _old_hu(raw):
    hu = raw.astype(np.float32) - HU_OFFSET
    return hu, float(np.mean(np.abs(hu) > IMPLAUSIBLE_HU))


def test_hu_conversion_is_bit_identical_at_the_edges():
    # every value around the implausibility limits and the uint16 ends
    edges = [
        0, 1, 22767, 22768, 22769, 31744, 32767, 32768, 32769, 35839, 42767,
        42768, 42769, 65534, 65535
    ]
    rng = np.random.default_rng(0)
    raw = np.concatenate([
        np.array(edges, np.uint16),
        rng.integers(22768, 42769, 200).astype(np.uint16)
    ]).reshape(5, -1)
    old, implausible = _old_hu(raw)
    assert implausible < .5
    new = png_values_to_hu(raw)
    assert new.dtype == old.dtype == np.float32
    assert new.tobytes() == old.tobytes()


@pytest.mark.parametrize('beyond', [7, 8, 9])
def test_offset_check_decides_as_before(beyond):
    # 16 pixels, ``beyond`` of them just outside +-10000 HU: half is fine
    raw = np.full((4, 4), 32768, np.uint16)
    flat = raw.reshape(-1)
    flat[:beyond:2] = 22767  # -10001 HU
    flat[1:beyond:2] = 42769  # +10001 HU
    _, implausible = _old_hu(raw)
    if implausible > .5:
        with pytest.raises(ValueError, match='without the \\+32768 offset'):
            png_values_to_hu(raw, 'x.png')
    else:
        assert png_values_to_hu(raw).tobytes() == _old_hu(raw)[0].tobytes()
    # exactly at the limit (+-10000 HU) counts as plausible, as before
    raw[:] = 22768
    raw[0, 0] = 42768
    assert _old_hu(raw)[1] == 0.
    png_values_to_hu(raw)


def test_other_integer_dtypes_keep_the_float_check():
    raw = np.array([[32768, 70000]], np.int32)  # not uint16: no wrap trick
    assert png_values_to_hu(raw).tobytes() == _old_hu(raw)[0].tobytes()
    with pytest.raises(ValueError):
        png_values_to_hu(np.array([[-5, 70000]], np.int64))


@pytest.mark.parametrize('num', [1, 3, 9])
def test_stack_channels_is_np_stack(num):
    rng = np.random.default_rng(num)
    slices = [
        rng.normal(0, 500, (6, 5)).astype(np.float32) for _ in range(num)
    ]
    slices[0][0, 0] = np.nan
    slices[-1][1, 1] = -np.inf
    expected = np.stack(slices, axis=-1).astype(np.float32)
    got = stack_channels(slices)
    assert got.dtype == np.float32 and got.shape == (6, 5, num)
    assert got.flags['C_CONTIGUOUS']
    assert got.tobytes() == expected.tobytes()
    # views (the same slice twice, a strided crop) as well
    views = [s[:, ::2] for s in slices] + [slices[0][:, ::2]]
    assert stack_channels(views).tobytes() == np.stack(views,
                                                       axis=-1).tobytes()


def test_stack_channels_other_dtypes_fall_back():
    slices = [np.arange(6, dtype=np.float64).reshape(2, 3)] * 3
    got = stack_channels(slices)
    assert got.dtype == np.float32
    assert got.tobytes() == np.stack(slices, -1).astype(np.float32).tobytes()
