# Copyright (c) mmlesion contributors. All rights reserved.
"""Checks of a NIfTI file against its own header, before ITK reads it.

ITK pads a truncated NIfTI with zeros and turns NaN voxels into 0.
:func:`read_nifti_header` reads the header alone; the length check counts
stored (not scaled) voxels, and the finite check streams the voxel bytes
without keeping them. A NIfTI whose qform and sform are both set and
disagree has an ambiguous world position (ITK uses one, other readers may
use the other): :func:`check_nifti_qform_sform` refuses it. Every refusal
names the file and the field.
"""
import gzip
import math
import os.path as osp
import struct
import zlib
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import SimpleITK as sitk

from .files import nonfinite_error, size_mismatch, truncated

#: Bytes streamed at a time when counting a gzipped NIfTI.
_CHUNK = 1 << 20

#: NIfTI datatype code -> (bits per voxel, numpy type; None: not scalar
#: real).
_NIFTI_TYPES: Dict[int, Tuple[int, Optional[str]]] = {
    2: (8, 'u1'), 4: (16, 'i2'), 8: (32, 'i4'), 16: (32, 'f4'),
    32: (64, None), 64: (64, 'f8'), 128: (24, None), 256: (8, 'i1'),
    512: (16, 'u2'), 768: (32, 'u4'), 1024: (64, 'i8'), 1280: (64, 'u8'),
    1536: (128, None), 1792: (128, None), 2048: (256, None),
    2304: (32, None)}


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
    a = math.sqrt(max(1.0 - (b * b + c * c + d * d), 0.0))
    rot = np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d),
                     2 * (b * d + a * c)],
                    [2 * (b * c + a * d), a * a + c * c - b * b - d * d,
                     2 * (c * d - a * b)],
                    [2 * (b * d - a * c), 2 * (c * d + a * b),
                     a * a + d * d - c * c - b * b]])
    scale = [p if p > 0 else 1.0 for p in pixdim[1:4]]
    scale[2] *= -1.0 if pixdim[0] < 0 else 1.0
    return np.concatenate([rot * np.array(scale), np.array(
        quatern[3:6], dtype=float)[:, None]], axis=1)


def _read_transforms(head: bytes, endian: str, size: int,
                     pixdim: Tuple[float, ...]) -> tuple:
    """qform_code, sform_code and the two (3, 4) transforms of a header."""
    at, code_fmt, values_at, fmt = _XFORM_FIELDS[size]
    codes = struct.unpack(endian + '2' + code_fmt,
                          head[at:at + 2 * struct.calcsize(code_fmt)])
    values = struct.unpack(endian + '18' + fmt, head[
        values_at:values_at + 18 * struct.calcsize(fmt)])
    return (int(codes[0]), int(codes[1]),
            _quatern_affine(values[:6], pixdim[:4]),
            np.array(values[6:18], dtype=float).reshape(3, 4))


def read_nifti_header(path: str) -> Optional[NiftiHeader]:
    """Parse and check the header of a ``.nii`` / ``.nii.gz`` file.

    Args:
        path (str): the file.

    Returns:
        NiftiHeader | None: None if it is not a NIfTI-1 / -2 single file
        (ITK then decides what it is).

    Raises:
        ValueError: naming the file and the field, for ``dim`` sizes below
            1, a ``bitpix`` that disagrees with ``datatype``, or an infinite
            ``scl_slope`` / non-finite ``scl_inter`` with a slope.
    """
    opener = gzip.open if path.lower().endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
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
            xforms = _read_transforms(head, endian, 348, pixdim)
            break
        if len(head) >= 540 and struct.unpack(endian + 'i', head[:4])[0] \
                == 540:
            datatype, bitpix = struct.unpack(endian + '2h', head[12:16])
            dim = struct.unpack(endian + '8q', head[16:80])
            pixdim = struct.unpack(endian + '8d', head[104:168])
            offset = struct.unpack(endian + 'q', head[168:176])[0]
            slope, inter = struct.unpack(endian + '2d', head[176:192])
            xforms = _read_transforms(head, endian, 540, pixdim)
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
    if math.isinf(slope) or (scaled and not math.isfinite(inter)):
        raise ValueError(
            f'{path}: NIfTI header fields scl_slope = {slope}, scl_inter = '
            f'{inter}: a rescale must be finite (scl_slope 0 or NaN means '
            'none)')
    return NiftiHeader(sizes, int(datatype), int(bitpix), int(offset),
                       tuple(float(p) for p in pixdim[1:4]), float(slope),
                       float(inter), endian, *xforms)


