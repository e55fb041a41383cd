# Copyright (c) mmlesion contributors. All rights reserved.
"""A config whose text is written without yapf: the Runner asks for
``cfg.pretty_text`` for the log, the dump and every checkpoint, and yapf
(which only changes whitespace) takes 0.8 s each time.
"""
from mmengine.config import Config


def without_yapf(cfg: Config) -> Config:
    """``cfg`` (same content, shared) with yapf's formatting switched off,
    for ``Runner.from_cfg``."""
    state = cfg.__getstate__()  # mmengine's pickling state: field 4 is
    out = Config.__new__(Config)  # ``format_python_code``
    out.__setstate__(state[:4] + (False, ) + state[5:])
    return out
