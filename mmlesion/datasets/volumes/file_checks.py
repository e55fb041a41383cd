# Copyright (c) mmlesion contributors. All rights reserved.
"""Checks of a volume file before its voxels are read.

ITK reads a truncated uncompressed or gzipped NIfTI without complaint and
pads the missing voxels with zeros, reads only the first half of a
``.raw`` whose ``DimSize`` announces half its slices, turns NaN voxels of a
float NIfTI into 0, allocates whatever a header asks for, blocks forever on
a FIFO, and lets a MetaImage ``ElementDataFile`` or a detached NRRD
``data file`` name any file on the disk (``../../etc/...``, an absolute
path). These checks run on the header only (or stream the voxel bytes
without keeping them), so a bad file is refused before memory is allocated
for its voxels. Every refusal names the file and the header field.
"""
import math
import os
import os.path as osp
import re
import stat
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from mmlesion.utils.csv_checks import check_regular_file

#: Bytes streamed at a time when counting a gzipped NIfTI.
_CHUNK = 1 << 20

#: Most voxels a header may announce: 2**31 (8.6 GB as float32), over four
#: times a 1024 x 1024 x 500 scan. A header asking for more (a damaged or
#: hostile ``DimSize 100000 100000 100000``) is refused before any
#: allocation; raise this constant for a larger real volume.
MAX_VOXELS = 2**31
#: Most slice files a MetaImage file pattern may name: ten times the
#: slices of the longest CT scans; more is a damaged header.
MAX_DATA_FILES = 100_000


def check_inside(path: str, folder: str, what: str,
                 allow_outside: bool = False) -> None:
    """Refuse a path that (links resolved) leads out of ``folder``.

    Args:
        path (str): the path as named (relative paths are taken from the
            current folder).
        folder (str): the folder it must lie in.
        what (str): the file and field that named it, for the error
            (e.g. ``"x.nrrd: data file '../a.raw'"``).
        allow_outside (bool): accept it anyway.

    Raises:
        ValueError: naming ``what`` and the folder.
    """
    if allow_outside or is_file_of(path, folder):
        return
    raise ValueError(
        f'{what} points outside the folder {folder} (to '
        f'{osp.realpath(path)}); refusing to read it (pass '
        'allow_outside_data=True / --allow-outside-data if that is '
        'intended)')


def check_voxel_count(path: str, size: Sequence[int], field: str) -> None:
    """Refuse a header announcing no voxels or more than :data:`MAX_VOXELS`.

    Args:
        path (str): named in the error.
        size (sequence[int]): the sizes the header announces.
        field (str): the header field (``DimSize``, ``dim``, ``sizes``).

    Raises:
        ValueError: naming file, field and the sizes.
    """
    size = [int(s) for s in size]
    if any(s < 1 for s in size):
        raise ValueError(f'{path}: header field {field} {tuple(size)}: every '
                         'size must be >= 1')
    count = math.prod(size)
    if count > MAX_VOXELS:
        raise ValueError(
            f'{path}: header field {field} {tuple(size)} asks for '
            f'{count:.3g} voxels, more than the {MAX_VOXELS:.3g} of any CT '
            'scan (a damaged or hostile header); refusing to allocate '
            'memory for it (raise mmlesion.datasets.volumes.file_checks.'
            'MAX_VOXELS for a real volume this large)')


def count_nonfinite(array) -> Tuple[int, Optional[tuple]]:
    """Non-finite values of an array: (count, index of the first)."""
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    if not count:
        return 0, None
    first = np.unravel_index(int(np.argmax(bad.ravel())), bad.shape)
    return count, tuple(int(i) for i in first)


def nonfinite_error(path: str, count: int, total: int,
                    where: str) -> ValueError:
    """The error for NaN / infinite voxels, naming file, count and place."""
    return ValueError(
        f'{path}: {count} of {total} voxels are NaN or infinite (first at '
        f'{where}); a CT has a finite value everywhere and a reader would '
        'make them 0 HU (or a model NaN): refusing it. Replace them (e.g. '
        'by -1024) and write the file again')


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


def _size_mismatch(path: str, have: int, want: int, fields: str,
                   what: str) -> ValueError:
    return ValueError(
        f'{path}: {have} bytes of {what}, but the header ({fields}) '
        f'announces {want}: {have - want} bytes more than the header '
        'describes, so the voxels would be read with the wrong size or type '
        '(part of the scan silently dropped); refusing it. Correct the '
        'header')


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


def _pattern_numbers(path: str, data_file: str) -> List[int]:
    """The ``min max step`` words of a file-pattern ``ElementDataFile``."""
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
    return numbers


