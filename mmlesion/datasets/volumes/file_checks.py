# Copyright (c) mmlesion contributors. All rights reserved.
"""Checks of a volume file before its voxels are read.

ITK reads a truncated uncompressed or gzipped NIfTI without complaint and
pads the missing voxels with zeros, and a MetaImage ``ElementDataFile`` may
name any file on the disk (``../../etc/...``, an absolute path). These
checks run on the header only (or stream a ``.gz`` without keeping it), so
a bad file is refused before memory is allocated for its voxels.
"""
import gzip
import os.path as osp
import re
import struct
import zlib
from typing import List, Optional

import numpy as np
import SimpleITK as sitk

#: Bytes streamed at a time when counting a gzipped NIfTI.
_CHUNK = 1 << 20


def voxel_data_bytes(reader: sitk.ImageFileReader) -> int:
    """Bytes of voxel data the header of an opened file announces.

    Args:
        reader (sitk.ImageFileReader): after ``ReadImageInformation``.

    Returns:
        int: voxels x components x bytes per component.
    """
    probe = sitk.Image([1] * reader.GetDimension(), reader.GetPixelID(),
                       reader.GetNumberOfComponents())
    per_voxel = sitk.GetArrayViewFromImage(probe).nbytes
    return per_voxel * int(
        np.prod([int(s) for s in reader.GetSize()], dtype=np.int64))


def _truncated(path: str, have: int, want: int, what: str) -> ValueError:
    return ValueError(
        f'{path}: truncated: {have} of {want} bytes of {what} (a download '
        'or copy that stopped early?); refusing to read it padded with '
        'zeros')


def _nifti_offset(head: bytes) -> Optional[int]:
    """``vox_offset`` of a NIfTI-1 / NIfTI-2 header (None: not NIfTI)."""
    for endian in '<>':
        if len(head) >= 348 and struct.unpack(endian + 'i', head[:4])[0] \
                == 348:
            return int(struct.unpack(endian + 'f', head[108:112])[0])
        if len(head) >= 540 and struct.unpack(endian + 'i', head[:4])[0] \
                == 540:
            return int(struct.unpack(endian + 'q', head[168:176])[0])
    return None


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
    """ISIZE, the last 4 bytes of a gzip file: its length mod 2**32.

    In a truncated file these bytes are compressed data, so they match the
    expected length only by a 1 in 2**32 chance; a mismatch (also from
    several gzip members or trailing bytes) leads to counting the stream.
    """
    with open(path, 'rb') as f:
        f.seek(0, 2)
        if f.tell() < 18:
            return -1
        f.seek(-4, 2)
        return int.from_bytes(f.read(4), 'little')


def check_nifti_length(path: str, reader: sitk.ImageFileReader) -> None:
    """Refuse a NIfTI whose voxel data is shorter than its header says.

    Args:
        path (str): a ``.nii`` or ``.nii.gz`` file.
        reader (sitk.ImageFileReader): after ``ReadImageInformation``.

    Raises:
        ValueError: ``truncated: N of M bytes``, naming the file.
    """
    gz = path.lower().endswith('.gz')
    if gz:
        with gzip.open(path, 'rb') as f:
            try:
                head = f.read(544)
            except (OSError, EOFError) as err:
                raise ValueError(f'{path}: cannot be read ({err})') from err
    else:
        with open(path, 'rb') as f:
            head = f.read(544)
    offset = _nifti_offset(head)
    if offset is None:
        return
    want = offset + voxel_data_bytes(reader)
    if gz and _gzip_size_field(path) == want % 2**32:
        return  # the trailer of a complete single-member gzip says so
    have = _gunzipped_length(path, want) if gz else osp.getsize(path)
    if have < want:
        raise _truncated(path, have, want, 'header and voxels (decompressed)'
                         if gz else 'header and voxels')


def _mhd_fields(path: str) -> dict:
    fields = {}
    with open(path, 'rb') as f:
        for raw_line in f:
            line = raw_line.decode('latin-1')
            m = re.match(r'\s*(\w+)\s*=\s*(.*?)\s*$', line)
            if m:
                fields[m.group(1)] = m.group(2)
                if m.group(1) == 'ElementDataFile':
                    fields['_header_bytes'] = f.tell()
                    break
    return fields


