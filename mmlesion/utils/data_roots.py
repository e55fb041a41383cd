# Copyright (c) mmlesion contributors. All rights reserved.
"""Data-root discovery: the real-data folder and the demo dataset.

Tools and tests look for real data in the folder named by
``MMLESION_SHARED_DATA`` (else in the project's default location beside
the repository) and for the generated demo dataset in
``data/demo_deeplesion`` of the clone.
"""
import os
import os.path as osp
from pathlib import Path
from typing import Optional

_PKG_DIR = Path(__file__).resolve().parents[1]


def shared_data_root() -> Optional[Path]:
    """Return the real-data folder, or None if absent.

    The folder named by ``MMLESION_SHARED_DATA`` when it exists, else the
    project's default location beside the repository.
    """
    env = os.environ.get('MMLESION_SHARED_DATA')
    candidates = [Path(env)] if env else []
    candidates.append(_PKG_DIR.parent.parent / 'shared' / 'data')
    for cand in candidates:
        if cand.is_dir():
            return cand.resolve()
    return None


def demo_data_root() -> Path:
    """Default location of the generated demo dataset (may not exist)."""
    return Path(osp.join(str(_PKG_DIR.parent), 'data', 'demo_deeplesion'))
