# Copyright (c) mmlesion contributors. All rights reserved.
import gzip
import os
import struct

import numpy as np
import pytest
import SimpleITK as sitk

from mmlesion.datasets.volumes import VolumeOptions, load_ct_volume
from mmlesion.testing import shared_data_root
from mmlesion.testing.volume_files import SeriesLayout, write_dicom_series


def _ct_dir():
    root = shared_data_root()
    if root is None or not (root / 'ct_volumes').is_dir():
        pytest.skip('real CT files not available ($MMLESION_SHARED_DATA/'
                    'ct_volumes; set MMLESION_SHARED_DATA)')
    return root / 'ct_volumes'


def _check_geometry(vol, orig: sitk.Image, n: int = 50, seed: int = 0):
    """Every voxel of the original image is found at its world position."""
    arr = sitk.GetArrayFromImage(orig)
    rng = np.random.default_rng(seed)
    size = np.asarray(orig.GetSize())
    idx_xyz = rng.integers(0, size, size=(n, 3))
    world = np.array([
        orig.TransformIndexToPhysicalPoint([int(v) for v in i])
        for i in idx_xyz
    ])
    zyx = vol.world_to_voxel(world)
    np.testing.assert_allclose(zyx, np.round(zyx), atol=1e-3)
    zyx = np.round(zyx).astype(int)
    np.testing.assert_array_equal(
        vol.array[zyx[:, 0], zyx[:, 1], zyx[:, 2]],
        arr[idx_xyz[:, 2], idx_xyz[:, 1], idx_xyz[:, 0]].astype(np.float32))
    np.testing.assert_allclose(vol.voxel_to_world(zyx), world, atol=1e-3)


def _write_mhd(tmp_path, name='1.2.3', shape=(5, 6, 7), spacing=(0.7, 0.7,
                                                                 2.0)):
    arr = np.arange(np.prod(shape), dtype=np.int16).reshape(shape) - 1000
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin((-100.0, -50.0, -300.0))
    path = str(tmp_path / f'{name}.mhd')
    sitk.WriteImage(img, path)
    return path, img


def test_real_nifti_geometry():
    path = _ct_dir() / 'totalsegmentator' / 'example_ct.nii.gz'
    vol = load_ct_volume(path)
    orig = sitk.ReadImage(str(path))
    # RAS-stored NIfTI: x and y are flipped to LPS, the direction is I
    np.testing.assert_allclose(vol.direction, np.eye(3))
    assert vol.shape_zyx == orig.GetSize()[::-1]
    assert vol.spacing_zyx == pytest.approx(orig.GetSpacing()[::-1])
    assert vol.array.dtype == np.float32
    assert vol.meta['modality'] is None and vol.series_uid is None
    _check_geometry(vol, orig)


