# Copyright (c) mmlesion contributors. All rights reserved.
"""What produced a result: checkpoint (path, SHA-256), config, versions.

Written into ``findings.json`` by :mod:`mmlesion.apis.volume_inference`,
so that results of different checkpoints or configs, or a mix of two runs,
can be told apart afterwards.
"""
import hashlib
import os.path as osp
import platform
from typing import Dict, Optional, Union

from mmengine.config import Config

from mmlesion.utils.checkpoint_checksum import sha256_file


def software_versions() -> Dict[str, str]:
    """Versions of mmlesion, its OpenMMLab stack, torch and Python."""
    import mmcv
    import mmdet
    import mmengine
    import torch

    from mmlesion.version import __version__
    return dict(
        mmlesion=__version__,
        mmdet=mmdet.__version__,
        mmcv=mmcv.__version__,
        mmengine=mmengine.__version__,
        torch=torch.__version__,
        python=platform.python_version())


def checkpoint_record(path: Optional[str]) -> Optional[dict]:
    """``{'path': absolute path, 'sha256': hex}`` of a checkpoint file, or
    None (random weights)."""
    if path is None:
        return None
    return dict(path=osp.abspath(path), sha256=sha256_file(path))


def config_record(cfg: Config, name: Optional[str] = None) -> dict:
    """The config's path (if a file), its full text and its SHA-256.

    The text is mmengine's ``pretty_text`` without the yapf formatting (the
    same Python, it loads back to the same config; formatting a full-size
    config takes 0.74 s on a 2-core CPU, longer than reading a chest scan,
    against 4 ms without).

    Args:
        cfg (Config): the config as run (``--cfg-options`` merged).
        name (str, optional): its file name as given.
    """
    try:
        text = Config(cfg.to_dict(), filename=cfg.filename,
                      format_python_code=False).pretty_text
    except Exception:  # a value mmengine cannot write; keep the dict
        text = repr(cfg.to_dict())
    path = name if name is not None else cfg.filename
    return dict(
        path=osp.abspath(path) if path and osp.isfile(path) else path,
        sha256=hashlib.sha256(text.encode('utf-8')).hexdigest(),
        text=text)


def run_provenance(cfg: Config,
                   config_name: Optional[str],
                   checkpoint: Optional[str],
                   **others: Union[str, None]) -> dict:
    """Everything :func:`checkpoint_record`, :func:`config_record` and
    :func:`software_versions` give, for a result file.

    Args:
        cfg (Config): the config as run.
        config_name (str, optional): its file name as given.
        checkpoint (str, optional): the checkpoint (None: random weights).
        **others: further checkpoints by role, e.g.
            ``fpr_checkpoint=...``.

    Returns:
        dict: ``checkpoint``, ``config``, ``versions`` and one entry per
        extra checkpoint.
    """
    record = dict(
        checkpoint=checkpoint_record(checkpoint),
        config=config_record(cfg, config_name),
        versions=software_versions())
    for role, path in others.items():
        if path is not None:
            record[role] = checkpoint_record(path)
    return record
