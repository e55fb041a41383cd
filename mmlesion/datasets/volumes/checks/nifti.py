# Copyright (c) mmlesion contributors. All rights reserved.
"""Checks of a NIfTI file against its own header, before ITK reads it.

ITK pads a truncated NIfTI with zeros and turns NaN voxels into 0.
:func:`read_nifti_header` reads the header alone; the length check counts
stored (not scaled) voxels, and the finite check streams the voxel bytes
without keeping them. :func:`check_nifti_header` refuses what ITK cannot
read as one 3D volume of real numbers. Where the voxels lie is
:mod:`.nifti_geometry`'s. Every refusal names the file and the field.
"""
import gzip
import logging
import math
import os.path as osp
import struct
import zlib
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
from mmengine.logging import print_log

from .files import nonfinite_error, size_mismatch, truncated

#: Bytes streamed at a time when counting a gzipped NIfTI.
_CHUNK = 1 << 20

#: How close ``quatern_b**2 + quatern_c**2 + quatern_d**2`` may come to 1
#: (or exceed it) and be taken as 1 (float32 rounding; nibabel's threshold).
QUATERN_TOL = 3 * float(np.finfo(np.float32).eps)

#: NIfTI datatype code -> (bits per voxel, numpy type; None: not scalar
#: real).
_NIFTI_TYPES: Dict[int, Tuple[int, Optional[str]]] = {
    2: (8, 'u1'), 4: (16, 'i2'), 8: (32, 'i4'), 16: (32, 'f4'),
    32: (64, None), 64: (64, 'f8'), 128: (24, None), 256: (8, 'i1'),
    512: (16, 'u2'), 768: (32, 'u4'), 1024: (64, 'i8'), 1280: (64, 'u8'),
    1536: (128, None), 1792: (128, None), 2048: (256, None),
    2304: (32, None)}
#: The NIfTI data types not read as one real number per voxel, by name.
_NONSCALAR_TYPES = {32: 'complex64', 128: 'RGB24', 1536: 'float128',
                    1792: 'complex128', 2048: 'complex256', 2304: 'RGBA32'}


@dataclass
class NiftiHeader:
    """What a NIfTI-1 / NIfTI-2 header says about the stored voxels.

    Attributes:
        sizes (tuple[int]): ``dim[1..dim[0]]``.
        datatype (int): the stored type code.
        bitpix (int): bits per stored voxel.
        vox_offset (int): byte offset of the voxels.
        pixdim (tuple[float]): ``pixdim[1..3]``.
        scl_slope (float): rescale slope (0 or NaN: none).
        scl_inter (float): rescale intercept.
        endian (str): ``'<'`` or ``'>'``.
        qform_code (int): 0 (unknown) or the qform's space code.
        sform_code (int): 0 (unknown) or the sform's space code.
        qform (np.ndarray, optional): (3, 4) voxel -> RAS mm of the qform.
        sform (np.ndarray, optional): (3, 4) voxel -> RAS mm of the sform.
        header_size (int): ``sizeof_hdr``: 348 (NIfTI-1) or 540 (NIfTI-2).
        magic (bytes): the ``magic`` field (``b'n+1'`` for NIfTI-1).
        qfac (float): ``pixdim[0]``, the qform's z sign.
        quatern (tuple[float]): quatern_b, c, d, qoffset_x, y, z.
        xyzt_units (int): the units field (spatial unit: ``& 7``; NIfTI-1
            only, 0 for NIfTI-2).
        data_path (str): the file holding the voxels: the file itself, or
            the ``.img`` of a ``.hdr`` / ``.img`` pair.
    """
    sizes: Tuple[int, ...]
    datatype: int
    bitpix: int
    vox_offset: int
    pixdim: Tuple[float, ...]
    scl_slope: float
    scl_inter: float
    endian: str
    qform_code: int = 0
    sform_code: int = 0
    qform: Optional[np.ndarray] = None
    sform: Optional[np.ndarray] = None
    header_size: int = 348
    magic: bytes = b'n+1'
    qfac: float = 1.0
    quatern: Tuple[float, ...] = (0., ) * 6
    xyzt_units: int = 0
    data_path: str = ''

    @property
    def pair(self) -> bool:
        """Whether the header and the voxels are two files."""
        return bool(self.data_path) and not self.data_path.lower().endswith(
            _SINGLE_SUFFIXES)

    @property
    def analyze(self) -> bool:
        """An ANALYZE 7.5 header (a pair without NIfTI's magic)."""
        return self.pair and self.magic not in _MAGICS

    @property
    def data_bytes(self) -> int:
        """Bytes of the stored (unscaled) voxels."""
        return math.prod(self.sizes) * self.bitpix // 8

    @property
    def plane_bytes(self) -> int:
        """Bytes of one slice (the first two dimensions)."""
        return math.prod(self.sizes[:2]) * self.bitpix // 8


