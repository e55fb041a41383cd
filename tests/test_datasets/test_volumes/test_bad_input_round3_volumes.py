# Copyright (c) mmlesion contributors. All rights reserved.
"""Bad volume files: a header that disagrees with its data (also a
MetaImage byte order flag or file pattern, issue 50 item 2), non-finite
voxels, files that are not regular files or lie outside their folder, and
valid files that must load. Each case is a clear one-line error naming the
file and the field, or a correct result."""
import contextlib
import gzip
import os
import shutil
import struct
import threading

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from mmlesion.datasets.volumes import load_ct_volume
from mmlesion.testing.volume_files import write_dicom_series


def _ct(shape=(6, 8, 9), seed=0, dtype=np.float32):
    rng = np.random.RandomState(seed)
    return (rng.rand(*shape) * 2000 - 1000).astype(dtype)


def _write(path, array, spacing=(0.7, 0.7, 2.0), compress=False):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path), compress)
    return str(path)


def _edit(path, old, new):
    data = open(path, 'rb').read()
    assert old.encode() in data, (old, data[:400])
    open(path, 'wb').write(data.replace(old.encode(), new.encode(), 1))


def _same_values(array, expected):
    """Equal up to the reorientation (the voxels sorted)."""
    assert array.shape == expected.shape
    np.testing.assert_allclose(np.sort(array.ravel()),
                               np.sort(expected.ravel().astype(np.float32)),
                               atol=1e-3)


def _refused(path, *words, exc=ValueError, **kw):
    with pytest.raises(exc) as info:
        load_ct_volume(path, **kw)
    msg = str(info.value)
    assert str(path) in msg and '\n' not in msg, msg
    for word in words:
        assert word in msg, (word, msg)
    return msg


@contextlib.contextmanager
def fifo(path):
    """A FIFO at ``path``. A helper thread opens its write end and closes it
    again, as often as a reader opens it, so a reader that does open it
    (the old behaviour) gets an empty file instead of blocking the test
    forever."""
    os.mkfifo(path)
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            fd = os.open(path, os.O_WRONLY)  # blocks until a reader opens
            os.close(fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield str(path)
    finally:
        stop.set()
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # release it
        thread.join(5)
        os.close(fd)


# ---------------------------------------------------- 1. header vs data
def test_mhd_float_data_declared_short(tmp_path):
    path = _write(tmp_path / 'a.mhd', _ct())
    _edit(path, 'MET_FLOAT', 'MET_SHORT')
    _refused(path, 'a.raw', 'ElementType MET_SHORT', 'DimSize 9 8 6',
             '864 bytes more')


@pytest.mark.parametrize('dims', ['9 8 3', '9 4 6', '9 8 5'])
def test_mhd_dimsize_fewer_voxels_than_raw(tmp_path, dims):
    path = _write(tmp_path / 'a.mhd', _ct())
    _edit(path, 'DimSize = 9 8 6', f'DimSize = {dims}')
    _refused(path, f'DimSize {dims}', 'bytes more')


def test_mha_local_data_longer_than_dimsize(tmp_path):
    path = _write(tmp_path / 'a.mha', _ct())
    _edit(path, 'DimSize = 9 8 6', 'DimSize = 9 8 5')
    _refused(path, 'DimSize 9 8 5', 'after the header')


def test_mhd_headersize_minus_one_keeps_reading_the_end(tmp_path):
    """HeaderSize -1: the voxels are the last bytes of a longer file."""
    arr = _ct()
    path = _write(tmp_path / 'a.mhd', arr)
    raw = str(tmp_path / 'a.raw')
    data = open(raw, 'rb').read()
    open(raw, 'wb').write(b'\0' * 100 + data)
    _edit(path, 'ElementDataFile', 'HeaderSize = -1\nElementDataFile')
    vol = load_ct_volume(path)
    _same_values(vol.array, arr)


def _nifti(path, array, slope=None, inter=None, gz=False):
    tmp = str(path) + '.tmp.nii'
    sitk.WriteImage(sitk.GetImageFromArray(array), tmp)
    data = bytearray(open(tmp, 'rb').read())
    os.remove(tmp)
    if slope is not None:
        data[112:120] = struct.pack('<ff', slope, inter)
    if gz:
        with gzip.open(path, 'wb') as f:
            f.write(bytes(data))
    else:
        open(path, 'wb').write(bytes(data))
    return str(path)


def _patch(path, offset, fmt, *values):
    data = bytearray(open(path, 'rb').read())
    data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, *values)
    open(path, 'wb').write(bytes(data))


