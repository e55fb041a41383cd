# Copyright (c) mmlesion contributors. All rights reserved.
"""Checks of a MetaImage (``.mhd`` + data files, ``.mha``) before ITK reads
it.

ITK lets ``ElementDataFile`` name any file on the disk or a file pattern
that makes it loop forever, and reads a ``.raw`` of another size than
``DimSize`` announces. Here the data files must lie in the header's folder,
exist and hold the bytes the header announces.
"""
import os.path as osp
import re
import zlib
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
import SimpleITK as sitk

from mmlesion.utils.input_files import check_regular_file

from .files import is_file_of, size_mismatch, truncated, voxel_data_bytes

#: Most slice files a MetaImage file pattern may name: ten times the
#: slices of the longest CT scans; more is a damaged header.
MAX_DATA_FILES = 100_000


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


def _pattern_range(path: str, data_file: str,
                   depth: int) -> Tuple[int, int, int]:
    """``(min, max, step)`` of a file pattern as MetaIO reads it.

    MetaIO's defaults: ``min`` 1, ``max = min + depth - 1``, and with
    ``min max`` but no step, ``step = (max - min) / depth`` (C integer
    division: 0 for consecutive numbers, which makes ITK loop forever or
    crash).
    """
    numbers = []
    for word in data_file.split()[1:4]:
        try:
            numbers.append(int(word))
        except ValueError:
            raise ValueError(
                f'{path}: header field ElementDataFile = {data_file}: '
                f'{word!r} is not a whole number (a file pattern is '
                "'format min max step', e.g. 'slice%03d.raw 1 120 1')"
            ) from None
    low = numbers[0] if numbers else 1
    high = numbers[1] if len(numbers) > 1 else low + depth - 1
    if len(numbers) > 2:
        return low, high, numbers[2]
    if len(numbers) == 2:
        span = abs(high - low) // depth
        return low, high, span if high >= low else -span
    return low, high, 1


def _mhd_pattern_names(path: str, data_file: str,
                       dim_size: Optional[str]) -> List[str]:
    """The file names (relative to the header's folder) of a
    printf-pattern ``ElementDataFile`` (``format [min [max [step]]]``).

    MetaIO reads one slice from each file, so the pattern must name exactly
    ``DimSize[-1]`` files, with a positive step: both are checked before
    any name is made (the error names the header and the field).
    """
    field = f'{path}: header field ElementDataFile = {data_file}'
    try:
        depth = int((dim_size or '').split()[-1])
    except (ValueError, IndexError):
        depth = 0
    if not 1 <= depth <= MAX_DATA_FILES:
        raise ValueError(
            f'{field} is a file pattern (one file per slice), but DimSize = '
            f'{dim_size} announces no slice count from 1 to '
            f'{MAX_DATA_FILES}; refusing it before making the names')
    low, high, step = _pattern_range(path, data_file, depth)
    if step <= 0:
        implied = '' if len(data_file.split()) > 3 else (
            ', as MetaIO takes it without a step: (max - min) / DimSize[-1]')
        raise ValueError(
            f'{field}: file number step {step} (from {low} to {high}'
            f'{implied}) is not positive, so ITK would loop forever or '
            "crash; write the pattern as 'format min max step' with step "
            '>= 1')
    count = (high - low) // step + 1 if high >= low else 0
    if count != depth:
        raise ValueError(
            f'{field} names {count} files ({low} to {high} step {step}), '
            f'but DimSize {dim_size} announces {depth} slices, one per '
            'file; refusing it before making the names (correct min, max '
            'and step, or DimSize)')
    pattern = data_file.split()[0]
    try:
        return [pattern % i for i in range(low, high + 1, step)]
    except (TypeError, ValueError) as err:
        raise ValueError(f'{field}: {pattern!r} is not a printf format of '
                         f'one integer ({err})') from None


def _check_data_files_present(path: str, data_file: str,
                              files: List[str]) -> None:
    """Refuse a MetaImage whose data files are not all present, naming
    how many of them are missing and the first one."""
    missing = [f for f in files if not osp.exists(f)]
    if not missing:
        return
    if len(files) == 1:
        raise FileNotFoundError(
            f'{path}: its voxel data file {missing[0]} (ElementDataFile = '
            f'{data_file}) is missing; a .mhd needs its .raw beside it')
    raise FileNotFoundError(
        f'{path}: header field ElementDataFile = {data_file} names '
        f'{len(files)} files, but {len(missing)} of them are missing (first: '
        f'{missing[0]}); a .mhd needs all its data files beside it')