#: Where the transform fields start, by header size: (qform_code offset,
#: code format, quatern_b offset, float format).
_XFORM_FIELDS = {348: (252, 'h', 256, 'f'), 540: (344, 'i', 352, 'd')}


def _quatern_affine(quatern: Tuple[float, ...],
                    pixdim: Tuple[float, ...]) -> np.ndarray:
    """The qform as a (3, 4) matrix (as ``nifti_quatern_to_mat44``).

    Args:
        quatern (tuple[float]): quatern_b, c, d, qoffset_x, y, z.
        pixdim (tuple[float]): pixdim[0..3] (pixdim[0] is qfac).
    """
    b, c, d = quatern[:3]
    norm2 = b * b + c * c + d * d
    if 1.0 - norm2 < QUATERN_TOL and norm2 > 0:
        # a half turn within float32 rounding of b, c, d: a = 0 and (b, c,
        # d) normalised (nibabel's threshold; nifti1_io.c's is 1e-7)
        b, c, d = (v / math.sqrt(norm2) for v in (b, c, d))
        a = 0.0
    else:
        a = math.sqrt(1.0 - norm2)
    rot = np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d),
                     2 * (b * d + a * c)],
                    [2 * (b * c + a * d), a * a + c * c - b * b - d * d,
                     2 * (c * d - a * b)],
                    [2 * (b * d - a * c), 2 * (c * d + a * b),
                     a * a + d * d - c * c - b * b]])
    scale = [p if 0 < p < math.inf else 1.0 for p in pixdim[1:4]]
    scale[2] *= -1.0 if pixdim[0] < 0 else 1.0
    return np.concatenate([rot * np.array(scale), np.array(
        quatern[3:6], dtype=float)[:, None]], axis=1)


def _read_transforms(head: bytes, endian: str, size: int,
                     pixdim: Tuple[float, ...]) -> tuple:
    """qform_code, sform_code, the two (3, 4) transforms of a header and
    the quaternion fields."""
    at, code_fmt, values_at, fmt = _XFORM_FIELDS[size]
    codes = struct.unpack(endian + '2' + code_fmt,
                          head[at:at + 2 * struct.calcsize(code_fmt)])
    values = struct.unpack(endian + '18' + fmt, head[
        values_at:values_at + 18 * struct.calcsize(fmt)])
    return (int(codes[0]), int(codes[1]),
            _quatern_affine(values[:6], pixdim[:4]),
            np.array(values[6:18], dtype=float).reshape(3, 4),
            tuple(float(v) for v in values[:6]))


#: The ``magic`` of NIfTI-1 and -2 headers (pair, single file).
_MAGICS = (b'ni1', b'n+1', b'ni2', b'n+2')
#: File endings of a NIfTI in one file, and of a header / voxels pair.
_SINGLE_SUFFIXES = ('.nii', '.nii.gz')
NIFTI_SUFFIXES = _SINGLE_SUFFIXES + ('.hdr', '.img')


def nifti_files(path: str) -> Tuple[str, str]:
    """The header and the voxel file of a NIfTI: ``path`` twice for a
    ``.nii`` / ``.nii.gz``, else the ``.hdr`` and the ``.img`` (or
    ``.img.gz``) of a pair, whichever of the two ``path`` names.

    Raises:
        FileNotFoundError: naming the other file of a pair, missing.
    """
    if path.lower().endswith(_SINGLE_SUFFIXES):
        return path, path
    stem, suffix = path[:-4], path[-4:]
    upper = suffix.isupper()
    header = stem + ('.HDR' if upper else '.hdr')
    images = [stem + ('.IMG' if upper else '.img'),
              stem + ('.IMG.GZ' if upper else '.img.gz')]
    data = next((f for f in images if osp.isfile(f)), images[0])
    missing = header if not osp.isfile(header) else (
        data if not osp.isfile(data) else None)
    if missing is not None:
        raise FileNotFoundError(
            f'{path}: the other file of its header / voxels pair is '
            f'missing: {missing}')
    return header, data


