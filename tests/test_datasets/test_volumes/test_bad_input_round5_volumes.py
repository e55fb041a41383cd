"""Round 5 of malformed volume files: each is refused in one line naming
the file and field, or read right (a compressed MetaImage)."""
import glob

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from mmlesion.datasets.volumes import load_ct_volume
from mmlesion.testing.volume_files import write_dicom_series


def _array():
    a = (np.arange(3 * 8 * 9).reshape(3, 8, 9) % 200 - 100).astype(np.int16)
    a[:, :2] = -1000  # air: a CT
    return a


def test_dicom_slice_with_short_pixel_data_refused(tmp_path):
    folder = str(tmp_path / 'series')
    write_dicom_series(folder, '1.2.3.5', _array())
    short = sorted(glob.glob(folder + '/*'))[1]
    ds = pydicom.dcmread(short)
    ds.PixelData = ds.PixelData[:50]  # header and file long enough
    ds.save_as(short)
    with pytest.raises(ValueError, match=r'_1\.dcm: truncated: 50 of 144 '
                       r'bytes of PixelData \(7FE0,0010\)'):
        load_ct_volume(folder)


def _mhd(tmp_path, old, new, compress=False):
    img = sitk.GetImageFromArray(_array())
    img.SetSpacing((0.7, 0.7, 2.0))
    path = str(tmp_path / 'scan.mhd')
    sitk.WriteImage(img, path, useCompression=compress)
    with open(path) as f:
        header = f.read()
    assert old in header
    with open(path, 'w') as f:
        f.write(header.replace(old, new))
    return path


@pytest.mark.parametrize('matrix', ['1 0 0 0.5 1 0 0 0 1',
                                    '2 0 0 0 2 0 0 0 2'])
def test_metaimage_transform_matrix_not_a_rotation_refused(tmp_path, matrix):
    path = _mhd(tmp_path, 'TransformMatrix = 1 0 0 0 1 0 0 0 1',
                f'TransformMatrix = {matrix}')
    with pytest.raises(ValueError, match=f'TransformMatrix = {matrix} is '
                       'not a rotation'):
        load_ct_volume(path)


def test_metaimage_raw_data_said_compressed_refused(tmp_path):
    path = _mhd(tmp_path, 'CompressedData = False', 'CompressedData = True')
    with pytest.raises(ValueError, match=r'scan\.mhd: header field '
                       'CompressedData = True, but the voxel data in .*'
                       r'scan\.raw is not zlib-compressed'):
        load_ct_volume(path)


@pytest.mark.parametrize('ext', ['.mhd', '.mha'])
def test_compressed_metaimage_still_read(tmp_path, ext):
    img = sitk.GetImageFromArray(_array())
    path = str(tmp_path / f'scan{ext}')
    sitk.WriteImage(img, path, useCompression=True)
    np.testing.assert_array_equal(load_ct_volume(path).array, _array())
