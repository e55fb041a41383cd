# Copyright (c) mmlesion contributors. All rights reserved.
"""Where the mmlesion configs are, installed or in a clone; a user's
config inherits ours with ``_base_ = 'mmlesion::<path>'`` (after ``import
mmlesion``: :func:`register_config_scope`) or through
:func:`lesion_config_path` (everywhere).
"""
import copy
import os
from pathlib import Path
from typing import Callable

from mmengine.config import Config

_PKG_DIR = Path(__file__).resolve().parents[2]


def repo_root() -> Path:
    """Return the root of the mmlesion source tree (``MMLESION_ROOT``, else
    the folder above the package).

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

def configs_dir() -> Path:
    """The folder of mmlesion's configs: a clone's ``configs/`` beside the
    package (an editable install), else the wheel's
    ``mmlesion/.mim/configs``."""
    clone = _PKG_DIR.parent / 'configs'
    return clone if clone.is_dir() else _PKG_DIR / '.mim' / 'configs'


def lesion_config_path(rel_path: str) -> str:
    """Absolute path of an mmlesion config (:func:`configs_dir`), for a
    user config's ``_base_`` (docs/mmdet_tools.md).

    Args:
        rel_path (str): path below ``configs/``, e.g.
            ``'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'``.

    Returns:
        str: the absolute path of the file.

    Raises:
        FileNotFoundError: no such config (the folder named).
    """
    rel_path = str(rel_path).lstrip('/')
    path = configs_dir() / rel_path
    if not path.is_file():
        raise FileNotFoundError(f'mmlesion config {rel_path!r} not found in '
                                f'{path.parent}')
    return str(path)


def _with_mmlesion_path(find: Callable[[str], str]) -> Callable[[str], str]:
    """``find`` (mmengine's ``get_installed_path``) that answers
    ``'mmlesion'`` with the folder of the imported package."""
    if getattr(find, '_mmlesion', False):
        return find

    def installed_path(package: str) -> str:
        if package == 'mmlesion':
            return str(_PKG_DIR)
        return find(package)

    installed_path._mmlesion = True  # type: ignore[attr-defined]
    return installed_path


def register_config_scope() -> None:
    """Let mmengine read ``'mmlesion::<path below configs/>'`` bases (its
    ``get_installed_path`` finds ``site-packages`` for an editable
    install). Called once by ``import mmlesion``.
    """
    from mmengine.config import config as config_module
    from mmengine.config import utils as config_utils
    config_utils.MODULE2PACKAGE.setdefault('mmlesion', 'mmlesion')
    config_module.get_installed_path = _with_mmlesion_path(
        config_module.get_installed_path)
