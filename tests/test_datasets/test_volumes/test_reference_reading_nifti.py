# Copyright (c) mmlesion contributors. All rights reserved.
"""NIfTI CT reading against an independent reference, class by class.

The reference is nibabel: its affine by NIfTI-1's rules (``sform`` when
``sform_code > 0``, else ``qform``; ``get_best_affine``, RAS) turned to LPS,
and its voxels scaled by ``scl_slope`` / ``scl_inter`` (``get_fdata``).
Every variant starts from a crop of a real CT (the shared data) and is
written with nibabel's header struct, field by field. Where the header is
unambiguous, :func:`load_ct_volume` must equal the reference voxel for
voxel and in world millimetres: every reference voxel centre, mapped to the
world and into the returned volume's index space, lands on a voxel holding
the reference's value. Where readers differ (or the header is invalid), it
must refuse in one line naming the file, the field and what to do.
"""
import gzip
import itertools
import logging
import math
import os
import struct

import numpy as np
import pytest

from mmlesion.datasets.volumes import VolumeOptions, load_ct_volume
from mmlesion.testing import shared_data_root

nib = pytest.importorskip('nibabel')

#: The real CT cropped for the variants (x, y, z voxels of the file).
_CROP = (slice(0, 24), slice(30, 54), slice(10, 18))
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Words of a refusal's "what to do".
_ADVICE = ('set ', 'save ', 'give ', 'resample', 'pass ')


@pytest.fixture(scope='module')
def base():
    """(24, 24, 8) int16 HU, x fastest as stored, from a real CT."""
    root = shared_data_root()
    path = None if root is None else (
        root / 'ct_volumes' / 'totalsegmentator' / 'example_ct_sm.nii.gz')
    if path is None or not path.is_file():
        pytest.skip('real CT (MMLESION_SHARED_DATA/ct_volumes/'
                    'totalsegmentator) not available')
    data = np.asarray(nib.load(str(path)).dataobj)[_CROP]
    assert data.dtype == np.int16 and data.min() < -900  # holds air
    return data.copy()


@pytest.fixture(autouse=True)
def _quiet_nibabel():
    """nibabel logs each header field it would fix; the tests name them."""
    logger = logging.getLogger('nibabel.global')
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def _random_affine(rng: np.random.Generator) -> np.ndarray:
    """An RAS voxel -> mm affine: a random signed axis permutation (proper
    or not) turned by under 0.5 degrees, voxel sizes 0.4..5 mm, an origin
    within 300 mm."""
    perm = np.eye(3)[rng.permutation(3)] * rng.choice([-1.0, 1.0], 3)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = math.radians(rng.uniform(0, 0.5))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]],
                  [-axis[1], axis[0], 0]])
    turn = np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k
    affine = np.eye(4)
    affine[:3, :3] = turn @ perm @ np.diag(rng.uniform(0.4, 5.0, 3))
    affine[:3, 3] = rng.uniform(-300, 300, 3)
    return affine


def _header(data: np.ndarray, affine: np.ndarray, qform_code: int = 1,
            sform_code: int = 1, endian: str = '<'):
    """A NIfTI-1 header for ``data`` with its qform and / or sform set to
    ``affine`` (codes 0: that transform left unset)."""
    hdr = nib.Nifti1Header(endianness=endian)
    hdr.set_data_shape(data.shape)
    hdr.set_data_dtype(data.dtype)
    hdr.set_zooms(tuple(np.linalg.norm(affine[:3, :3], axis=0)) +
                  (1.0, ) * (data.ndim - 3))
    if qform_code:
        hdr.set_qform(affine, int(qform_code))
    if sform_code:
        hdr.set_sform(affine, int(sform_code))
    hdr['qform_code'], hdr['sform_code'] = qform_code, sform_code
    return hdr