def test_real_dicom_series_geometry():
    folder = _ct_dir() / 'totalsegmentator' / 'example_ct_dicom'
    vol = load_ct_volume(folder)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(
        sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    orig = reader.Execute()
    assert vol.shape_zyx == (20, 512, 512)
    assert vol.meta['modality'] == 'CT'
    assert vol.meta['format'] == 'dicom_series'
    np.testing.assert_allclose(vol.direction, np.eye(3))
    _check_geometry(vol, orig)
    # HU: the series stores intercept -1024, so air is near -1000
    assert vol.array.min() <= -1000 < vol.array.max()


def test_real_enhanced_ct():
    path = _ct_dir() / 'pydicom' / 'eCT_Supplemental.dcm'
    # a perfusion map (RescaleType 'US'): its values are not HU
    with pytest.raises(ValueError, match="RescaleType .*'US'"):
        load_ct_volume(path)
    vol = load_ct_volume(path, scan_checks=dict(force_ct=True))
    orig = sitk.ReadImage(str(path))
    assert vol.shape_zyx == (2, 512, 512)
    assert vol.meta['modality'] == 'CT'
    # stored with x pointing right (-1 in the direction): made LPS
    assert orig.GetDirection()[0] == -1
    np.testing.assert_allclose(vol.direction, np.eye(3))
    _check_geometry(vol, orig)


def test_real_single_frame_files_and_hu(tmp_path):
    path = _ct_dir() / 'pydicom' / 'CT_small.dcm'
    with pytest.raises(ValueError, match='CT_small.dcm: a 2D image'):
        load_ct_volume(path)
    vol = load_ct_volume(
        path, options=VolumeOptions(allow_single_slice=True))
    assert vol.shape_zyx == (1, 128, 128)
    # HU = stored * slope (1) + intercept (-1024): the uncompressed pixel
    # data element (7FE0,0010), explicit VR OW, holds 128 * 128 int16
    data = open(path, 'rb').read()
    start = data.rfind(b'\xe0\x7f\x10\x00OW') + 12
    raw = np.frombuffer(data[start:start + 128 * 128 * 2],
                        '<i2').reshape(128, 128)
    np.testing.assert_array_equal(vol.array[0], raw.astype(np.float32) -
                                  1024)
    vol = load_ct_volume(
        _ct_dir() / 'pydicom' / '693_UNCI.dcm',
        options=VolumeOptions(allow_single_slice=True))
    assert vol.shape_zyx == (1, 512, 512)


def test_real_seg_is_not_ct():
    path = _ct_dir() / 'pydicom' / 'liver.dcm'
    with pytest.raises(ValueError, match=r"liver.dcm: DICOM Modality is "
                       r"'SEG', not CT"):
        load_ct_volume(path)


def test_mhd_round_trip_and_missing_raw(tmp_path):
    path, img = _write_mhd(tmp_path)
    vol = load_ct_volume(path)
    assert vol.series_uid == '1.2.3'
    assert vol.meta['format'] == 'mhd'
    np.testing.assert_array_equal(vol.array, sitk.GetArrayFromImage(img))
    assert vol.origin_xyz == (-100.0, -50.0, -300.0)
    os.remove(path[:-4] + '.raw')
    with pytest.raises(FileNotFoundError, match=r'1\.2\.3\.mhd: .*missing'):
        load_ct_volume(path)
    with pytest.raises(FileNotFoundError, match='not found'):
        load_ct_volume(tmp_path / 'nope.nii.gz')


@pytest.mark.parametrize('spacing', ['0 0.7 2', 'nan 0.7 2'])
def test_bad_spacing(tmp_path, spacing):
    path, _ = _write_mhd(tmp_path)
    text = open(path).read().splitlines()
    text = [('ElementSpacing = ' + spacing)
            if line.startswith('ElementSpacing') else line for line in text]
    open(path, 'w').write('\n'.join(text) + '\n')
    with pytest.raises(ValueError, match=r'1\.2\.3\.mhd: .*spacing'):
        load_ct_volume(path)


@pytest.mark.parametrize('value', [0.0, float('nan')])
def test_bad_nifti_spacing(tmp_path, value):
    # ITK would silently read a zero / NaN pixdim as 1 mm
    path = str(tmp_path / 'scan.nii')
    sitk.WriteImage(sitk.Image(4, 5, 6, sitk.sitkInt16), path)
    data = bytearray(open(path, 'rb').read())
    data[84:88] = struct.pack('<f', value)  # pixdim[2] = y spacing
    open(path, 'wb').write(bytes(data))
    with pytest.raises(ValueError, match=r'scan.nii: invalid voxel spacing'):
        load_ct_volume(path)
    gz = path + '.gz'
    with gzip.open(gz, 'wb') as f:
        f.write(bytes(data))
    with pytest.raises(ValueError, match=r'scan.nii.gz: invalid voxel'):
        load_ct_volume(gz)


def test_2d_image(tmp_path):
    path = str(tmp_path / 'slice.nii.gz')
    sitk.WriteImage(sitk.Image(8, 9, sitk.sitkInt16), path)
    with pytest.raises(ValueError, match='slice.nii.gz: a 2D image'):
        load_ct_volume(path)


def test_reorientation_and_oblique(tmp_path):
    arr = np.random.default_rng(0).integers(-1000, 1000, (6, 8, 10))
    img = sitk.GetImageFromArray(arr.astype(np.int16))
    img.SetSpacing((0.8, 0.9, 2.0))
    # sagittal-like storage: index axes permuted and flipped
    img.SetDirection((0, 0, 1, -1, 0, 0, 0, -1, 0))
    path = str(tmp_path / 'sag.nii.gz')
    sitk.WriteImage(img, path)
    vol = load_ct_volume(path)
    np.testing.assert_allclose(vol.direction, np.eye(3), atol=1e-6)
    _check_geometry(vol, sitk.ReadImage(path))
    # same result as SimpleITK's own DICOMOrient
    ref = sitk.DICOMOrient(sitk.ReadImage(path), 'LPS')
    np.testing.assert_array_equal(vol.array, sitk.GetArrayFromImage(ref))
    assert vol.origin_xyz == pytest.approx(ref.GetOrigin())
    assert vol.spacing_zyx == pytest.approx(ref.GetSpacing()[::-1])

    rot = sitk.Euler3DTransform()
    rot.SetRotation(0.0, 0.0, np.radians(15))
    img.SetDirection(rot.GetMatrix())
    path = str(tmp_path / 'oblique.nii.gz')
    sitk.WriteImage(img, path)
    with pytest.raises(ValueError, match='oblique.nii.gz: oblique scan'):
        load_ct_volume(path)
    vol = load_ct_volume(
        path, options=VolumeOptions(resample_oblique=True))
    np.testing.assert_allclose(vol.direction, np.eye(3))
    assert vol.meta['resampled_from_oblique']
    # a tilt within the tolerance is kept, with its direction
    rot.SetRotation(0.0, 0.0, np.radians(0.5))
    img.SetDirection(rot.GetMatrix())
    sitk.WriteImage(img, path)
    vol = load_ct_volume(path)
    assert 0.4 < vol.meta['oblique_deg'] < 0.6
    _check_geometry(vol, sitk.ReadImage(path))


def test_dicom_folder_with_several_series(tmp_path):
    folder = str(tmp_path / 'dicom')
    write_dicom_series(folder, '1.2.826.0.1.3680043.2.1125.11')
    write_dicom_series(
        folder, '1.2.826.0.1.3680043.2.1125.22',
        np.stack([  # CT-like: air and more than a label map's values
            np.arange(20, dtype=np.int16).reshape(4, 5) * 60 - 1000 + 10 * k
            for k in range(4)
        ]))
    with pytest.raises(ValueError, match=r"2 DICOM series .*\['1\.2\.826"
                       r".*11', '1\.2\.826.*22'\]"):
        load_ct_volume(folder)
    vol = load_ct_volume(folder, series_uid='1.2.826.0.1.3680043.2.1125.22')
    assert vol.shape_zyx == (4, 4, 5)
    assert vol.series_uid == '1.2.826.0.1.3680043.2.1125.22'
    assert vol.spacing_zyx == pytest.approx((2.5, 0.5, 0.5))
    np.testing.assert_array_equal(vol.array[:, 0, 0],
                                  [-1000, -990, -980, -970])
    with pytest.raises(ValueError, match='no DICOM series'):
        load_ct_volume(folder, series_uid='9.9')
    mr = str(tmp_path / 'mr')
    write_dicom_series(mr, '1.2.826.0.1.3680043.2.1125.33',
                       layout=SeriesLayout(modality='MR'))
    with pytest.raises(ValueError, match="'MR', not CT"):
        load_ct_volume(mr)


def test_nrrd_without_space_warned(tmp_path, log_messages):
    """A NRRD with spacings but no space: read as ITK assumes, with one
    warning line; with its space, quietly at its origin."""
    hu = np.random.default_rng(0).integers(-1024, 1000, (6, 5, 4))
    common = ('NRRD0004\ntype: short\ndimension: 3\nsizes: 4 5 6\n'
              'encoding: raw\nendian: little\n')
    heads = {'plain': 'spacings: 0.8 0.9 2.5\n',
             'space': 'space: left-posterior-superior\nspace directions: '
                      '(0.8,0,0) (0,0.9,0) (0,0,2.5)\nspace origin: '
                      '(1,2,3)\n'}
    for name, head in heads.items():
        path = tmp_path / f'{name}.nrrd'
        path.write_bytes((common + head + '\n').encode() +
                         hu.astype('<i2').tobytes())
        log_messages.clear()
        vol = load_ct_volume(path)
        np.testing.assert_array_equal(vol.array, hu)
        said = [m for m in log_messages if "without a 'space' field" in m]
        assert len(said) == int(name == 'plain'), said
        assert vol.spacing_zyx == pytest.approx((2.5, 0.9, 0.8))
        assert vol.origin_xyz == ((0., 0., 0.) if name == 'plain' else
                                  (1., 2., 3.))
    path = tmp_path / 'cm.nrrd'  # ITK would read the cm as mm
    path.write_bytes((common + heads['space'] + 'space units: "cm" "cm" '
                      '"cm"\n\n').encode() + hu.astype('<i2').tobytes())
    with pytest.raises(ValueError, match="cm.nrrd: NRRD field 'space "
                       "units"):
        load_ct_volume(path)