@pytest.mark.parametrize('z', [3, 5])
def test_nifti_dim_fewer_slices_than_stored(tmp_path, z):
    path = _nifti(tmp_path / 'a.nii', _ct())
    _patch(path, 46, '<h', z)  # dim[3]
    _refused(path, 'dim (9, 8, ' + str(z) + ')', 'bytes more')


def test_nifti_gz_dim_fewer_slices_than_stored(tmp_path):
    raw = _nifti(tmp_path / 'a.nii', _ct())
    _patch(raw, 46, '<h', 3)
    path = str(tmp_path / 'a.nii.gz')
    with gzip.open(path, 'wb') as f:
        f.write(open(raw, 'rb').read())
    _refused(path, 'dim (9, 8, 3)', 'decompressed')


def test_nifti_bitpix_disagrees_with_datatype(tmp_path):
    path = _nifti(tmp_path / 'a.nii', _ct())
    _patch(path, 72, '<h', 16)  # float32 datatype, 16 bits
    _refused(path, 'bitpix = 16', 'datatype 16')


@pytest.mark.parametrize('slope,inter,field', [
    (float('inf'), 0.0, 'scl_slope = inf'),
    (1.0, float('nan'), 'scl_inter = nan'),
    (1.0, float('-inf'), 'scl_inter = -inf'),
])
def test_nifti_nonfinite_rescale(tmp_path, slope, inter, field):
    path = _nifti(tmp_path / 'a.nii', (_ct() + 1024).astype(np.int16),
                  slope, inter)
    _refused(path, field)


@pytest.mark.parametrize('name,field', [('a.mha', 'DimSize'),
                                        ('a.nrrd', 'sizes'),
                                        ('a.nii', 'dim')])
def test_gigavoxel_header_refused_before_allocation(tmp_path, name, field):
    path = str(tmp_path / name)
    if name.endswith('.nii'):
        _nifti(path, _ct())
        _patch(path, 42, '<3h', 30000, 30000, 30000)
        sizes = '(30000, 30000, 30000)'
    else:
        _write(path, _ct(), compress=True)
        old = 'DimSize = 9 8 6' if name.endswith('.mha') else 'sizes: 9 8 6'
        _edit(path, old, old[:-5] + '100000 100000 100000')
        sizes = '(100000, 100000, 100000)'
    _refused(path, f'header field {field} {sizes}', 'voxels')


@pytest.mark.parametrize('spacing', [(0.7, 0.7, 1000.0), (80., 80., 2.)])
def test_implausible_spacing(tmp_path, spacing):
    path = _write(tmp_path / 'a.mhd', _ct(), spacing)
    _refused(path, 'implausible voxel spacing')


def test_implausible_origin(tmp_path):
    path = _write(tmp_path / 'a.mhd', _ct())
    _edit(path, 'Offset = 0 0 0', 'Offset = 0 0 1e9')
    _refused(path, 'implausible origin')


def test_nrrd_raw_data_longer_than_sizes(tmp_path):
    path = _write(tmp_path / 'a.nrrd', _ct())
    _edit(path, 'sizes: 9 8 6', 'sizes: 9 8 4')
    _refused(path, 'sizes 9 8 4', 'bytes more')


def _dicom(folder, n=4):
    arr = np.stack([np.full((6, 5), -1000 + 10 * k, np.int16)
                    for k in range(n)])
    write_dicom_series(str(folder), '1.2.3.4', arr)
    return sorted(os.path.join(folder, f) for f in os.listdir(folder))


