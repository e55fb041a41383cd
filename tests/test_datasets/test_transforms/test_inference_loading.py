# Copyright (c) mmlesion contributors. All rights reserved.
"""Inputs of mmdet's inference APIs through the 2.5D test pipeline."""
import numpy as np
import pytest

from mmlesion.datasets.transforms import (LesionInferencerLoader,
                                          LoadDeepLesionSlices,
                                          LoadVolumeSlices)
from mmlesion.datasets.transforms.inference_loading import series_geometry
from mmlesion.datasets.deeplesion.png_slices import read_hu_png


def _key_slice(root):
    """A key slice of the demo set and its DL_info slice interval."""
    import csv
    with open(root / 'DL_info.csv') as f:
        row = next(csv.DictReader(f))
    series, index = row['File_name'].rsplit('_', 1)
    interval = float(row['Spacing_mm_px_'].split(',')[2])
    return root / 'Images_png' / series / index, interval


def test_slice_path_gets_the_datasets_geometry(tiny_demo_root):
    path, interval = _key_slice(tiny_demo_root)
    geometry = series_geometry(str(path))
    assert geometry['slice_interval'] == pytest.approx(interval)
    for given in (str(path), path, dict(img_path=str(path), img_id=0),
                  dict(img_path=dict(img_path=str(path)))):
        out = LesionInferencerLoader()(given)
        assert out['img_path'] == str(path)
        assert out['slice_interval'] == pytest.approx(interval)
    # what the user gives wins over the table
    out = LesionInferencerLoader()(dict(img_path=str(path),
                                        slice_interval=1.0))
    assert out['slice_interval'] == 1.0


def test_slice_without_table_is_logged(tmp_path, tiny_demo_root,
                                       log_messages):
    path, _ = _key_slice(tiny_demo_root)
    alone = tmp_path / 'a' / 'b' / '050.png'
    alone.parent.mkdir(parents=True)
    alone.write_bytes(path.read_bytes())
    out = LesionInferencerLoader()(str(alone))
    assert 'slice_interval' not in out
    assert any('slice interval unknown' in m for m in log_messages)


def test_array_and_volume_inputs_equal_the_files(tiny_demo_root):
    path, interval = _key_slice(tiny_demo_root)
    loader = LoadDeepLesionSlices(num_slices=3, interval_mm=2.0)
    ref = loader(dict(img_path=str(path), slice_interval=interval))['img']
    stack = LesionInferencerLoader()(ref.copy())
    np.testing.assert_array_equal(loader(stack)['img'], ref)
    files = sorted(path.parent.glob('*.png'))
    volume = np.stack([read_hu_png(str(f)) for f in files])
    key = [f.name for f in files].index(path.name)
    raw = (volume + 32768).astype(np.uint16)  # stored PNG values work too
    for vol in (volume, raw):
        given = dict(volume=vol, key_slice=key, slice_interval=interval)
        out = loader(LesionInferencerLoader()(given))
        assert 'volume' not in out and 'volume' in given
        # the series has every slice: same as the PNGs and LoadVolumeSlices
        np.testing.assert_allclose(out['img'], ref, atol=1e-3)
        same = LoadVolumeSlices(num_slices=3, interval_mm=2.0)(
            dict(volume=volume, key_slice=key, slice_interval=interval))
        np.testing.assert_allclose(out['img'], same['img'], atol=1e-3)


def test_bad_inputs_say_what_is_expected():
    loader = LoadDeepLesionSlices(num_slices=3)
    with pytest.raises(ValueError, match=r'must be \(H, W, 3\)'):
        loader(dict(img=np.zeros((8, 8), np.float32), img_path=None))
    with pytest.raises(ValueError, match="positive 'slice_interval'"):
        loader(dict(volume=np.zeros((4, 8, 8)), key_slice=1))
    with pytest.raises(ValueError, match='outside the volume'):
        loader(dict(volume=np.zeros((4, 8, 8)), key_slice=9,
                    slice_interval=1.))
    with pytest.raises(TypeError, match='slice path'):
        LesionInferencerLoader()(3)
    with pytest.raises(KeyError, match='no image'):
        LesionInferencerLoader()(dict(img_id=0))
