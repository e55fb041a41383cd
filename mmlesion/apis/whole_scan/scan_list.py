# Copyright (c) mmlesion contributors. All rights reserved.
"""A day's scans as a batch names them: the scan list of
``tools/infer_volume.py --scan-list`` (:func:`read_scan_list`) and the
folder each scan's results go to (:func:`scan_folder_name`, two scans of one
name refused by :func:`scan_folder_names`), for
:mod:`~mmlesion.apis.whole_scan.batch`."""
import os.path as osp
from pathlib import Path
from typing import Dict, List, Sequence, Union

from mmlesion.utils.input_files import read_utf8_text


def read_scan_list(path: Union[str, Path]) -> List[str]:
    """The scans of a list file (UTF-8, with or without a byte-order
    mark): one path a line; blank lines and lines starting with ``#`` are
    skipped; relative paths are relative to the list's folder.

    Raises:
        FileNotFoundError: the list does not exist.
        ValueError: the list names no scan, a line's scan does not exist
            (the list, the line number and the path are named), or it is
            not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'--scan-list {path}: no such file')
    scans = []
    # a byte-order mark (Windows editors) is not the first path's first
    # character; UTF-16 or another encoding: one line
    text = read_utf8_text(str(path), '--scan-list')
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith('#'):
            continue
        scan = Path(entry) if osp.isabs(entry) else path.parent / entry
        if not scan.exists():
            raise ValueError(f'--scan-list {path}, line {number}: no such '
                             f'scan {entry!r} ({scan})')
        scans.append(str(scan))
    if not scans:
        raise ValueError(f'--scan-list {path}: no scan listed (one path a '
                         'line; # starts a comment)')
    return scans


def scan_folder_name(scan: Union[str, Path]) -> str:
    """The folder a scan's results go to: a file's name without its
    extensions (``a.nii.gz`` -> ``a``, ``1.3.6.mhd`` -> ``1.3.6``), or a
    DICOM folder's name."""
    path = Path(osp.normpath(str(scan)))
    if path.is_dir():
        return path.name
    name = path.name
    for ext in ('.nii.gz', '.nii', '.mhd', '.mha', '.nrrd', '.dcm'):
        if name.lower().endswith(ext):
            return name[:-len(ext)] or name
    return path.stem or name


def scan_folder_names(scans: Sequence[str]) -> List[str]:
    """:func:`scan_folder_name` of every scan, refusing a name that two
    scans share (naming both) before anything runs."""
    seen: Dict[str, str] = {}
    for scan in scans:
        name = scan_folder_name(scan)
        if name in seen:
            raise ValueError(
                f'{seen[name]} and {scan} would both write their results to '
                f'the folder {name!r} of --out-dir; rename one or run them '
                'apart')
        seen[name] = scan
    return list(seen)
