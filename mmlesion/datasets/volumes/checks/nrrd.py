# Copyright (c) mmlesion contributors. All rights reserved.
"""Checks of a NRRD (``.nrrd``, a detached ``.nhdr``) before ITK reads it:
its ``data file`` must lie in the header's folder and exist, and raw voxel
data must be as long as ``sizes`` x ``type``. A header without a ``space``
(only ``spacings``) places nothing in the patient: read with a warning;
``space units`` other than mm are refused."""
import logging
import os.path as osp
from typing import Dict, List, Tuple

import SimpleITK as sitk
from mmengine.logging import print_log

from mmlesion.utils.input_files import check_regular_file

from .files import check_inside, size_mismatch, truncated, voxel_data_bytes


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
    each must be a regular file in the header's folder (links resolved).

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
        check_inside(full, folder, what, allow_outside)
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


def check_nrrd_length(path: str, reader: sitk.ImageFileReader,
                      data_files: List[str]) -> None:
    """Refuse raw NRRD voxel data of another size than ``sizes`` x
    ``type`` (other encodings are decoded, and checked, by ITK).

    Args:
        path (str): the ``.nrrd`` / ``.nhdr`` header.
        reader (sitk.ImageFileReader): after ``ReadImageInformation``.
        data_files (list[str]): from :func:`nrrd_data_files`.

    Raises:
        ValueError: naming the file, for data shorter or longer than the
            header announces.
    """
    fields, _, header_bytes = _nrrd_header(path)
    if fields.get('encoding', '').lower() != 'raw' or \
            int(fields.get('line skip', fields.get('lineskip', '0')) or 0):
        return
    try:
        skip = int(fields.get('byte skip', fields.get('byteskip', '0')) or 0)
    except ValueError:
        return  # ITK refuses it with its own message
    want = voxel_data_bytes(reader)
    announced = f"type {fields.get('type')} x sizes {fields.get('sizes')}"
    if data_files:
        have = sum(max(osp.getsize(f) - max(skip, 0), 0) for f in data_files)
        name = data_files[0] if len(data_files) == 1 else path
    else:
        have = osp.getsize(path) - header_bytes - max(skip, 0)
        name = path
    if have < want:
        raise truncated(name, have, want, 'voxel data')
    if have > want and skip >= 0:  # byte skip -1: the data ends the file
        raise size_mismatch(name, have, want, f'{announced} in {path}',
                            'voxel data')


def check_nrrd_space(path: str) -> None:
    """Warn where a NRRD header has no ``space`` field: its axes have no
    direction or origin in the patient, which ITK assumes (LPS axes, the
    origin at 0). Refuse ``space units`` other than mm, which ITK does not
    apply.

    Raises:
        ValueError: naming the file and the field.
    """
    fields, _, _ = _nrrd_header(path)
    units = [u.strip('" ') for u in fields.get('space units', '').split()]
    if any(u not in ('mm', '') for u in units):
        raise ValueError(
            f"{path}: NRRD field 'space units: {fields['space units']}': "
            'ITK reads every spacing as mm, so the sizes would be wrong; '
            'convert the space directions and origin to mm')
    if 'space' not in fields and 'space dimension' not in fields:
        print_log(f"{path}: NRRD header without a 'space' field: its axes "
                  'have no orientation or origin in the patient; read as '
                  'ITK assumes (LPS axes, origin 0). Add space, space '
                  'directions and space origin for world coordinates',
                  logger='current', level=logging.WARNING)