def _pattern_range(path: str, data_file: str,
                   depth: int) -> Tuple[int, int, int]:
    """``(min, max, step)`` of a file pattern as MetaIO reads it.

    MetaIO's defaults: ``min`` 1, ``max = min + depth - 1``, and with
    ``min max`` but no step, ``step = (max - min) / depth`` (C integer
    division: 0 for consecutive numbers, which makes ITK loop forever or
    crash).
    """
    numbers = _pattern_numbers(path, data_file)
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
    """The file names of a printf-pattern ``ElementDataFile``.

    MetaIO reads one slice (the last ``DimSize`` axis) from each file, so
    the pattern must name exactly ``DimSize[-1]`` files, with a positive
    step. Both are checked on the numbers before any name is made (a
    pattern ``0 100000000 1`` would otherwise build a list of 10**8 names).

    Args:
        path (str): the header, named in errors.
        data_file (str): the field's value, ``format [min [max [step]]]``.
        dim_size (str, optional): the header's ``DimSize`` value.

    Returns:
        list[str]: the file names, relative to the header's folder.

    Raises:
        ValueError: naming the header and ElementDataFile, for words that
            are not whole numbers, a step of 0 or below, a count of files
            other than the slices of DimSize, or a format that takes no
            single integer.
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
        files.append(full)
    _check_data_files_present(path, data_file, files)
    for full in files:
        check_regular_file(full, f'voxel data file (ElementDataFile of '
                           f'{path})')
    return files


#: The MetaImage fields that set the byte order (synonyms in MetaIO).
_MHD_BYTE_ORDER_FIELDS = ('BinaryDataByteOrderMSB', 'ElementByteOrderMSB')


def mhd_byte_order(path: str) -> Tuple[str, bool]:
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
            return f'{name} = {value}', value.strip()[:1] in ('T', 't', '1')
    return 'BinaryDataByteOrderMSB absent (little-endian)', False


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
    announced = (f"ElementType {fields.get('ElementType', '?')} x DimSize "
                 f"{fields.get('DimSize', '?')}")
    if not data_files:
        have = osp.getsize(path) - fields.get('_header_bytes', 0)
        if have < want:
            raise _truncated(path, have, want, 'voxel data after the header')
        if have > want:
            raise _size_mismatch(path, have, want, announced,
                                 'voxel data after the header')
        return
    skip = int(fields.get('HeaderSize', '0') or 0)
    have = sum(max(osp.getsize(f) - max(skip, 0), 0) for f in data_files)
    name = data_files[0] if len(data_files) == 1 else path
    if have < want:
        raise _truncated(name, have, want, 'voxel data')
    if have > want and skip >= 0:  # HeaderSize -1: the data ends the file
        raise _size_mismatch(name, have, want, f'{announced} in {path}',
                             'voxel data' + (f' after HeaderSize {skip}'
                                             if skip else ''))


def is_nrrd(path: str) -> bool:
    """Whether the file starts with the NRRD magic (``NRRD000``)."""
    with open(path, 'rb') as f:
        return f.read(7) == b'NRRD000'


def _nrrd_header(path: str) -> Tuple[Dict[str, str], List[str], int]:
    """Fields, the lines after ``data file: LIST``, and header bytes."""
    fields: Dict[str, str] = {}
    listed: List[str] = []
    in_list = False
    with open(path, 'rb') as f:
        f.readline()  # NRRD000x
        while True:
            raw = f.readline(1 << 16)
            if not raw or raw in (b'\n', b'\r\n'):
                break
            line = raw.decode('latin-1').rstrip('\r\n')
            if in_list:
                listed.append(line.strip())
                continue
            if line.startswith('#') or ':=' in line:
                continue
            key, sep, value = line.partition(': ')
            if sep:
                fields[key.strip().lower()] = value.strip()
                if key.strip().lower() in ('data file', 'datafile') and \
                        value.strip().upper().startswith('LIST'):
                    in_list = True
        return fields, listed, f.tell()


def nrrd_data_files(path: str, allow_outside: bool = False) -> List[str]:
    """The data files of a detached NRRD header, confined to its folder.

    The ``data file:`` field (also ``datafile:``) may name one file, a
    printf pattern with ``min max step`` or ``LIST`` followed by the names;
    each must lie in the header's folder (links resolved), as a MetaImage
    ``ElementDataFile`` must (:func:`mhd_data_files`), and be a regular
    file.

    Args:
        path (str): a ``.nrrd`` / ``.nhdr`` file.
        allow_outside (bool): accept data files outside the folder.

    Returns:
        list[str]: the data files (empty: the data follows the header).

    Raises:
        ValueError: a data file outside the folder, or not a regular file,
            naming the header and the field.
        FileNotFoundError: a data file is missing.
    """
    fields, listed, _ = _nrrd_header(path)
    value = fields.get('data file', fields.get('datafile'))
    if value is None:
        return []
    folder = osp.dirname(osp.abspath(path))
    parts = value.split()
    if value.upper().startswith('LIST'):
        names = [n for n in listed if n]
    elif len(parts) >= 4 and '%' in parts[0]:
        try:
            lo, hi, step = int(parts[1]), int(parts[2]), int(parts[3])
            names = [parts[0] % i for i in range(
                lo, hi + (1 if step > 0 else -1), step)] if step else []
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: NRRD field 'data file: {value}' is "
                             f'not a file name pattern ({err})') from err
    else:
        names = [value]
    files = []
    for name in names:
        full = osp.join(folder, name)
        what = f"{path}: NRRD field 'data file' {name!r}"
        check_inside(full, folder, what, allow_outside and True)
        if osp.isabs(name) and not allow_outside:
            raise ValueError(
                f'{what} is an absolute path outside the header\'s folder '
                f'{folder}; refusing to read it (pass allow_outside_data='
                'True / --allow-outside-data if that is intended)')
        if not osp.exists(full):
            raise FileNotFoundError(f'{what}: the data file {full} is '
                                    'missing')
        check_regular_file(full, f"data file (NRRD 'data file' of {path})")
        files.append(full)
    return files


#: NRRD type names -> bytes per value.
_NRRD_TYPE_BYTES = {
    **dict.fromkeys(('signed char', 'int8', 'int8_t', 'uchar',
                     'unsigned char', 'uint8', 'uint8_t'), 1),
    **dict.fromkeys(('short', 'short int', 'signed short',
                     'signed short int', 'int16', 'int16_t', 'ushort',
                     'unsigned short', 'unsigned short int', 'uint16',
                     'uint16_t'), 2),
    **dict.fromkeys(('int', 'signed int', 'int32', 'int32_t', 'uint',
                     'unsigned int', 'uint32', 'uint32_t', 'float'), 4),
    **dict.fromkeys(('longlong', 'long long', 'long long int',
                     'signed long long', 'signed long long int', 'int64',
                     'int64_t', 'ulonglong', 'unsigned long long',
                     'unsigned long long int', 'uint64', 'uint64_t',
                     'double'), 8),
}


def check_nrrd_length(path: str, data_files: List[str]) -> None:
    """Refuse raw NRRD voxel data of another size than ``sizes`` x
    ``type`` (other encodings are decoded, and checked, by ITK).

    Args:
        path (str): the ``.nrrd`` / ``.nhdr`` header.
        data_files (list[str]): from :func:`nrrd_data_files`.

    Raises:
        ValueError: naming the file, for data shorter or longer than the
            header announces.
    """
    fields, _, header_bytes = _nrrd_header(path)
    per_value = _NRRD_TYPE_BYTES.get(fields.get('type', '').lower())
    if fields.get('encoding', '').lower() != 'raw' or per_value is None or \
            int(fields.get('line skip', fields.get('lineskip', '0')) or 0):
        return
    try:
        sizes = [int(v) for v in fields.get('sizes', '').split()]
        skip = int(fields.get('byte skip', fields.get('byteskip', '0')) or 0)
    except ValueError:
        return  # ITK refuses it with its own message
    want = math.prod(sizes) * per_value
    announced = f"type {fields.get('type')} x sizes {fields.get('sizes')}"
    if data_files:
        have = sum(max(osp.getsize(f) - max(skip, 0), 0) for f in data_files)
        name = data_files[0] if len(data_files) == 1 else path
    else:
        have = osp.getsize(path) - header_bytes - max(skip, 0)
        name = path
    if have < want:
        raise _truncated(name, have, want, 'voxel data')
    if have > want and skip >= 0:  # byte skip -1: the data ends the file
        raise _size_mismatch(name, have, want, f'{announced} in {path}',
                             'voxel data')


def check_folder_entries(folder: str, allow_outside: bool = False) -> None:
    """Refuse what a DICOM reader would open in a folder and should not:
    a FIFO, device or socket (it would block forever), or a link leading
    out of the folder.

    Args:
        folder (str): a DICOM series folder (GDCM reads every file in it,
            not its subfolders).
        allow_outside (bool): accept links leading out of the folder.

    Raises:
        ValueError: naming the entry.
    """
    for name in sorted(os.listdir(folder)):
        full = osp.join(folder, name)
        try:
            mode = os.stat(full).st_mode
        except OSError:
            continue  # a broken link: nothing is read through it
        if stat.S_ISDIR(mode):
            continue
        check_regular_file(full, 'file of the DICOM folder')
        check_inside(full, folder, f'{full}: a link in the DICOM folder',
                     allow_outside)


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
    'MAX_VOXELS', 'MAX_DATA_FILES', 'voxel_data_bytes', 'mhd_data_files',
    'mhd_byte_order', 'check_metaimage_length', 'is_file_of',
    'check_regular_file', 'check_inside', 'check_voxel_count',
    'count_nonfinite', 'nonfinite_error', 'is_nrrd', 'nrrd_data_files',
    'check_nrrd_length', 'check_folder_entries'
]
