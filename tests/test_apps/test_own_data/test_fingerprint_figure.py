# Copyright (c) mmlesion contributors. All rights reserved.
"""The fingerprint's picture: histograms on top, the lesion montage below."""
import numpy as np
import pytest

from mmlesion.apps.own_data.fingerprint import (DatasetFingerprint,
                                                Distribution, LesionCrop,
                                                SplitFingerprint)
from mmlesion.apps.own_data.fingerprint_figure import draw_fingerprint


def _split(n):
    d = Distribution.of(np.arange(1., n + 1))
    hist = [0] * 256
    hist[70] = n
    return SplitFingerprint(
        n, n, [d] * 3, [d] * 3, {'LPS': n}, d, d, [d] * 3,
        Distribution.of([40., 60.]), d, hist, hist, [[5., 6., 7.]] * n,
        [[2., .8, .8]] * n)


def test_draw_fingerprint(tmp_path):
    import matplotlib.image as mpimg
    crop = np.full((64, 64), 500., np.float32)  # above the window: white
    fp = DatasetFingerprint(
        'ann.json', '0' * 64, 'toy', ['lesion'],
        dict(train=_split(3), test=_split(1), all=_split(4)), 100, 0,
        [LesionCrop('a', 'train', 7., crop)])
    path = tmp_path / 'fp.png'
    draw_fingerprint(fp, str(path))
    img = mpimg.imread(str(path))
    assert img.shape[:2] == (1000, 2000)
    # the white crop sits at the montage's left, under the histograms
    assert img[600:900, 40:120, :3].mean() > .9
    assert list(tmp_path.iterdir()) == [path]  # no temporary left


def test_draw_fingerprint_refuses_a_bad_path(tmp_path):
    fp = DatasetFingerprint('a', '0', 'toy', ['l'], dict(all=_split(2)), 1, 0)
    (tmp_path / 'file').write_text('x')
    with pytest.raises(OSError):
        draw_fingerprint(fp, str(tmp_path / 'file' / 'fp.png'))