def _gunzipped_length(path: str, limit: int) -> int:
    """Decompressed bytes of a gzip file (all members), counted up to
    ``limit``; memory stays at one chunk."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    total = 0
    with open(path, 'rb') as f:
        pending = b''
        while total <= limit:
            data = pending or f.read(_CHUNK)
            pending = b''
            if not data:
                break
            try:
                total += len(inflater.decompress(data, _CHUNK))
                pending = inflater.unconsumed_tail
                if inflater.eof:  # next gzip member, if any
                    pending = inflater.unused_data
                    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
            except zlib.error as err:
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
    gz = path.lower().endswith('.gz')
    header = header or read_nifti_header(path)
    if header is None:
        return
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


#: Largest difference (mm, or mm per voxel) between two entries of the
#: qform and sform (3, 4) matrices that is taken as the same transform.
QSFORM_TOL_MM = 1e-3
#: Largest distance, in voxels (of the smallest spacing), between where the
#: qform and the sform put a corner of the volume that is taken as the same
#: place (a float32 quaternion cannot hold every rotation exactly).
QSFORM_TOL_VOXELS = 0.5


def _corner_gap_voxels(header: NiftiHeader) -> float:
    """How far apart (in voxels of the smallest spacing) the qform and the
    sform put the volume's corners."""
    sizes = list(header.sizes[:3]) + [1] * (3 - len(header.sizes[:3]))
    corners = np.array([[i, j, k, 1.] for i in (0, sizes[0] - 1)
                        for j in (0, sizes[1] - 1)
                        for k in (0, sizes[2] - 1)])
    gap = np.linalg.norm(corners @ (header.qform - header.sform).T, axis=1)
    spacing = np.linalg.norm(header.sform[:, :3], axis=0)
    return float(gap.max() / max(float(spacing.min()), 1e-6))


def _reader_affine(reader: sitk.ImageFileReader) -> np.ndarray:
    """The (3, 4) voxel -> RAS mm matrix of what ITK read (it is LPS)."""
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    dim = reader.GetDimension()
    direction = np.eye(3)
    direction[:dim, :dim] = np.reshape(reader.GetDirection(), (dim, dim))
    spacing = np.ones(3)
    spacing[:dim] = reader.GetSpacing()[:3]
    origin = np.zeros(3)
    origin[:dim] = reader.GetOrigin()[:3]
    return np.concatenate([lps_to_ras @ direction @ np.diag(spacing),
                           (lps_to_ras @ origin)[:, None]], axis=1)


def check_nifti_qform_sform(path: str, header: NiftiHeader,
                            reader: sitk.ImageFileReader) -> None:
    """Refuse a NIfTI whose qform and sform are both set and disagree
    (put a corner of the volume more than :data:`QSFORM_TOL_VOXELS` apart).

    Args:
        path (str): the file.
        header (NiftiHeader): from :func:`read_nifti_header`.
        reader (sitk.ImageFileReader): the file's header read by ITK (tells
            which transform it uses).

    Raises:
        ValueError: naming the file, both codes, the largest difference and
            the transform the reader would use.
    """
    if header.qform_code <= 0 or header.sform_code <= 0 or (
            header.qform is None or header.sform is None):
        return
    diff = float(np.abs(header.qform - header.sform).max())
    if not diff > QSFORM_TOL_MM or not (_corner_gap_voxels(header) >
                                        QSFORM_TOL_VOXELS):
        return
    used = _reader_affine(reader)
    dims = min(reader.GetDimension(), 3)
    gaps = {name: float(np.abs(used[:dims] - xform[:dims]).max())
            for name, xform in (('qform', header.qform),
                                ('sform', header.sform))}
    best = min(gaps, key=gaps.get)
    which = (f'the {best}' if gaps[best] <= 10 * QSFORM_TOL_MM else
             'neither of them')
    raise ValueError(
        f'{path}: NIfTI header fields qform_code = {header.qform_code} and '
        f'sform_code = {header.sform_code} are both set, but the qform '
        '(quatern_b/c/d, qoffset_x/y/z, pixdim) and the sform (srow_x/y/z) '
        f'differ by up to {diff:.4g} mm; this reader would use {which}, '
        'another may use the other, so the world coordinates are ambiguous. '
        'Set the wrong one\'s code to 0 (or make them equal)')


__all__ = [
    'NiftiHeader', 'read_nifti_header', 'check_nifti_length',
    'check_nifti_finite', 'check_nifti_qform_sform'
]
