# Copyright (c) mmlesion contributors. All rights reserved.
"""Data-root discovery: the real-data folder (``MMLESION_SHARED_DATA``,
no default) and the demo dataset (``data/demo_deeplesion`` of the clone).
"""
import os
import os.path as osp
from pathlib import Path
from typing import Optional

_PKG_DIR = Path(__file__).resolve().parents[1]

#: The variable naming the real-data folder.
SHARED_DATA_ENV = 'MMLESION_SHARED_DATA'


def shared_data_root() -> Optional[Path]:
    """The folder ``MMLESION_SHARED_DATA`` names (resolved), or None when
    it is unset or names no folder."""
    env = os.environ.get(SHARED_DATA_ENV)
    if env and Path(env).is_dir():
        return Path(env).resolve()
    return None


def demo_data_root() -> Path:
    """Default location of the generated demo dataset (may not exist)."""
    return Path(osp.join(str(_PKG_DIR.parent), 'data', 'demo_deeplesion'))