def mhd_data_files(path: str, allow_outside: bool = False) -> List[str]:
    """The voxel data files of a MetaImage header, confined to its folder.

    Args:
        path (str): a ``.mhd`` (or ``.mha``) header.
        allow_outside (bool): accept data files outside the header's folder
            (``../``, absolute paths, links leading out). Defaults to False.

    Returns:
        list[str]: the data files (empty for ``LOCAL`` data, i.e. ``.mha``).

    Raises:
        ValueError: not a MetaImage header, or a data file outside the
            folder.
        FileNotFoundError: a data file is missing.
    """
    fields = _mhd_fields(path)
    data_file = fields.get('ElementDataFile')
    if data_file is None:
        raise ValueError(f'{path}: not a MetaImage header (no '
                         f'ElementDataFile line)')
    folder = osp.dirname(osp.abspath(path))
    if data_file.upper() == 'LOCAL':
        return []
    if data_file.upper().startswith('LIST'):
        with open(path, 'r', errors='replace') as f:
            text = f.read()
        names = text.split('ElementDataFile', 1)[1].splitlines()[1:]
        names = [n.strip() for n in names if n.strip()]
    elif '%' in data_file:  # "pattern start stop step"
        parts = data_file.split()
        names = [parts[0] % i for i in range(
            int(parts[1]), int(parts[2]) + 1,
            int(parts[3]) if len(parts) > 3 else 1)] if len(parts) >= 3 \
            else [data_file]
    else:
        names = [data_file]
    files = []
    real_folder = osp.realpath(folder)
    for name in names:
        full = osp.join(folder, name)
        inside = osp.commonpath([real_folder, osp.realpath(full)]) \
            == real_folder
        if not allow_outside and (osp.isabs(name) or not inside):
            raise ValueError(
                f'{path}: ElementDataFile {name!r} points outside the '
                f'header\'s folder {folder}; refusing to read it (pass '
                'allow_outside_data=True / --allow-outside-data if that '
                'is intended)')
        if not osp.isfile(full):
            raise FileNotFoundError(
                f'{path}: its voxel data file {full} (ElementDataFile = '
                f'{data_file}) is missing; a .mhd needs its .raw beside it')
        files.append(full)
    return files


def check_metaimage_length(path: str, reader: sitk.ImageFileReader,
                           data_files: List[str]) -> None:
    """Refuse a MetaImage whose uncompressed voxel data is too short.

    Args:
        path (str): the ``.mhd`` / ``.mha`` file.
        reader (sitk.ImageFileReader): after ``ReadImageInformation``.
        data_files (list[str]): from :func:`mhd_data_files` (empty: the
            data follows the header in ``path``).

    Raises:
        ValueError: ``truncated: N of M bytes``, naming the data file.
    """
    fields = _mhd_fields(path)
    if fields.get('CompressedData', 'False').lower() == 'true':
        return  # ITK itself refuses short compressed streams
    want = voxel_data_bytes(reader)
    if not data_files:
        have = osp.getsize(path) - fields.get('_header_bytes', 0)
        if have < want:
            raise _truncated(path, have, want, 'voxel data after the header')
        return
    skip = int(fields.get('HeaderSize', '0') or 0)
    have = sum(max(osp.getsize(f) - max(skip, 0), 0) for f in data_files)
    if have < want:
        raise _truncated(data_files[0] if len(data_files) == 1 else path,
                         have, want, 'voxel data')


def is_file_of(path: str, folder: Optional[str]) -> bool:
    """Whether ``path`` (links resolved) lies inside ``folder``.

    Args:
        path (str): a file path.
        folder (str, optional): None: any path is accepted.

    Returns:
        bool: True if inside (or ``folder`` is None).
    """
    if folder is None:
        return True
    real = osp.realpath(folder)
    return osp.commonpath([real, osp.realpath(path)]) == real


__all__ = [
    'voxel_data_bytes', 'check_nifti_length', 'mhd_data_files',
    'check_metaimage_length', 'is_file_of'
]