@pytest.mark.parametrize('value', ['0.5\\0.6', '0.55\\0.5', '1\\1'])
def test_dicom_slice_with_other_pixel_spacing(tmp_path, value):
    files = _dicom(tmp_path / 's')
    ds = pydicom.dcmread(files[2])
    ds.PixelSpacing = value.split('\\')
    ds.save_as(files[2])
    msg = _refused(str(tmp_path / 's'), 'PixelSpacing (0028,0030)',
                   os.path.basename(files[2]))
    assert '0.5\\0.5' in msg


@pytest.mark.parametrize('value', ['0\\0', '-0.5\\-0.5', '100\\100'])
def test_dicom_implausible_pixel_spacing(tmp_path, value):
    files = _dicom(tmp_path / 's')
    for f in files:
        ds = pydicom.dcmread(f)
        ds.PixelSpacing = value.split('\\')
        ds.save_as(f)
    _refused(str(tmp_path / 's'), 'PixelSpacing (0028,0030)')


# ------------------------------------------------- 2. non-finite voxels
@pytest.mark.parametrize('name', ['a.nii', 'a.nii.gz', 'a.mhd', 'a.nrrd'])
@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_nonfinite_voxels(tmp_path, name, bad):
    arr = _ct()
    arr[1, 2, 3] = bad
    arr[4, 5, 6] = bad
    path = _write(tmp_path / name, arr)
    # force_ct: not the HU check, the finite check refuses
    msg = _refused(path, '2 of 432 voxels are NaN or infinite',
                   scan_checks=dict(force_ct=True))
    assert '(x, y, z) = (3, 2, 1)' in msg


def test_float64_nifti_nan(tmp_path):
    arr = _ct().astype(np.float64)
    arr[0, 0, 0] = np.nan
    path = _write(tmp_path / 'a.nii', arr)
    _refused(path, '1 of 432 voxels', '(0, 0, 0)')


# ------------------------------------ 3. not regular files, outside data
@pytest.mark.parametrize('name', ['a.nii', 'a.nii.gz', 'a.mhd', 'a.nrrd',
                                  'a.dcm'])
def test_fifo_volume(tmp_path, name):
    with fifo(tmp_path / name) as path:
        _refused(path, 'FIFO', 'not a regular file')


def test_fifo_raw_data_file(tmp_path):
    path = _write(tmp_path / 'a.mhd', _ct())
    os.remove(tmp_path / 'a.raw')
    with fifo(tmp_path / 'a.raw'):
        _refused(path, 'a.raw', 'FIFO')


def test_fifo_in_dicom_folder(tmp_path):
    _dicom(tmp_path / 's')
    with fifo(tmp_path / 's' / 'zz.dcm'):
        _refused(str(tmp_path / 's'), 'zz.dcm', 'FIFO')


def test_dicom_folder_link_leading_out(tmp_path):
    files = _dicom(tmp_path / 's')
    _dicom(tmp_path / 'other', n=1)
    outside = os.path.join(tmp_path, 'other', os.listdir(
        tmp_path / 'other')[0])
    os.symlink(outside, tmp_path / 's' / 'extra.dcm')
    _refused(str(tmp_path / 's'), 'extra.dcm', 'outside the folder')
    assert len(files) == 4


NRRD_HEADER = ('NRRD0004\ntype: float\ndimension: 3\n'
               'space: left-posterior-superior\nsizes: 9 8 6\n'
               'space directions: (1,0,0) (0,1,0) (0,0,1)\n'
               'kinds: domain domain domain\nendian: little\n'
               'encoding: raw\nspace origin: (0,0,0)\n')


@pytest.mark.parametrize('suffix', ['.nrrd', '.nhdr'])
@pytest.mark.parametrize('field', ['data file: ../outside.raw',
                                   'datafile: ../outside.raw',
                                   'data file: {abs}',
                                   'data file: LIST\n../outside.raw',
                                   'data file: ../outs%sde.raw 0 0 1'])
