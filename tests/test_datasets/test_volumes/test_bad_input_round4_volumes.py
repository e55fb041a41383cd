# Copyright (c) mmlesion contributors. All rights reserved.
"""Bad volume files, round 4 (issue 50 item 6): a DICOM series whose
slices have their own RescaleSlope / RescaleIntercept must give each slice
its own HU, and a NIfTI whose qform and sform disagree is refused naming
the file, both codes and the transform the reader would use."""
import os
import struct

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from mmlesion.datasets.volumes import load_ct_volume
from mmlesion.testing.volume_files import write_dicom_series


def _series(folder, rescale):
    """A 4-slice 6 x 5 series whose slice k stores odd raw values and has
    RescaleSlope / RescaleIntercept ``rescale[k]``; returns the files and
    the HU each slice must read as."""
    raw = np.stack([np.arange(30, dtype=np.int16).reshape(6, 5) * 2 + 1 +
                    40 * k for k in range(len(rescale))])
    write_dicom_series(str(folder), '1.2.3.4', raw)
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
    for path, (slope, inter) in zip(files, rescale):
        ds = pydicom.dcmread(path)
        ds.RescaleSlope = f'{slope:g}'
        ds.RescaleIntercept = f'{inter:g}'
        ds.save_as(path)
    hu = np.stack([raw[k] * slope + inter
                   for k, (slope, inter) in enumerate(rescale)])
    return files, hu.astype(np.float32)


@pytest.mark.parametrize('rescale', [
    [(1, -1024), (0.5, -1024), (1, -1024), (2, -1024)],
    [(1, -1024), (1, -1024.5), (1, -1000), (1, -1024)],
])
def test_dicom_slice_wise_rescale_gives_each_slice_its_hu(tmp_path,
                                                          rescale):
    """The first slice's integer rescale must not cut the fractions of
    the other slices' HU (ITK stores all in the first slice's type)."""
    _, hu = _series(tmp_path / 's', rescale)
    vol = load_ct_volume(str(tmp_path / 's'))
    assert vol.array.shape == hu.shape
    # LPS: x left, y posterior, as the identity orientation written
    np.testing.assert_allclose(vol.array, hu, atol=1e-4)


def test_dicom_unreadable_rescale_slope_named(tmp_path):
    files, _ = _series(tmp_path / 's', [(1, -1024)] * 4)
    ds = pydicom.dcmread(files[1])
    ds.RescaleSlope = '1.25'
    ds.save_as(files[1])
    data = open(files[1], 'rb').read()
    # the element's value right after its tag (random UIDs may hold '1.25')
    tag = data.index(b'\x28\x00\x53\x10')
    at = data.index(b'1.25', tag, tag + 12)
    open(files[1], 'wb').write(data[:at] + b'abcd' + data[at + 4:])
    with pytest.raises(ValueError) as info:
        load_ct_volume(str(tmp_path / 's'))
    msg = str(info.value)
    assert files[1] in msg and '(0028,1053)' in msg and 'abc' in msg, msg


# ----------------------------------------------------- NIfTI qform / sform
def _nifti(path):
    img = sitk.GetImageFromArray(
        (np.arange(120).reshape(4, 5, 6) * 10 - 1000).astype(np.int16))
    img.SetSpacing((0.7, 0.8, 2.0))
    img.SetOrigin((10., 20., 30.))
    sitk.WriteImage(img, str(path))
    return str(path)


def _add(path, offset, delta):
    """Add ``delta`` to the float32 header field at ``offset``."""
    data = bytearray(open(path, 'rb').read())
    value = struct.unpack('<f', data[offset:offset + 4])[0]
    data[offset:offset + 4] = struct.pack('<f', value + delta)
    open(path, 'wb').write(bytes(data))


@pytest.mark.parametrize('field,offset,used', [
    ('srow_x[3]', 292, 'sform'),  # sform moved 5 mm
    ('qoffset_x', 268, 'sform'),  # qform moved 5 mm
    ('pixdim[3]', 88, 'sform'),  # qform's slices 3 mm apart, sform's 2
])
def test_nifti_qform_sform_disagree(tmp_path, field, offset, used):
    path = _nifti(tmp_path / 'a.nii')
    _add(path, offset, 5.0 if offset != 88 else 1.0)
    with pytest.raises(ValueError) as info:
        load_ct_volume(path)
    msg = str(info.value)
    assert msg.startswith(path + ': ') and '\n' not in msg, msg
    assert 'qform_code = 1' in msg and 'sform_code = 1' in msg, msg
    assert f'this reader would use the {used}' in msg, msg
