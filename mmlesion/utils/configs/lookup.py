# Copyright (c) mmlesion contributors. All rights reserved.
"""Config lookup: the repository root and its ``configs/`` folder.

mmdet's own ``get_detector_cfg`` looks for a ``configs/`` folder beside the
installed package, which a pip install does not have; these helpers look in
the mmlesion source tree (an editable install or a clone) instead.
"""
import copy
import os
from pathlib import Path

from mmengine.config import Config

_PKG_DIR = Path(__file__).resolve().parents[2]


def repo_root() -> Path:
    """Return the root of the mmlesion source tree.

    ``MMLESION_ROOT`` overrides the default (the folder above the package).

    Raises:
        FileNotFoundError: if no ``configs/`` folder is found there.
    """
    root = Path(os.environ.get('MMLESION_ROOT', _PKG_DIR.parent))
    if not (root / 'configs').is_dir():
        raise FileNotFoundError(
            f'No configs/ folder under {root}: run from an mmlesion clone '
            '(pip install -e .) or set MMLESION_ROOT to one.')
    return root


def get_config(rel_path: str) -> Config:
    """Load a config of this repository.

    Args:
        rel_path (str): path relative to ``configs/``, e.g.
            ``'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'``.

    Returns:
        Config: a deep copy, safe to modify.
    """
    path = repo_root() / 'configs' / rel_path
    if not path.is_file():
        raise FileNotFoundError(f'Config not found: {path}')
    return copy.deepcopy(Config.fromfile(str(path)))


def get_model_cfg(rel_path: str) -> Config:
    """Return only the ``model`` field of a repository config."""
    return get_config(rel_path).model