def test_nrrd_data_file_outside_folder(tmp_path, suffix, field):
    _ct().tofile(tmp_path / 'outside.raw')
    if '%s' in field:  # a printf pattern naming outside.raw
        field = 'data file: ../outs%dde.raw 0 0 1'
        _ct().tofile(tmp_path / 'outs0de.raw')
    (tmp_path / 'sub').mkdir()
    path = str(tmp_path / 'sub' / ('h' + suffix))
    text = NRRD_HEADER + field.format(abs=tmp_path / 'outside.raw') + '\n'
    open(path, 'w').write(text if 'LIST' in field else text + '\n')
    _refused(path, "NRRD field 'data file'", 'outside')
    if 'LIST' not in field and '%' not in field:  # one data file
        vol = load_ct_volume(  # the switch
            path, scan_checks=dict(allow_outside_data=True))
        assert vol.shape_zyx == (6, 8, 9)


def test_nrrd_data_file_inside_folder_loads(tmp_path):
    arr = _ct()
    arr.tofile(tmp_path / 'inside.raw')
    path = str(tmp_path / 'h.nhdr')
    open(path, 'w').write(NRRD_HEADER + 'data file: inside.raw\n\n')
    vol = load_ct_volume(path)
    assert vol.shape_zyx == (6, 8, 9)


def test_nrrd_data_file_link_leading_out(tmp_path):
    _ct().tofile(tmp_path / 'outside.raw')
    (tmp_path / 'sub').mkdir()
    os.symlink(tmp_path / 'outside.raw', tmp_path / 'sub' / 'in.raw')
    path = str(tmp_path / 'sub' / 'h.nhdr')
    open(path, 'w').write(NRRD_HEADER + 'data file: in.raw\n\n')
    _refused(path, "'in.raw'", 'outside')


def test_nrrd_fifo_data_file(tmp_path):
    path = str(tmp_path / 'h.nhdr')
    open(path, 'w').write(NRRD_HEADER + 'data file: d.raw\n\n')
    with fifo(tmp_path / 'd.raw'):
        _refused(path, 'd.raw', 'FIFO')


# ------------------------------------------------ 4. valid files load
@pytest.mark.parametrize('gz', [False, True])
def test_uint16_nifti_with_rescale_loads(tmp_path, gz):
    arr = _ct(dtype=np.float32).round()
    stored = (arr + 1024).astype(np.uint16)
    path = _nifti(tmp_path / ('a.nii.gz' if gz else 'a.nii'), stored, 1.0,
                  -1024.0, gz=gz)
    vol = load_ct_volume(path)
    _same_values(vol.array, arr)


def test_nibabel_style_nan_slope_means_no_rescale(tmp_path):
    """nibabel writes scl_slope = scl_inter = NaN for 'no scaling'."""
    arr = _ct()
    path = _nifti(tmp_path / 'a.nii', arr, float('nan'), float('nan'))
    vol = load_ct_volume(path)
    _same_values(vol.array, arr)


def test_trailing_bytes_under_a_slice_in_nifti_are_accepted(tmp_path):
    arr = _ct()
    path = _nifti(tmp_path / 'a.nii', arr)
    with open(path, 'ab') as f:
        f.write(b'\0' * 8)
    vol = load_ct_volume(path)
    _same_values(vol.array, arr)


def test_mha_and_mhd_exact_sizes_load(tmp_path):
    arr = _ct()
    for name in ('a.mha', 'b.mhd', 'c.nrrd'):
        vol = load_ct_volume(_write(tmp_path / name, arr))
        assert vol.shape_zyx == arr.shape


def test_real_volumes_still_load():
    from mmlesion.testing import shared_data_root
    root = shared_data_root()
    folder = None if root is None else root / 'ct_volumes' / \
        'totalsegmentator'
    if folder is None or not folder.is_dir():
        pytest.skip('real CT volumes ($MMLESION_SHARED_DATA) not available')
    assert load_ct_volume(folder / 'example_ct.nii.gz').shape_zyx == (
        112, 101, 122)
    assert load_ct_volume(folder / 'example_ct_dicom').shape_zyx[0] == 20


def test_copy_of_real_dicom_series_with_one_pixel_spacing_changed(tmp_path):
    from mmlesion.testing import shared_data_root
    root = shared_data_root()
    src = None if root is None else root / 'ct_volumes' / \
        'totalsegmentator' / 'example_ct_dicom'
    if src is None or not src.is_dir():
        pytest.skip('real CT DICOM series ($MMLESION_SHARED_DATA) not '
                    'available')
    dst = tmp_path / 'series'
    shutil.copytree(src, dst)
    name = sorted(os.listdir(dst))[7]
    ds = pydicom.dcmread(dst / name)
    ds.PixelSpacing = [float(v) * 1.1 for v in ds.PixelSpacing]
    ds.save_as(dst / name)
    _refused(str(dst), 'PixelSpacing (0028,0030)', name)


