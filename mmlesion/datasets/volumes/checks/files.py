# Copyright (c) mmlesion contributors. All rights reserved.
"""Checks of a volume file before its voxels are read, for every format:
where its files lie, what a folder holds, how many voxels its header
announces and how many bytes it holds for them.

ITK allocates whatever a header asks for, blocks forever on a FIFO, and
pads a file shorter than its header announces with zeros: these checks
refuse such a file before memory is allocated for its voxels, naming the
file and the header field.
"""
import math
import os
import os.path as osp
import stat
from typing import NamedTuple, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from mmlesion.utils.input_files import check_regular_file

#: Most voxels a header may announce: 2**31 (8.6 GB as float32), over four
#: times a 1024 x 1024 x 500 scan. A header asking for more (a damaged or
#: hostile ``DimSize 100000 100000 100000``) is refused before any
#: allocation; raise this constant for a larger real volume.
MAX_VOXELS = 2**31


def check_inside(path: str, folder: str, what: str,
                 allow_outside: bool = False) -> None:
    """Refuse a path that (links resolved) leads out of ``folder``.

    Args:
        path (str): the path as named.
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
            'memory for it (raise mmlesion.datasets.volumes.checks.files.'
            'MAX_VOXELS for a real volume this large)')


class NonFinite(NamedTuple):
    """How many values of an array are not finite, and the index of the
    first (None: none)."""
    count: int
    first: Optional[tuple]


def count_nonfinite(array) -> NonFinite:
    """Non-finite values of an array: (count, index of the first)."""
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    if not count:
        return NonFinite(0, None)
    first = np.unravel_index(int(np.argmax(bad.ravel())), bad.shape)
    return NonFinite(count, tuple(int(i) for i in first))


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


def dicom_pixel_data_bytes(path: str) -> Optional[int]:
    """Bytes of a file's PixelData element as its header says, without
    reading the pixels (None: no pydicom, no element or unknown length)."""
    try:
        import pydicom
        ds = pydicom.dcmread(path, defer_size=64, force=True)
        elem = ds.get_item(0x7FE00010, keep_deferred=True)
    except Exception:  # no pydicom, an older one, or unreadable: GDCM says
        return None
    length = getattr(elem, 'length', None)
    return length if isinstance(length, int) and length != 0xFFFFFFFF \
        else None


def truncated(path: str, have: int, want: int, what: str) -> ValueError:
    """The error for voxel data shorter than its header announces."""
    return ValueError(
        f'{path}: truncated: {have} of {want} bytes of {what} (a download '
        'or copy that stopped early?); refusing to read it padded with '
        'zeros')


def size_mismatch(path: str, have: int, want: int, fields: str,
                  what: str) -> ValueError:
    """The error for voxel data longer than its header (``fields``)
    announces."""
    return ValueError(
        f'{path}: {have} bytes of {what}, but the header ({fields}) '
        f'announces {want}: {have - want} bytes more than the header '
        'describes, so the voxels would be read with the wrong size or type '
        '(part of the scan silently dropped); refusing it. Correct the '
        'header')


def check_folder_entries(folder: str, allow_outside: bool = False) -> None:
    """Refuse what a DICOM reader would open in a folder and should not:
    a FIFO, device or socket (it would block forever), or a link leading
    out of the folder.

    Args:
        folder (str): a DICOM series folder.
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


def sitk_error(path: str, err: Exception) -> ValueError:
    """The error for a file SimpleITK cannot read, naming it and ITK's
    reason."""
    first = str(err).strip().splitlines()
    detail = next((line for line in first if 'ERROR' in line or
                   'Exception' in line), first[0] if first else '')
    return ValueError(f'{path}: SimpleITK cannot read it as an image '
                      f'({detail.strip()})')


def read_header(path: str) -> sitk.ImageFileReader:
    """A reader of ``path`` with its header read (no voxels)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise sitk_error(path, err)
    return reader
