# Copyright (c) mmlesion contributors. All rights reserved.
"""A day's scans as a batch names them: a scan list (``--scan-list``), a
folder tree (``--scan-tree``) and the folder each scan's results go to."""
import os
import os.path as osp
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from mmlesion.datasets.volumes.checks.dicom import looks_like_dicom
from mmlesion.datasets.volumes.loading import VOLUME_SUFFIXES
from mmlesion.utils.input_files import read_utf8_text

#: The files read as one scan each (a folder of DICOM files is one too):
#: the reader's, but single DICOM files (a series' slices are its folder).
SCAN_EXTENSIONS = tuple(s for s in VOLUME_SUFFIXES if s != '.dcm')


@dataclass(frozen=True)
class NamedScan:
    """A scan and the folder its results go to.

    Args:
        scan (str): its path (or, for a server's series, what names it).
        folder (str): its results folder's name, one path component.
    """
    scan: str
    folder: str


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
    for ext in SCAN_EXTENSIONS + ('.dcm', ):
        if name.lower().endswith(ext):
            return name[:-len(ext)] or name
    return path.stem or name


def named_scans(scans: Sequence[Union[str, NamedScan]]) -> List[NamedScan]:
    """Each scan with its results folder (:func:`scan_folder_name` for a
    path), refusing a name that two scans share (naming both)."""
    seen: Dict[str, NamedScan] = {}
    for scan in scans:
        named = scan if isinstance(scan, NamedScan) else NamedScan(
            str(scan), scan_folder_name(scan))
        if named.folder in seen:
            raise ValueError(
                f'{seen[named.folder].scan} and {named.scan} would both '
                f'write their results to the folder {named.folder!r} of '
                '--out-dir; rename one or run them apart')
        seen[named.folder] = named
    return list(seen.values())


def _is_scan_file(name: str) -> bool:
    return name.lower().endswith(SCAN_EXTENSIONS)


def _holds_dicom(folder: str, files: Sequence[str]) -> bool:
    """Whether a folder holds a DICOM file (``.dcm``, or the ``DICM``
    magic of a file without an extension the scans have)."""
    if any(name.lower().endswith('.dcm') for name in files):
        return True
    return any(looks_like_dicom(osp.join(folder, name)) for name in files
               if not _is_scan_file(name) and not name.lower().endswith(
                   ('.raw', '.zraw', '.txt', '.csv', '.json', '.png')))


def find_scans(root: Union[str, Path],
               skip: Optional[Union[str, Path]] = None) -> List[NamedScan]:
    """The scans of a folder tree (``--scan-tree``), in sorted order: every
    scan file and every folder holding DICOM files, each results folder
    its path under ``root`` joined by ``_`` (``p01/CT_2/`` -> ``p01_CT_2``).
    Hidden files and ``skip`` (the run's ``--out-dir``) are passed over.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: the tree holds no scan, or two scans would share a
            results folder (both named).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f'--scan-tree {root}: no such folder')
    skipped = osp.realpath(skip) if skip else None
    scans: List[NamedScan] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.') and
                         osp.realpath(osp.join(folder, d)) != skipped)
        files = sorted(f for f in files if not f.startswith('.'))
        parts = Path(folder).relative_to(root).parts
        if _holds_dicom(folder, files):
            scans.append(NamedScan(folder, '_'.join(parts) or root.name))
        scans += [NamedScan(osp.join(folder, name), '_'.join(
            parts + (scan_folder_name(osp.join(folder, name)), )))
            for name in files
            if _is_scan_file(name)]
    if not scans:
        raise ValueError(f'--scan-tree {root}: no scan found (NIfTI, .mhd, '
                         '.mha, .nrrd files or folders of DICOM files)')
    return named_scans(scans)