# ------------------------------------------ header claims vs data (item 2)
#: Voxels (z, y, x) of the small int16 CT of the MetaImage claim tests.
CLAIM_SHAPE = (3, 4, 5)


def _hu_int(dtype='<i2'):
    """A small integer CT in HU (air at the border), stored as ``dtype``."""
    rng = np.random.RandomState(0)
    hu = rng.randint(-1000, 1500, CLAIM_SHAPE)
    hu[:, 0] = -1000
    return hu.astype(dtype)


def _mhd_header(path, data_file, dims='5 4 3', element='MET_SHORT',
                extra=''):
    path.write_text(
        'ObjectType = Image\nNDims = 3\n'
        f'DimSize = {dims}\nElementType = {element}\n{extra}'
        'ElementSpacing = 0.7 0.7 2\n'
        f'ElementDataFile = {data_file}\n')
    return str(path)


def _slice_files(folder, hu, numbers=None):
    """One raw file per slice: ``slice000.raw`` ..."""
    for k, z in enumerate(numbers if numbers is not None else
                          range(hu.shape[0])):
        hu[k].tofile(str(folder / f'slice{z:03d}.raw'))


@pytest.mark.parametrize('stored,flag', [
    ('<i2', 'BinaryDataByteOrderMSB = True\n'),
    ('<i2', 'ElementByteOrderMSB = True\n'),
    ('>i2', 'BinaryDataByteOrderMSB = False\n'),
    ('>i2', ''),  # no flag: little-endian
    ('<i4', 'BinaryDataByteOrderMSB = True\n'),
])
def test_byte_order_flag_contradicting_the_data(tmp_path, stored, flag):
    hu = _hu_int(stored)
    element = 'MET_INT' if stored[-1] == '4' else 'MET_SHORT'
    hu.tofile(str(tmp_path / 'scan.raw'))
    path = _mhd_header(tmp_path / 'scan.mhd', 'scan.raw', element=element,
                       extra=flag)
    field = flag.strip() or 'BinaryDataByteOrderMSB absent'
    msg = _refused(path, field, 'contradicts the data', '--force-ct')
    assert ('big-endian' in msg) == ('True' in flag), msg
    # the switch reads it anyway, as the header says
    load_ct_volume(path, scan_checks=dict(force_ct=True))


@pytest.mark.parametrize('stored,flag', [
    ('>i2', 'BinaryDataByteOrderMSB = True\n'),
    ('>i2', 'ElementByteOrderMSB = True\n'),
    ('<i2', 'BinaryDataByteOrderMSB = False\n'),
    ('<i2', ''),
])
def test_byte_order_flag_matching_the_data_loads(tmp_path, stored, flag):
    hu = _hu_int(stored)
    hu.tofile(str(tmp_path / 'scan.raw'))
    path = _mhd_header(tmp_path / 'scan.mhd', 'scan.raw', extra=flag)
    _same_values(load_ct_volume(path).array, hu)


def test_byte_order_of_raw_unsigned_values_is_not_mistaken(tmp_path):
    """Raw unsigned scanner values (HU + 1024) in the right byte order:
    refused as not HU by the existing check, not as a byte order error."""
    raw = (_hu_int().astype(np.int32) + 1024).astype('>u2')
    raw.tofile(str(tmp_path / 'scan.raw'))
    path = _mhd_header(tmp_path / 'scan.mhd', 'scan.raw',
                       element='MET_USHORT',
                       extra='BinaryDataByteOrderMSB = True\n')
    msg = _refused(path, 'no voxel below -200 HU')
    assert 'byte order' not in msg