def read_nifti_header(path: str) -> Optional[NiftiHeader]:
    """Parse and check the header of a ``.nii`` / ``.nii.gz`` file or of
    a ``.hdr`` / ``.img`` pair (NIfTI-1 or ANALYZE 7.5).

    Args:
        path (str): the file (either of a pair).

    Returns:
        NiftiHeader | None: None if it is not a NIfTI-1 / -2 single file
        (ITK then decides what it is).

    Raises:
        ValueError: naming the file and the field, for ``dim`` sizes below
            1, a ``bitpix`` that disagrees with ``datatype``, an infinite
            ``scl_slope`` / non-finite ``scl_inter`` with a slope, or a
            ``scl_inter`` without a slope (NIfTI ignores it, ITK adds it).
    """
    header_path, data_path = nifti_files(path)
    opener = gzip.open if header_path.lower().endswith('.gz') else open
    try:
        with opener(header_path, 'rb') as f:
            head = f.read(544)
    except (OSError, EOFError) as err:
        raise ValueError(f'{path}: cannot be read as NIfTI ({err})') from err
    for endian in '<>':
        if len(head) >= 348 and struct.unpack(endian + 'i', head[:4])[0] \
                == 348:
            dim = struct.unpack(endian + '8h', head[40:56])
            datatype, bitpix = struct.unpack(endian + '2h', head[70:74])
            pixdim = struct.unpack(endian + '8f', head[76:108])
            offset = struct.unpack(endian + 'f', head[108:112])[0]
            slope, inter = struct.unpack(endian + '2f', head[112:120])
            units = head[123]
            xforms = _read_transforms(head, endian, 348, pixdim)
            magic = head[344:348].rstrip(b'\0')
            break
        if len(head) >= 540 and struct.unpack(endian + 'i', head[:4])[0] \
                == 540:
            datatype, bitpix = struct.unpack(endian + '2h', head[12:16])
            dim = struct.unpack(endian + '8q', head[16:80])
            pixdim = struct.unpack(endian + '8d', head[104:168])
            offset = struct.unpack(endian + 'q', head[168:176])[0]
            slope, inter = struct.unpack(endian + '2d', head[176:192])
            xforms = _read_transforms(head, endian, 540, pixdim)
            magic = head[4:8].rstrip(b'\0')
            units = 0  # NIfTI-2 is refused before its units matter
            break
    else:
        return None
    ndim = dim[0]
    if not 1 <= ndim <= 7:
        raise ValueError(f'{path}: NIfTI header field dim[0] = {ndim}: the '
                         'number of dimensions must be 1..7')
    sizes = tuple(int(d) for d in dim[1:ndim + 1])
    if any(d < 1 for d in sizes):
        raise ValueError(f'{path}: NIfTI header field dim {sizes}: every '
                         'size must be >= 1')
    known = _NIFTI_TYPES.get(datatype)
    if known is None:
        raise ValueError(f'{path}: NIfTI header field datatype = {datatype} '
                         'is no NIfTI data type')
    if bitpix != known[0]:
        raise ValueError(
            f'{path}: NIfTI header fields disagree: bitpix = {bitpix} but '
            f'datatype {datatype} has {known[0]} bits per voxel')
    if not math.isfinite(offset) or offset < 0:
        raise ValueError(f'{path}: NIfTI header field vox_offset = {offset} '
                         'is not a byte offset')
    scaled = slope != 0 and not math.isnan(slope)
    nifti = magic in _MAGICS  # ANALYZE 7.5 has no scl_slope / scl_inter
    if nifti and (math.isinf(slope) or (scaled and
                                        not math.isfinite(inter))):
        raise ValueError(
            f'{path}: NIfTI header fields scl_slope = {slope}, scl_inter = '
            f'{inter}: a rescale must be finite (scl_slope 0 or NaN means '
            'none)')
    if nifti and not scaled and math.isfinite(inter) and inter != 0:
        raise ValueError(
            f'{path}: NIfTI header fields scl_slope = {slope}, scl_inter = '
            f'{inter}: with scl_slope 0 or NaN NIfTI applies no rescale and '
            'ignores scl_inter, but ITK-based readers add it; set scl_inter '
            f'to 0 (no rescale) or scl_slope to 1 (add {inter:g})')
    return NiftiHeader(sizes, int(datatype), int(bitpix), int(offset),
                       tuple(float(p) for p in pixdim[1:4]), float(slope),
                       float(inter), endian, *xforms[:4],
                       header_size=struct.unpack(endian + 'i', head[:4])[0],
                       magic=magic, qfac=float(pixdim[0]), xyzt_units=units,
                       quatern=xforms[4], data_path=data_path)