def _write(path, data: np.ndarray, hdr, extension: bytes = b'',
           padding: int = 0) -> str:
    """The header (its fields as they are, unchecked), an extension flag
    (and ``extension``), ``padding`` zero bytes and ``data`` as the header's
    type, x fastest. A ``.hdr`` path: a NIfTI-1 pair (magic ``ni1``), the
    voxels after ``padding`` bytes of the ``.img``."""
    path = str(path)
    pair = path.endswith('.hdr')
    hdr['vox_offset'] = padding if pair else 352 + len(extension) + padding
    if pair:
        hdr['magic'] = b'ni1'
    flag = b'\1\0\0\0' if extension else b'\0\0\0\0'
    head = hdr.binaryblock + flag + extension
    voxels = b'\0' * padding + np.asarray(data).astype(
        hdr.get_data_dtype()).tobytes('F')
    files = [(path, head), (path[:-4] + '.img', voxels)] if pair else [
        (path, head + voxels)]
    for name, raw in files:
        with (gzip.open if name.endswith('.gz') else open)(name, 'wb') as f:
            f.write(raw)
    return path


def _reference(path: str):
    """nibabel's reading: 3D voxels (float64, scaled) and LPS affine."""
    img = nib.load(path)
    data = img.get_fdata()
    data = data.reshape(data.shape[:3] + (1, ) * (3 - data.ndim))
    return data, _LPS @ img.header.get_best_affine()


def _assert_reads_as_reference(path: str, **kwargs) -> None:
    vol = load_ct_volume(path, **kwargs)
    data, affine = _reference(path)
    ijk = np.indices(data.shape).reshape(3, -1).T
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    zyx = vol.world_to_voxel(world)
    np.testing.assert_allclose(zyx, np.round(zyx), atol=1e-3, err_msg=path)
    zyx = np.round(zyx).astype(int)
    assert vol.array.size == data.size, path
    assert np.all(zyx >= 0) and np.all(zyx < vol.array.shape), path
    assert len(np.unique(zyx, axis=0)) == data.size, path
    np.testing.assert_allclose(
        vol.array[tuple(zyx.T)], data[tuple(ijk.T)], rtol=1e-6, atol=1e-4,
        err_msg=path)
    np.testing.assert_allclose(vol.voxel_to_world(zyx), world, atol=1e-3,
                               err_msg=path)