# ----------------------------------------------------------- file patterns
@pytest.mark.parametrize('pattern', [
    'slice%03d.raw 0 2 1',
    'slice%03d.raw 0',  # MetaIO: min given, one file per slice, step 1
])
def test_file_pattern_loads(tmp_path, pattern):
    hu = _hu_int()
    _slice_files(tmp_path, hu)
    path = _mhd_header(tmp_path / 'scan.mhd', pattern)
    _same_values(load_ct_volume(path).array, hu)


def test_file_pattern_with_step_loads(tmp_path):
    hu = _hu_int()
    _slice_files(tmp_path, hu, numbers=(10, 15, 20))
    _same_values(load_ct_volume(_mhd_header(
        tmp_path / 'scan.mhd', 'slice%03d.raw 10 20 5')).array, hu)


@pytest.mark.parametrize('pattern,words', [
    ('slice%03d.raw 0 2 0', ['ElementDataFile', 'step 0', 'not positive']),
    ('slice%03d.raw 2 0 -1', ['ElementDataFile', 'step -1']),
    # min max without step: MetaIO steps (max - min) / DimSize = 0 and
    # crashes the process (floating point exception)
    ('slice%03d.raw 0 2', ['ElementDataFile', 'step 0']),
    ('slice%03d.raw 0 100000000 1',
     ['ElementDataFile', 'names 100000001 files', 'DimSize 5 4 3']),
    ('slice%03d.raw 0 1 1', ['ElementDataFile', 'names 2 files']),
    ('slice%03d.raw zero 2 1', ['ElementDataFile', "'zero'"]),
    ('slice%d%d.raw 0 2 1', ['ElementDataFile', 'printf format']),
])
def test_file_pattern_that_cannot_be_right(tmp_path, pattern, words):
    _slice_files(tmp_path, _hu_int())
    _refused(_mhd_header(tmp_path / 'scan.mhd', pattern), *words)


def test_file_pattern_count_other_than_dimsize_with_matching_bytes(
        tmp_path):
    """3 files of 40 bytes for DimSize 5 2 6 (120 bytes in all): ITK reads
    one 5 x 2 slice per file and leaves 3 slices uninitialised."""
    _slice_files(tmp_path, _hu_int())
    _refused(_mhd_header(tmp_path / 'scan.mhd', 'slice%03d.raw 0 2 1',
                         dims='5 2 6'),
             'ElementDataFile', 'names 3 files', 'announces 6 slices')


def test_file_pattern_with_absurd_dimsize(tmp_path):
    _slice_files(tmp_path, _hu_int())
    _refused(_mhd_header(tmp_path / 'scan.mhd', 'slice%03d.raw 0',
                         dims='1 1 2000000000'),
             'ElementDataFile', 'file pattern', 'DimSize = 1 1 2000000000')


@pytest.mark.parametrize('listing', ['slice%03d.raw 0 2 1', 'LIST'])
def test_slice_file_of_other_length_is_named(tmp_path, listing):
    """One slice file short (the others long enough to make up the
    total), then one long: the error names that slice file."""
    hu = _hu_int()
    _slice_files(tmp_path, hu)
    header = 'LIST\n' + ''.join(f'slice{k:03d}.raw\n' for k in range(3)) \
        if listing == 'LIST' else listing
    path = _mhd_header(tmp_path / 'scan.mhd', header)
    short = tmp_path / 'slice001.raw'
    short.write_bytes(hu[1].tobytes()[:-8])
    (tmp_path / 'slice002.raw').write_bytes(hu[2].tobytes() + b'\0' * 8)
    msg = _refused(path, 'truncated', 'one of the 3 slice files')
    assert msg.startswith(f'{short}: '), msg
    short.write_bytes(hu[1].tobytes())
    msg = _refused(path, 'one slice a file')
    assert msg.startswith(f'{tmp_path / "slice002.raw"}: '), msg


def test_file_pattern_with_missing_files(tmp_path):
    hu = _hu_int()
    _slice_files(tmp_path, hu[:2])  # slice002.raw is missing
    _refused(_mhd_header(tmp_path / 'scan.mhd', 'slice%03d.raw 0 2 1'),
             'ElementDataFile', 'names 3 files', '1 of them are missing',
             'slice002.raw', exc=FileNotFoundError)
