# Copyright (c) mmlesion contributors. All rights reserved.
"""What code made a result: the package version and digests of the
sources and configs, so that a stored study result is reused only for the
same code (a result of older code is never taken silently)."""
import functools
import hashlib
from pathlib import Path
from typing import Dict

from mmlesion.version import __version__

_PKG_DIR = Path(__file__).resolve().parents[1]


def tree_digest(folder: str, pattern: str = '*.py') -> str:
    """SHA-256 over the relative paths and bytes of every ``pattern`` file
    under ``folder`` (sorted; hidden folders and ``__pycache__`` left out).

    Args:
        folder (str): the tree.
        pattern (str): which files count. Defaults to ``'*.py'``.

    Returns:
        str: hex digest; that of nothing when the folder is absent.
    """
    root = Path(folder)
    sha = hashlib.sha256()
    files = sorted(
        p for p in root.rglob(pattern)
        if p.is_file() and not any(
            part.startswith('.') or part == '__pycache__'
            for part in p.relative_to(root).parts)) if root.is_dir() else []
    for path in files:
        sha.update(path.relative_to(root).as_posix().encode() + b'\0')
        sha.update(path.read_bytes() + b'\0')
    return sha.hexdigest()


@functools.lru_cache(maxsize=None)
def _cached_fingerprint(pkg_dir: str, config_dir: str) -> tuple:
    return (('mmlesion', __version__), ('sources', tree_digest(pkg_dir)),
            ('configs', tree_digest(config_dir)))


def code_fingerprint() -> Dict[str, str]:
    """``{'mmlesion': version, 'sources': digest of the package's .py
    files, 'configs': digest of the configs}`` of the imported mmlesion
    (computed once per process)."""
    from mmlesion.utils.configs.lookup import configs_dir
    return dict(_cached_fingerprint(str(_PKG_DIR), str(configs_dir())))