def _gunzipped_length(path: str, limit: int) -> int:
    """Decompressed bytes of a gzip file (all members), counted up to
    ``limit`` a chunk at a time; a stream cut short counts what it holds."""
    total = 0
    try:
        with gzip.open(path, 'rb') as f:
            while total <= limit and (data := f.read1(_CHUNK)):
                total += len(data)
    except EOFError:  # cut short: the caller's length check refuses it
        pass
    except (OSError, zlib.error) as err:
        raise ValueError(f'{path}: corrupt gzip data after {total} '
                         f'bytes ({err})') from err
    return total


def _gzip_size_field(path: str) -> int:
    """ISIZE, the last 4 bytes of a gzip file: its length mod 2**32 (in a
    truncated file, compressed data matching by a 1 in 2**32 chance)."""
    with open(path, 'rb') as f:
        f.seek(0, 2)
        if f.tell() < 18:
            return -1
        f.seek(-4, 2)
        return int.from_bytes(f.read(4), 'little')


def check_nifti_length(path: str,
                       header: Optional[NiftiHeader] = None) -> None:
    """Refuse a NIfTI whose voxel data disagrees with its header.

    The stored (unscaled) voxels are counted from the header's ``dim`` and
    ``bitpix``. Data shorter than announced is refused, and so is data
    longer by a slice or more (ITK would read the first slices only).

    Args:
        path (str): a ``.nii`` or ``.nii.gz`` file.
        header (NiftiHeader, optional): from :func:`read_nifti_header`.

    Raises:
        ValueError: ``truncated: N of M bytes`` or a size mismatch, naming
            the file.
    """
    header = header or read_nifti_header(path)
    if header is None:
        return
    path = header.data_path or path
    gz = path.lower().endswith('.gz')
    want = header.vox_offset + header.data_bytes
    if gz and _gzip_size_field(path) == want % 2**32:
        return  # the trailer of a complete single-member gzip says so
    limit = want + header.plane_bytes
    have = _gunzipped_length(path, limit) if gz else osp.getsize(path)
    what = 'header and voxels (decompressed)' if gz else 'header and voxels'
    if have < want:
        raise truncated(path, have, want, what)
    if have >= limit:
        raise size_mismatch(
            path, have, want, f'vox_offset {header.vox_offset} + dim '
            f'{header.sizes} x bitpix {header.bitpix}', what +
            (' (counted up to one slice more)' if gz else ''))


