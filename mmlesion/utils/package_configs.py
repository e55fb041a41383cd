# Copyright (c) mmlesion contributors. All rights reserved.
"""Where the mmlesion configs are, installed or in a clone."""
import os.path as osp

_PKG_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def lesion_config_path(rel_path: str) -> str:
    """Absolute path of an mmlesion config, for a user config's ``_base_``.

    A pip-installed mmlesion carries its configs as mmdet does, in
    ``mmlesion/.mim/configs`` (``setup.py`` copies them there; an editable
    install links them); a clone has them in ``configs/`` beside the
    package (preferred when present). mmengine 0.10.7 reads
    ``package::path`` bases only for the OpenMMLab packages of its fixed
    table, so ``'mmlesion::...'`` is refused; a config in the user's own
    folder inherits ours through this absolute path instead. mmengine
    evaluates the ``_base_`` expression while parsing, before any
    ``custom_imports``, so the import goes in it::

        _base_ = [__import__('mmlesion.utils', fromlist=['_']).
                  lesion_config_path('demo/faster_rcnn_r18_fpn_1x_demo_'
                                     'deeplesion.py')]

    Args:
        rel_path (str): path below ``configs/``, e.g.
            ``'demo/faster_rcnn_r18_fpn_1x_demo_deeplesion.py'``.

    Returns:
        str: the absolute path of the file.

    Raises:
        FileNotFoundError: no such config in either place (both named).
    """
    rel_path = str(rel_path).lstrip('/')
    candidates = [  # a clone's configs/ first: .mim may be a stale copy
        osp.join(osp.dirname(_PKG_DIR), 'configs', rel_path),
        osp.join(_PKG_DIR, '.mim', 'configs', rel_path)
    ]
    for path in candidates:
        if osp.isfile(path):
            return path
    raise FileNotFoundError(f'mmlesion config {rel_path!r} not found in '
                            f'{candidates[0]} nor {candidates[1]}')
