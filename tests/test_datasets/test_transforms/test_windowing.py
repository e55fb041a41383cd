# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest

from mmlesion.datasets.transforms import WindowHU
from mmlesion.datasets.transforms.windowing import window_hu


def _img(values):
    return np.array(values, dtype=np.float32).reshape(1, -1, 1)


def test_default_window_improved_retinanet():
    hu = [-3024, -1024, 13, 1050, 3071]
    out = WindowHU()(dict(img=_img(hu)))
    assert out['img'].dtype == np.float32
    np.testing.assert_allclose(out['img'].ravel(), [-1, -1, 0, 1, 1],
                               atol=1e-6)
    assert out['hu_window'] == (-1024., 1050.)
    assert out['hu_out_range'] == (-1., 1.)


def test_lens_window_to_0_255():
    hu = [-2000, -1024, 1023.5, 3071, 4000]
    out = WindowHU(window=(-1024, 3071), out_range=(0., 255.))(
        dict(img=_img(hu)))
    np.testing.assert_allclose(out['img'].ravel(), [0, 0, 127.5, 255, 255],
                               atol=1e-4)


def test_linear_and_shape_preserved():
    rng = np.random.default_rng(0)
    img = rng.uniform(-1500, 3500, size=(8, 9, 9)).astype(np.float32)
    out = window_hu(img, (-1024, 1050), (-1, 1))
    assert out.shape == img.shape and out.dtype == np.float32
    expected = (np.clip(img, -1024, 1050) + 1024) / 2074 * 2 - 1
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert out.min() >= -1 and out.max() <= 1


def test_window_twice_and_bad_arguments():
    out = WindowHU()(dict(img=_img([0]), img_path='a.png'))
    with pytest.raises(ValueError, match='a.png.*windowed already'):
        WindowHU()(out)
    with pytest.raises(ValueError, match='window'):
        WindowHU(window=(100, -100))
    with pytest.raises(ValueError, match='out_range'):
        WindowHU(out_range=(1, 1))
    assert 'WindowHU(window=(-1024.0, 1050.0)' in repr(WindowHU())