def check_nifti_finite(path: str, header: NiftiHeader) -> None:
    """Refuse a float NIfTI holding NaN or infinite voxels.

    ITK reads them as 0 (water), silently. The stored voxels are streamed
    from the file, a chunk at a time.

    Args:
        path (str): the file.
        header (NiftiHeader): from :func:`read_nifti_header`.

    Raises:
        ValueError: naming the file, how many voxels and the first one
            (x, y, z index).
    """
    code = _NIFTI_TYPES[header.datatype][1]
    if code is None or code[0] != 'f':
        return
    dtype = np.dtype(header.endian + code)
    total = math.prod(header.sizes)
    path = header.data_path or path
    opener = gzip.open if path.lower().endswith('.gz') else open
    count, first, done = 0, None, 0
    step = max(_CHUNK // dtype.itemsize, 1) * 16
    with opener(path, 'rb') as f:
        f.seek(header.vox_offset)
        while done < total:
            data = f.read(min(step, total - done) * dtype.itemsize)
            if not data:
                break
            values = np.frombuffer(
                data[:len(data) // dtype.itemsize * dtype.itemsize], dtype)
            bad = ~np.isfinite(values)
            n = int(bad.sum())
            if n and first is None:
                first = done + int(np.argmax(bad))
            count += n
            done += values.size
    if count:
        # NIfTI stores x fastest: flat index -> (x, y, z, ...)
        index = np.unravel_index(first, header.sizes, order='F')
        raise nonfinite_error(
            path, count, total, 'voxel (x, y, z) = ' +
            str(tuple(int(i) for i in index[:3])))


def check_nifti_header(path: str, header: NiftiHeader) -> None:
    """Refuse a NIfTI this reader cannot read as one 3D CT volume: NIfTI-2
    (ITK reads NIfTI-1 only), a ``magic`` other than ``n+1`` (``ni1`` for
    a ``.hdr`` / ``.img`` pair), a ``vox_offset`` inside the header of a
    single file, voxels that
    are no real scalar (complex, RGB: ITK would drop the imaginary part or
    read 3 values per voxel) or float128, a 2D image or several volumes
    (``dim[4..]`` above 1).

    Args:
        path (str): the file.
        header (NiftiHeader): from :func:`read_nifti_header`.

    Raises:
        ValueError: naming the file, the field and what to do.
    """
    if header.header_size != 348:
        raise ValueError(
            f'{path}: a NIfTI-2 file (sizeof_hdr = {header.header_size}), '
            'which this reader (ITK) cannot read; save it as NIfTI-1 (e.g. '
            'nibabel.save(nibabel.Nifti1Image.from_image(nibabel.load(path)'
            '), new_path))')
    magic, what = (b'ni1', 'a NIfTI-1 .hdr / .img pair') if header.pair \
        else (b'n+1', 'a single-file NIfTI-1')
    if header.magic != magic:
        raise ValueError(
            f'{path}: NIfTI header field magic = {header.magic!r}, not '
            f"{magic!r} ({what}): an Analyze or damaged header, "
            'whose orientation fields NIfTI readers read differently; save '
            'it as NIfTI-1 with the scanner\'s orientation')
    if header.vox_offset < 352 and not header.pair:
        raise ValueError(
            f'{path}: NIfTI header field vox_offset = {header.vox_offset}: '
            'the voxels of a single-file NIfTI-1 start after its 352-byte '
            'header (readers differ: some read the header as voxels); set '
            'vox_offset to where they start (352 without extensions)')
    if header.datatype in _NONSCALAR_TYPES:
        raise ValueError(
            f'{path}: NIfTI header field datatype = {header.datatype} '
            f'({_NONSCALAR_TYPES[header.datatype]}), which this reader does '
            'not read as one real number (HU) per voxel; save it as int16 '
            'or float32')
    sizes = header.sizes
    if len(sizes) < 3:
        raise ValueError(
            f'{path}: a 2D image (NIfTI header field dim[0] = {len(sizes)}, '
            f'dim = {sizes}), not a CT volume; give a 3D volume (one slice '
            'as dim[0] = 3, dim[3] = 1 is read with allow_single_slice=True)')
    extra = [(i + 1, d) for i, d in enumerate(sizes) if i >= 3 and d > 1]
    if extra:
        i, d = extra[0]
        raise ValueError(
            f'{path}: NIfTI header field dim[{i}] = {d} (dim = {sizes}): '
            f'{math.prod(sizes[3:])} volumes in one file, a CT scan is one '
            '3D volume; save the volume to read as a file of its own')


def check_analyze(path: str, header: NiftiHeader) -> None:
    """An ANALYZE 7.5 pair: its length checked, SPM's scale factor refused
    and a warning that it places nothing in the patient.

    Args:
        path (str): the ``.hdr`` or ``.img``.
        header (NiftiHeader): from :func:`read_nifti_header`
            (``analyze``).

    Raises:
        ValueError: ``funused1`` (SPM's scale, where NIfTI's ``scl_slope``
            lies) other than 0 or 1: SPM-based readers multiply by it, ITK
            does not; or the voxel data is short or long.
    """
    check_nifti_length(path, header=header)
    scale = header.scl_slope
    if math.isfinite(scale) and scale not in (0., 1.):
        raise ValueError(
            f'{path}: ANALYZE 7.5 header field funused1 = {scale:g} (SPM\'s '
            'scale factor): SPM-based readers multiply the voxels by it, ITK '
            'does not, so the values are ambiguous; save it as NIfTI with '
            'scl_slope set')
    print_log(f'{path}: an ANALYZE 7.5 header (no NIfTI magic): it holds '
              'no position or orientation in the patient; read with ITK\'s '
              'assumed orientation (its orient field) at the origin. '
              'Convert it to NIfTI with the scanner\'s geometry for world '
              'coordinates', logger='current', level=logging.WARNING)
