# Copyright (c) mmlesion contributors. All rights reserved.
"""The marker of a release replica: is a file or folder synthetic data in a
public release layout (made by
``projects/replicas/tools/generate_release_replica.py`` of a clone)?

A replica's root holds ``REPLICA.txt``: :data:`REPLICA_FIRST_LINE`, then
``key: value`` lines (``dataset``, ``size``, ``seed``, ``version``, ...).
A real-data tool tells a replica apart with :func:`find_replica_marker`
(the folder and its ancestors: a converter may be pointed at a
sub-folder, e.g. KiTS19's ``data/``); the replica writers are the
clone's ``projects/replicas/`` (not installed).
"""
import os.path as osp
from pathlib import Path
from typing import Dict, Optional, Union

#: Marker file at the root of every replica.
REPLICA_FILE = 'REPLICA.txt'
#: First line of :data:`REPLICA_FILE`.
REPLICA_FIRST_LINE = ('mmlesion release replica: SYNTHETIC data in a public '
                      'release layout, not a real dataset')


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
            'projects/replicas/tools/generate_release_replica.py, fine to '
            'rehearse the commands; never report numbers measured on it')
