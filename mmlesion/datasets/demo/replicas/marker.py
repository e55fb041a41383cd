# Copyright (c) mmlesion contributors. All rights reserved.
"""The marker of a release replica
(:mod:`mmlesion.datasets.demo.replicas.release`) and the replica sizes.

A replica's root holds ``REPLICA.txt``: :data:`REPLICA_FIRST_LINE`, then
``key: value`` lines (``dataset``, ``size``, ``seed``, ``version``, ...).
A real-data tool tells a replica apart with :func:`find_replica_marker`
(the folder and its ancestors: a converter may be pointed at a
sub-folder, e.g. KiTS19's ``data/``).
"""
import os.path as osp
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

#: Marker file at the root of every replica.
REPLICA_FILE = 'REPLICA.txt'
#: First line of :data:`REPLICA_FILE`.
REPLICA_FIRST_LINE = ('mmlesion release replica: SYNTHETIC data in a public '
                      'release layout, not a real dataset')
#: Version of the replica generators (bumped when the bytes change).
REPLICA_VERSION = 1


@dataclass(frozen=True)
class ReplicaSize:
    """How big a replica is (per dataset, the generators pick from it).

    Args:
        name (str): ``tiny`` or ``small``.
        num_scans (int): labelled scans (LUNA16, KiTS19, LiTS, NIH-LN).
        scan_px (int): in-plane size of a scan (square).
        num_slices (tuple): inclusive range of slices of a scan.
        fov_mm (tuple): range of the in-plane field of view (mm): the
            whole body in view, air around it, as a real scan.
        dl_key_slices (tuple): DeepLesion key slices (train, val, test).
        dl_image_px (int): DeepLesion slice size.
    """
    name: str
    num_scans: int
    scan_px: int
    num_slices: tuple
    fov_mm: tuple
    dl_key_slices: tuple
    dl_image_px: int


#: The sizes of ``--size``.
REPLICA_SIZES: Dict[str, ReplicaSize] = {
    'tiny': ReplicaSize('tiny', 2, 96, (20, 24), (340., 380.), (2, 1, 1),
                        128),
    'small': ReplicaSize('small', 4, 128, (32, 40), (340., 380.), (4, 2, 2),
                         192),
}


def replica_size(size: Union[str, ReplicaSize]) -> ReplicaSize:
    """A :class:`ReplicaSize` by name (or itself).

    Raises:
        ValueError: an unknown name (the known ones are listed).
    """
    if isinstance(size, ReplicaSize):
        return size
    if size not in REPLICA_SIZES:
        raise ValueError(f'unknown replica size {size!r}: one of '
                         f'{sorted(REPLICA_SIZES)}')
    return REPLICA_SIZES[size]


def replica_marker_text(dataset: str, size: str, seed: int,
                        layout: str) -> str:
    """The content of :data:`REPLICA_FILE`."""
    return (f'{REPLICA_FIRST_LINE}\n'
            f'dataset: {dataset}\n'
            f'size: {size}\n'
            f'seed: {seed}\n'
            f'version: {REPLICA_VERSION}\n'
            'generator: tools/misc/generate_release_replica.py '
            '(mmlesion.datasets.demo.replicas.release)\n'
            f'layout: {layout}\n'
            'Images are rendered phantoms with planted lesions; every '
            'annotation is made up. Never report results on it.\n')


def read_replica_marker(path: Union[str, Path]) -> Optional[Dict[str, str]]:
    """The ``key: value`` pairs of a marker file, or None if ``path`` is
    not one (missing, or another first line)."""
    path = Path(path)
    if not path.is_file():
        return None
    lines = path.read_text(encoding='utf-8').splitlines()
    if not lines or lines[0] != REPLICA_FIRST_LINE:
        return None
    out = {}
    for line in lines[1:]:
        key, sep, value = line.partition(': ')
        if sep and key.isidentifier():
            out[key] = value
    return out


def find_replica_marker(path: Union[str, Path]) -> Optional[Dict[str, str]]:
    """Whether ``path`` (a file or folder) lies inside a release replica:
    :data:`REPLICA_FILE` in ``path`` (a folder) or one of its ancestors.

    Returns:
        dict | None: the marker's fields plus ``root`` (the replica's
        root), or None for real data.
    """
    here = Path(osp.abspath(str(path)))
    for folder in ([here] if here.is_dir() else []) + list(here.parents):
        found = read_replica_marker(folder / REPLICA_FILE)
        if found is not None:
            found['root'] = str(folder)
            return found
    return None


def replica_sidecar(path: str) -> str:
    """The replica marker beside a file: ``<path>.REPLICA.txt``."""
    return f'{path}.{REPLICA_FILE}'


def find_data_replica_marker(path: Optional[str]
                             ) -> Optional[Dict[str, str]]:
    """Whether a file or folder a config or a converter reads is (made
    from) a release replica: the marker beside a file
    (:func:`replica_sidecar`), else ``REPLICA.txt`` in the folder or an
    ancestor.

    Returns:
        dict | None: the marker's fields plus ``root`` (the file with the
        marker beside it, or the replica's root) and ``marker`` (its
        file), or None for real data (or a missing path).
    """
    if not path or not osp.exists(path):
        return None
    if osp.isfile(path):
        found = read_replica_marker(replica_sidecar(path))
        if found is not None:
            return dict(found, root=path, marker=replica_sidecar(path))
    found = find_replica_marker(path)
    if found is None:
        return None
    return dict(found, marker=f'{found["root"]}/{REPLICA_FILE}')


def replica_warning(path: str) -> Optional[str]:
    """A warning line when the folder or file ``path`` lies in a release
    replica or was made from one."""
    found = find_data_replica_marker(path)
    if found is None:
        return None
    shown = osp.normpath(path).replace('\\', '/')
    origin = (f', made from {found["derived_from"]}'
              if found.get('derived_from') else '')
    return (f'{shown} is a release replica ({found.get("dataset")}, '
            f'{found["marker"]}{origin}): SYNTHETIC data made by '
            'tools/misc/generate_release_replica.py, fine to rehearse the '
            'commands; never report numbers measured on it')
