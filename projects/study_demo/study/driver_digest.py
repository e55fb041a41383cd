# Copyright (c) mmlesion contributors. All rights reserved.
"""What study-driver code made a result: a digest of the study drivers in
``projects/`` (beside :func:`mmlesion.utils.code_digest.code_fingerprint`,
which covers the installed package and its configs).

A study's rows are built, prepared (anchor optimisation, a searched
genotype, a multi-stage run) and run by the drivers in ``projects/``; a fix
there changes a row's result as much as a fix in ``mmlesion/`` does, so a
stored result records the drivers' digest too and is not reused after any
of them changed. Every project folder counts (not only the one of the
study): drivers import each other (the LENS and RetinaNet studies run
through ``projects/study_demo``), and a stale result is worse than a row
run again. The benchmarks and the mutation-testing tool are not study
drivers and are left out.
"""
import functools
import hashlib
from pathlib import Path

from mmlesion.utils.code_digest import tree_digest

#: ``projects/`` of this clone (the drivers are not installed, as in mmdet).
PROJECTS_DIR = Path(__file__).resolve().parents[2]
#: Folders of ``projects/`` that hold no study driver.
NOT_DRIVERS = ('benchmarks', 'mutation')


def drivers_digest(projects_dir: str = str(PROJECTS_DIR)) -> str:
    """SHA-256 over the ``.py`` files of every project folder of
    ``projects_dir`` but :data:`NOT_DRIVERS` (and over the top-level
    ``.py`` files), each folder by :func:`~mmlesion.utils.code_digest.
    tree_digest`.

    Args:
        projects_dir (str): the ``projects/`` folder. Defaults to this
            clone's.

    Returns:
        str: hex digest (computed once per process and folder).
    """
    return _cached_digest(str(Path(projects_dir).resolve()))


@functools.lru_cache(maxsize=None)
def _cached_digest(projects_dir: str) -> str:
    root = Path(projects_dir)
    sha = hashlib.sha256()
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.name.startswith('.') or path.name == '__pycache__':
            continue
        if path.is_dir() and path.name not in NOT_DRIVERS:
            sha.update(path.name.encode() + b'\0' +
                       tree_digest(str(path)).encode() + b'\0')
        elif path.is_file() and path.suffix == '.py':
            sha.update(path.name.encode() + b'\0' + path.read_bytes() +
                       b'\0')
    return sha.hexdigest()