def _assert_refused(path: str, *words: str, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        load_ct_volume(path, **kwargs)
    msg = str(info.value)
    assert msg.startswith(path + ': ') and '\n' not in msg, msg
    for word in words:
        assert word in msg, (word, msg)
    assert any(a in msg.lower() for a in _ADVICE), msg
    return msg


# ------------------------------------------------------------- data types
#: (type, always scaled: the type cannot hold HU itself)
_TYPES = [(np.int16, False), (np.int32, False), (np.int64, False),
          (np.float32, False), (np.float64, False), (np.uint8, True),
          (np.int8, True), (np.uint16, True), (np.uint32, True)]


def _stored(hu: np.ndarray, dtype, slope: float, inter: float):
    """What a file of ``dtype`` with this rescale stores for ``hu``."""
    values = (hu - inter) / slope
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.round(values)
        assert info.min <= values.min() and values.max() <= info.max
    return values.astype(dtype)


@pytest.mark.parametrize('dtype,scaled_only', _TYPES)
def test_data_types_and_rescale(tmp_path, base, dtype, scaled_only):
    rng = np.random.default_rng(int(np.dtype(dtype).num))
    hu = base.astype(np.float64) + (
        rng.uniform(0, 1, base.shape) if dtype in (np.float32, np.float64)
        else 0)
    low = max((float(hu.max() - hu.min()) + 6) /
              (2**(8 * np.dtype(dtype).itemsize) - 4), 0.05)
    unsigned = np.issubdtype(dtype, np.unsignedinteger)
    middle = float(hu.min() + hu.max()) / 2
    rescales = []
    for sign in (1.0, 1.0, -1.0):  # a negative slope flips the values
        zero = float(hu.min() if sign > 0 else hu.max())
        rescales.append((sign * rng.uniform(low, max(4.0, 2 * low)),
                         zero - sign * rng.uniform(0, 3) if unsigned else
                         middle + rng.uniform(-3, 3) if scaled_only else
                         rng.uniform(-50, 50)))
    if not scaled_only:  # "no rescale" as writers spell it
        rescales += [(float('nan'), float('nan')), (0.0, 0.0), (1.0, 0.0),
                     (0.0, float('nan'))]
    for n, ((slope, inter), ext) in enumerate(
            itertools.product(rescales, ('.nii', '.nii.gz', '.hdr'))):
        scale = slope if slope == slope and slope != 0 else 1.0
        offset = inter if scale != 1.0 or inter == inter else 0.0
        data = _stored(hu, dtype, scale, offset)
        hdr = _header(data, _random_affine(rng), 1, int(rng.integers(0, 3)))
        hdr['scl_slope'], hdr['scl_inter'] = slope, inter
        _assert_reads_as_reference(_write(tmp_path / f'{n}{ext}', data, hdr))


@pytest.mark.parametrize('dtype,code', [
    (np.complex64, 32), (np.complex128, 1792),
    (np.dtype([('R', 'u1'), ('G', 'u1'), ('B', 'u1')]), 128)])
def test_non_scalar_types_refused(tmp_path, base, dtype, code):
    # ITK drops a complex voxel's imaginary part, silently
    data = (base + 1j * base.astype(np.float32)).astype(dtype) if \
        np.dtype(dtype).kind == 'c' else np.zeros(base.shape, dtype)
    hdr = _header(data, np.diag([0.8, 0.8, 2.5, 1.0]))
    assert hdr['datatype'] == code
    _assert_refused(_write(tmp_path / 'a.nii', data, hdr),
                    f'datatype = {code}')


@pytest.mark.parametrize('slope', [0.0, float('nan')])
@pytest.mark.parametrize('ext', ['.nii.gz', '.hdr'])
def test_intercept_without_slope_refused(tmp_path, base, slope, ext):
    # NIfTI (and nibabel) ignore scl_inter without a slope; ITK adds it
    hdr = _header(base, np.diag([0.8, 0.8, 2.5, 1.0]))
    hdr['scl_slope'], hdr['scl_inter'] = slope, -1024.0
    path = _write(tmp_path / ('a' + ext), base, hdr)
    _assert_refused(path, 'scl_slope', 'scl_inter = -1024')


# ------------------------------------------------------------- dimensions
def test_dimensions(tmp_path, base):
    rng = np.random.default_rng(1)
    readable = {'3d': base, '4d_one_time_point': base[..., None],
                '5d_ones': base[..., None, None], '3d_dims_beyond': base}
    for (name, data), ext in itertools.product(readable.items(),
                                               ('.nii', '.nii.gz')):
        hdr = _header(data, _random_affine(rng))
        if name == '3d_dims_beyond':  # dim[4..] past dim[0] = 3: unused
            hdr['dim'][4:6] = 5, 7
        _assert_reads_as_reference(_write(tmp_path / (name + ext), data,
                                          hdr))
    one = base[..., 3:4]
    path = _write(tmp_path / 'one_slice.nii', one,
                  _header(one, _random_affine(rng)))
    _assert_reads_as_reference(
        path, options=VolumeOptions(allow_single_slice=True))
    _assert_refused(path, 'a 2D image', 'allow_single_slice')


@pytest.mark.parametrize('shape,field', [
    ((24, 24), 'dim[0] = 2'), ((24, 24, 8, 2), 'dim[4] = 2'),
    ((24, 24, 8, 5), 'dim[4] = 5'), ((24, 24, 8, 1, 3), 'dim[5] = 3')])
def test_dimensions_refused(tmp_path, base, shape, field):
    data = np.resize(base, shape)
    hdr = _header(data.reshape(shape + (1, ) * (3 - len(shape))),
                  np.diag([0.8, 0.8, 2.5, 1.0]))
    hdr['dim'][0] = len(shape)
    _assert_refused(_write(tmp_path / 'a.nii', data, hdr), field)


# ------------------------------------------------- pixdim signs and zeros
def test_qfac_both_signs_and_zero_read_as_reference(tmp_path, base):
    rng = np.random.default_rng(2)
    seen = set()
    for n in range(16):
        affine = _random_affine(rng)
        hdr = _header(base, affine, 1, 0)
        qfac = float(hdr['pixdim'][0])
        seen.add(qfac)
        if qfac == 1 and n % 2:
            hdr['pixdim'][0] = 0.0  # NIfTI: 0 is taken as 1
            seen.add(0.0)
        _assert_reads_as_reference(_write(tmp_path / f'{n}.nii', base, hdr))
    assert seen == {-1.0, 0.0, 1.0}
    # qfac matters to the qform only: an sform alone ignores it
    hdr = _header(base, _random_affine(rng), 0, 1)
    hdr['pixdim'][0] = 2.5
    _assert_reads_as_reference(_write(tmp_path / 's.nii', base, hdr))


@pytest.mark.parametrize('qfac', [2.0, -0.5, float('nan')])
def test_qfac_other_values_refused(tmp_path, base, qfac):
    hdr = _header(base, np.diag([0.8, 0.8, 2.5, 1.0]), 1, 0)
    hdr['pixdim'][0] = qfac
    _assert_refused(_write(tmp_path / 'a.nii', base, hdr), 'pixdim[0]')


def test_negative_zero_nonfinite_pixdim_refused(tmp_path, base):
    # NIfTI's voxel widths are positive; readers take a negative one as 1,
    # as its absolute value (nibabel) or as it is (ITK flips the axis)
    rng = np.random.default_rng(3)
    n = 0
    for codes, axis, value in itertools.product(
            [(1, 0), (0, 1), (1, 1), (2, 4)], (1, 2, 3),
            ('negative', 0.0, float('nan'), float('inf'))):
        hdr = _header(base, _random_affine(rng), *codes)
        hdr['pixdim'][axis] = -hdr['pixdim'][axis] if value == 'negative' \
            else value
        path = _write(tmp_path / f'{n}.nii.gz', base, hdr)
        _assert_refused(path, f'pixdim[{axis}]')
        n += 1


def test_negative_pixdim3_with_qform_only_not_flipped(tmp_path, base):
    """ITK read it with z flipped, without a word."""
    hdr = _header(base, np.diag([0.8, 0.8, 2.5, 1.0]), 1, 0)
    hdr['pixdim'][3] = -2.5
    _assert_refused(_write(tmp_path / 'a.nii', base, hdr), 'pixdim[3]')


def test_pixdim_other_than_sform_voxel_sizes(tmp_path, base, capfd):
    rng = np.random.default_rng(4)
    for n in range(8):
        affine = _random_affine(rng)
        hdr = _header(base, affine, 0, int(rng.integers(1, 6)))
        zooms = np.array(hdr['pixdim'][1:4], dtype=float)
        axis = int(rng.integers(0, 3))
        far = n % 2 == 0  # 1.5 voxels apart at the far corner, or 0.01
        gap = 1.5 if far else 0.01
        zooms[axis] *= 1 + gap / (base.shape[axis] - 1) * (
            zooms.min() / zooms[axis])
        hdr['pixdim'][1:4] = zooms
        path = _write(tmp_path / f'{n}.nii', base, hdr)
        if far:  # ITK takes pixdim's sizes, NIfTI the sform's
            _assert_refused(path, 'pixdim[1..3]', 'sform')
        else:
            _assert_reads_as_reference(path)
    # nor does ITK warn of the sform's "unexpected scales": they are used
    assert 'unexpected scales' not in capfd.readouterr().err


# ------------------------------------------------- qform / sform and codes
def test_transform_codes(tmp_path, base):
    rng = np.random.default_rng(5)
    codes = (0, 1, 2, 3, 4, 5)
    for qcode, scode, ext in itertools.product(codes, codes,
                                               ('.nii', '.hdr')):
        hdr = _header(base, _random_affine(rng), qcode, scode)
        path = _write(tmp_path / f'{qcode}{scode}{ext}', base, hdr)
        if qcode == scode == 0:  # NIfTI's method 1: orientation unknown
            _assert_refused(path, 'qform_code = 0', 'sform_code = 0',
                            "scanner's orientation")
        else:
            _assert_reads_as_reference(path)
    for field, code in itertools.product(('qform_code', 'sform_code'),
                                         (-1, 6, 7, 255)):
        hdr = _header(base, _random_affine(rng), 1, 1)
        hdr[field] = code
        path = _write(tmp_path / f'{field}{code}.nii', base, hdr)
        _assert_refused(path, f'{field} = {code}')


def test_qform_sform_disagreement(tmp_path, base):
    """NIfTI takes the sform; readers that take the qform (ITK does when
    sform_code is 2) put the voxels elsewhere: within 0.5 voxel it reads as
    the sform (the reference), far apart it is refused."""
    rng = np.random.default_rng(6)
    for n in range(12):
        affine = _random_affine(rng)
        hdr = _header(base, affine, int(rng.integers(1, 6)),
                      int(rng.integers(1, 6)))
        moved = affine.copy()
        far = n % 2 == 0
        step = np.linalg.norm(affine[:3, :3], axis=0).min()
        direction = rng.normal(size=3)
        moved[:3, 3] += direction / np.linalg.norm(direction) * step * (
            3.0 if far else 0.1)
        hdr.set_sform(moved, int(hdr['sform_code']))
        path = _write(tmp_path / f'{n}{(".nii", ".hdr")[n // 2 % 2]}', base,
                      hdr)
        if far:
            _assert_refused(path, 'qform_code', 'sform_code',
                            'would use the sform')
        else:
            _assert_reads_as_reference(path)


def test_sform_float_rounding_read_as_reference(tmp_path, base):
    """An sform whose axes are perpendicular up to float rounding (1e-4)
    is no shear: read as the reference."""
    rng = np.random.default_rng(9)
    for n, shear in enumerate((1e-7, 1e-6, 1e-5, 5e-5)):
        affine = _random_affine(rng)
        hdr = _header(base, affine, 0, 1)
        column = int(rng.integers(0, 3))
        other = affine[:3, (column + 1) % 3]
        affine[:3, column] += shear * other * (
            np.linalg.norm(affine[:3, column]) / np.linalg.norm(other))
        hdr.set_sform(affine, 1)
        _assert_reads_as_reference(_write(tmp_path / f'{n}.nii', base, hdr))


def test_broken_transforms_refused(tmp_path, base):
    rng = np.random.default_rng(7)
    cases = []
    hdr = _header(base, _random_affine(rng), 1, 0)
    hdr['quatern_b'], hdr['quatern_c'] = 0.9, 0.8  # b^2 + c^2 > 1
    cases.append((hdr, 'quatern_b/c/d'))
    hdr = _header(base, _random_affine(rng), 1, 0)
    hdr['qoffset_y'] = float('nan')
    cases.append((hdr, 'qoffset_x/y/z'))
    for row, col, value in [(0, 1, 0.3), (2, 0, -0.2)]:
        hdr = _header(base, np.diag([0.8, 0.8, 2.5, 1.0]), 0, 1)
        hdr[f'srow_{"xyz"[row]}'][col] = value  # sheared
        cases.append((hdr, 'srow_x/y/z'))
    hdr = _header(base, np.diag([0.8, 0.8, 2.5, 1.0]), 0, 1)
    hdr['srow_z'][2] = 0.0  # index z goes nowhere
    cases.append((hdr, 'srow_x/y/z'))
    hdr = _header(base, np.diag([0.8, 0.8, 2.5, 1.0]), 1, 2)
    hdr['srow_x'][3] = float('inf')
    cases.append((hdr, 'srow_x/y/z'))
    for n, (hdr, field) in enumerate(cases):
        _assert_refused(_write(tmp_path / f'{n}.nii', base, hdr), field)


@pytest.mark.parametrize('units,readable', [
    (0, True), (2, True), (2 | 8, True), (2 | 24, True), (4, True),
    (1, False), (3, False), (1 | 8, False), (3 | 16, False)])
def test_spatial_units(tmp_path, base, units, readable):
    """mm (2) or unknown (0): as the reference; meters (1) and microns (3)
    are refused: ITK scales them to mm, nibabel does not. Time units
    (bits 8..32) do not matter."""
    hdr = _header(base, _random_affine(np.random.default_rng(units)))
    hdr['xyzt_units'] = units
    path = _write(tmp_path / 'a.nii', base, hdr)
    if readable:
        _assert_reads_as_reference(path)
    else:
        _assert_refused(path, f'xyzt_units = {units}')


# ----------------------------------- byte order, compression, file layout
def test_byte_order_compression_and_extensions(tmp_path, base):
    rng = np.random.default_rng(8)
    n = 0
    # extended: one extension; padding: zero bytes before the voxels
    # (without extensions: nibabel would read them as one)
    for endian, ext, dtype, (extended, padding) in itertools.product(
            '<>', ('.nii', '.nii.gz'), (np.int16, np.float32),
            ((0, 0), (1, 0), (0, 48))):
        data = base.astype(dtype)
        hdr = _header(data, _random_affine(rng), 1, 1, endian)
        # one 16-byte comment extension (esize, ecode 6, 8 bytes of text)
        extension = struct.pack(endian + 'ii', 16, 6) + b'CT scan\0' \
            if extended else b''
        path = _write(tmp_path / f'{n}{ext}', data, hdr, extension, padding)
        _assert_reads_as_reference(path)
        n += 1


@pytest.mark.parametrize('offset', [0, 100, 348])
def test_vox_offset_inside_header_refused(tmp_path, base, offset):
    # the voxels follow the 352 bytes; nibabel reads from 0 (header bytes
    # as voxels) or refuses 348, ITK reads other bytes
    hdr = _header(base, np.diag([0.8, 0.8, 2.5, 1.0]))
    path = _write(tmp_path / 'a.nii', base, hdr)
    with open(path, 'r+b') as f:
        f.seek(108)
        f.write(struct.pack('<f', offset))
    _assert_refused(path, f'vox_offset = {offset}')


def test_nifti2_and_bad_magic_refused(tmp_path, base):
    hdr2 = nib.Nifti2Header()
    hdr2.set_data_shape(base.shape)
    hdr2.set_data_dtype(base.dtype)
    hdr2.set_sform(np.diag([0.8, 0.8, 2.5, 1.0]), 1)
    hdr2['vox_offset'] = 544
    path = str(tmp_path / 'two.nii')
    with open(path, 'wb') as f:
        f.write(hdr2.binaryblock + b'\0' * 4 + base.tobytes('F'))
    _assert_refused(path, 'NIfTI-2', 'sizeof_hdr = 540', 'NIfTI-1')
    hdr = _header(base, np.diag([0.8, 0.8, 2.5, 1.0]))
    hdr['magic'] = b'ni1'  # the two-file (.hdr + .img) magic
    _assert_refused(_write(tmp_path / 'pair.nii', base, hdr), 'magic')


# ------------------------------------------------ .hdr / .img pairs
def test_pair_files_and_analyze(tmp_path, base, log_messages):
    """A NIfTI-1 pair is read by the NIfTI rules whichever file is named
    (the rules themselves: the tests above, also on pairs); a missing or
    short ``.img`` is refused naming it; an ANALYZE 7.5 pair (no NIfTI
    magic: no position in the patient) is read with a warning, unless it
    holds SPM's scale factor (readers differ)."""
    rng = np.random.default_rng(12)
    hdr = _header(base, _random_affine(rng), 1, 2)
    path = _write(tmp_path / 'p.hdr', base, hdr)
    _assert_reads_as_reference(path)
    _assert_reads_as_reference(path[:-4] + '.img')
    img = path[:-4] + '.img'
    data = open(img, 'rb').read()
    open(img, 'wb').write(data[:-10])
    with pytest.raises(ValueError, match=f'{img}: truncated'):
        load_ct_volume(path)
    os.remove(img)
    with pytest.raises(FileNotFoundError, match=f'missing: {img}'):
        load_ct_volume(path)
    analyze = str(tmp_path / 'a.hdr')
    nib.save(nib.AnalyzeImage(base, np.diag([0.8, 0.8, 2.5, 1.0])), analyze)
    log_messages.clear()
    vol = load_ct_volume(analyze)
    np.testing.assert_array_equal(np.sort(vol.array, axis=None),
                                  np.sort(base, axis=None))
    said = [m for m in log_messages if 'ANALYZE 7.5' in m]
    assert len(said) == 1 and 'no position or orientation' in said[0], said
    # SPM's scale in funused1: nibabel's SPM reader applies it, ITK not
    spm = nib.Spm99AnalyzeImage(base, np.diag([0.8, 0.8, 2.5, 1.0]))
    spm.header['scl_slope'] = 2.0
    nib.save(spm, str(tmp_path / 'spm.hdr'))
    _assert_refused(str(tmp_path / 'spm.hdr'), 'funused1 = 2')
