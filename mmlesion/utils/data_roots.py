# Copyright (c) mmlesion contributors. All rights reserved.
"""Data-root discovery: the real-data folder and the demo dataset.

The real-data folder is the one the user names in ``MMLESION_SHARED_DATA``
(the library knows no default place for it); the generated demo dataset's
default place is ``data/demo_deeplesion`` of the clone.
"""
import os
import os.path as osp
from pathlib import Path
from typing import Optional

_PKG_DIR = Path(__file__).resolve().parents[1]

#: The variable naming the real-data folder.
SHARED_DATA_ENV = 'MMLESION_SHARED_DATA'


def shared_data_root() -> Optional[Path]:
    """Return the real-data folder, or None if absent.

    Returns:
        Path | None: the folder named by ``MMLESION_SHARED_DATA`` (resolved)
        when it exists; None when the variable is unset or names no folder.
    """
    env = os.environ.get(SHARED_DATA_ENV)
    if env and Path(env).is_dir():
        return Path(env).resolve()
    return None


def demo_data_root() -> Path:
    """Default location of the generated demo dataset (may not exist)."""
    return Path(osp.join(str(_PKG_DIR.parent), 'data', 'demo_deeplesion'))
