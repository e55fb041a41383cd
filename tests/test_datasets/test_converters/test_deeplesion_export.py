# Copyright (c) mmlesion contributors. All rights reserved.
"""DeepLesionExporter options (in-memory volumes)."""
import os

import numpy as np
import pytest

from mmlesion.datasets.converters import (DeepLesionExporter,
                                          sphere_slice_boxes)
from mmlesion.datasets.dl_info import parse_dl_info
from mmlesion.datasets.transforms.loading import read_hu_png
from mmlesion.datasets.volumes import CTVolume


def _volume():
    arr = np.random.default_rng(0).integers(-1000, 500, (20, 32, 32))
    return CTVolume(arr.astype(np.float32), (2.0, 0.8, 0.8), (0, 0, 0))


LESIONS = [
    dict(bbox=[4.5, 4.5, 2.5, 12.5, 10.5, 7.5], diameter_mm=6.0),
    dict(bbox=[20.5, 20.5, 3.5, 24.5, 24.5, 6.5], diameter_mm=3.0),
    dict(bbox=[10.5, 10.5, 13.5, 14.5, 14.5, 16.5], diameter_mm=4.0,
         ignore=True),
]


def test_key_slices_rows_and_pngs(tmp_path):
    vol = _volume()
    exp = DeepLesionExporter(str(tmp_path), num_slices=3, interval_mm=2.0)
    assert exp.add_volume(vol, 'a', LESIONS, split=2) == '000001_01_01'
    exp.write()
    recs = parse_dl_info(str(tmp_path / 'DL_info.csv'))
    # keys: slice 5 (lesion 1, centre z 5) and 5 (lesion 2): one key slice
    # with both lesions; the ignored finding has no row
    assert [r.file_name for r in recs] == ['000001_01_01_006.png'] * 2
    assert recs[0].bbox == pytest.approx((5, 5, 12, 10))
    assert recs[0].spacing == pytest.approx((0.8, 0.8, 2.0))
    assert recs[0].split == 2 and recs[0].slice_range == (4, 8)
    files = sorted(os.listdir(tmp_path / 'Images_png' / '000001_01_01'))
    assert files == ['004.png', '005.png', '006.png', '007.png', '008.png']
    np.testing.assert_array_equal(
        read_hu_png(str(tmp_path / 'Images_png/000001_01_01/006.png')),
        vol.array[5])
    with pytest.raises(FileExistsError, match='--overwrite'):
        DeepLesionExporter(str(tmp_path))


def test_options(tmp_path):
    vol = _volume()
    exp = DeepLesionExporter(
        str(tmp_path),
        key_lesions='all',
        min_diameter_mm=3.5,
        export_unlabeled=True)
    exp.add_volume(vol, 'a', LESIONS)
    exp.write()
    recs = parse_dl_info(str(tmp_path / 'DL_info.csv'))
    # lesion 2 (3 mm) gets no key slice but a row on lesion 1's key slice;
    # the ignored finding gets its own key slice (16 -> 016.png)
    assert sorted({r.key_slice_index for r in recs}) == [6, 16]
    assert len(os.listdir(tmp_path / 'Images_png' / '000001_01_01')) == 20
    with pytest.raises(ValueError, match='key_lesions'):
        DeepLesionExporter(str(tmp_path / 'x'), key_lesions='some')


def test_sphere_slice_boxes():
    vol = _volume()
    boxes = sphere_slice_boxes(vol, (12.0, 12.0, 10.0), 6.0)
    # centre z = 5, radius 3 mm = 1.5 slices -> slices 4, 5, 6
    assert sorted(boxes) == [4, 5, 6]
    np.testing.assert_allclose(boxes[5], [15 - 3.75, 15 - 3.75, 15 + 3.75,
                                          15 + 3.75])
    r = np.sqrt(9 - 4) / 0.8
    np.testing.assert_allclose(boxes[4], [15 - r, 15 - r, 15 + r, 15 + r])