def mhd_data_files(path: str, allow_outside: bool = False) -> List[str]:
    """The voxel data files of a MetaImage header, confined to its folder.

    Args:
        path (str): a ``.mhd`` (or ``.mha``) header.
        allow_outside (bool): accept data files outside the header's folder
            (``../``, absolute paths, links leading out). Defaults to False.

    Returns:
        list[str]: the data files (empty for ``LOCAL`` data, i.e. ``.mha``).

    Raises:
        ValueError: not a MetaImage header, a data file outside the
            folder, or a file pattern (``format min max step``) that
            cannot be right: step 0 or below, or a count of files other
            than the slices of ``DimSize`` (checked before making names).
        FileNotFoundError: data files are missing (how many, the first).
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
    elif '%' in data_file:  # "pattern [min [max [step]]]"
        names = _mhd_pattern_names(path, data_file, fields.get('DimSize'))
    else:
        names = [data_file]
    files = []
    for name in names:
        full = osp.join(folder, name)
        if not allow_outside and (osp.isabs(name) or
                                  not is_file_of(full, folder)):
            raise ValueError(
                f'{path}: ElementDataFile {name!r} points outside the '
                f'header\'s folder {folder}; refusing to read it (pass '
                'allow_outside_data=True / --allow-outside-data if that '
                'is intended)')
        files.append(full)
    _check_data_files_present(path, data_file, files)
    for full in files:
        check_regular_file(full, f'voxel data file (ElementDataFile of '
                           f'{path})')
    return files


#: The MetaImage fields that set the byte order (synonyms in MetaIO).
_MHD_BYTE_ORDER_FIELDS = ('BinaryDataByteOrderMSB', 'ElementByteOrderMSB')


class ByteOrder(NamedTuple):
    """A MetaImage header's byte-order claim as written and whether it is
    big-endian."""
    claim: str
    big_endian: bool


def mhd_byte_order(path: str) -> ByteOrder:
    """The byte order a MetaImage header claims for its voxels.

    Args:
        path (str): a ``.mhd`` / ``.mha`` file.

    Returns:
        tuple[str, bool]: the claim as written (e.g.
        ``'BinaryDataByteOrderMSB = True'``; absent, MetaIO reads
        little-endian on this machine) and whether it is big-endian.
    """
    fields = _mhd_fields(path)
    for name in _MHD_BYTE_ORDER_FIELDS:
        if name in fields:
            value = fields[name]
            # MetaIO: true if the value starts with T, t or 1
            return ByteOrder(f'{name} = {value}',
                             value.strip()[:1] in ('T', 't', '1'))
    return ByteOrder('BinaryDataByteOrderMSB absent (little-endian)', False)


def _matrix_field(fields: dict) -> str:
    """The direction as the header writes it (MetaIO has three names)."""
    for name in ('TransformMatrix', 'Rotation', 'Orientation'):
        if name in fields:
            return fields[name]
    return '(absent)'


def _check_zlib_start(path: str, data_file: str, offset: int) -> None:
    """Refuse voxel data that ``CompressedData = True`` announces but that
    does not start as a zlib stream (ITK would read garbage)."""
    with open(data_file, 'rb') as f:
        f.seek(offset)
        head = f.read(1 << 16)
    try:
        zlib.decompressobj().decompress(head)
    except zlib.error as err:
        raise ValueError(
            f'{path}: header field CompressedData = True, but the voxel data '
            f'in {data_file} is not zlib-compressed ({err}); set '
            'CompressedData = False if the data is raw') from err


def check_metaimage_length(path: str, reader: sitk.ImageFileReader,
                           data_files: List[str]) -> None:
    """Refuse a MetaImage whose voxel data is too short, long or not
    compressed as announced, or whose ``TransformMatrix`` is no rotation.

    Args:
        path (str): the ``.mhd`` / ``.mha`` file.
        reader (sitk.ImageFileReader): after ``ReadImageInformation``.
        data_files (list[str]): from :func:`mhd_data_files` (empty: the
            data follows the header in ``path``).

    Raises:
        ValueError: ``truncated: N of M bytes``, naming the data file.
    """
    fields = _mhd_fields(path)
    direction = np.asarray(reader.GetDirection(), float).reshape(3, 3)
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-3):
        raise ValueError(
            f"{path}: header field TransformMatrix = "
            f"{_matrix_field(fields)} is not a rotation (its "
            'columns must be unit length and perpendicular): voxels would '
            'be placed on a skewed or scaled grid; correct the header')
    if fields.get('CompressedData', 'False').lower() == 'true':
        _check_zlib_start(path, data_files[0] if data_files else path,
                          0 if data_files else fields.get('_header_bytes', 0))
        return  # ITK itself refuses short compressed streams
    want = voxel_data_bytes(reader)
    announced = (f"ElementType {fields.get('ElementType', '?')} x DimSize "
                 f"{fields.get('DimSize', '?')}")
    if not data_files:
        have = osp.getsize(path) - fields.get('_header_bytes', 0)
        if have < want:
            raise truncated(path, have, want, 'voxel data after the header')
        if have > want:
            raise size_mismatch(path, have, want, announced,
                                'voxel data after the header')
        return
    skip = int(fields.get('HeaderSize', '0') or 0)
    sizes = [max(osp.getsize(f) - max(skip, 0), 0) for f in data_files]
    have = sum(sizes)
    name = data_files[0] if len(data_files) == 1 else path
    if len(data_files) > 1 and want % len(data_files) == 0:
        # one slice a file: name the file that is not one slice long
        each = want // len(data_files)
        odd = next((k for k, n in enumerate(sizes) if n < each or (
            n > each and skip >= 0)), None)
        if odd is not None and sizes[odd] < each:
            raise truncated(data_files[odd], sizes[odd], each,
                            f'voxel data of one of the {len(data_files)} '
                            f'slice files of {path}')
        if odd is not None:
            raise size_mismatch(data_files[odd], sizes[odd], each,
                                f'{announced} in {path}, one slice a file',
                                'voxel data')
    if have < want:
        raise truncated(name, have, want, 'voxel data')
    if have > want and skip >= 0:  # HeaderSize -1: the data ends the file
        raise size_mismatch(name, have, want, f'{announced} in {path}',
                            'voxel data' + (f' after HeaderSize {skip}'
                                            if skip else ''))
