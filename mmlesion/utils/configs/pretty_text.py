# Copyright (c) mmlesion contributors. All rights reserved.
"""A config whose text is written without yapf.

mmengine's Runner asks for ``cfg.pretty_text`` for the log, the dumped
config and every checkpoint, and by default yapf reflows the whole text
each time (0.8 s per formatting on a CPU core). The text before yapf is
mmengine's own: sorted keys, one per line, indented, valid Python that
loads to the same config; yapf only changes whitespace. The tools give
the Runner :func:`without_yapf` of their config.
"""
from mmengine.config import Config


def without_yapf(cfg: Config) -> Config:
    """``cfg`` (same content, shared) with yapf's formatting switched off.

    Args:
        cfg (Config): a loaded config.

    Returns:
        Config: a config to give to ``Runner.from_cfg``; its
        ``pretty_text`` is mmengine's text without yapf's reflow.
    """
    state = cfg.__getstate__()  # mmengine's pickling state: field 4 is
    out = Config.__new__(Config)  # ``format_python_code``
    out.__setstate__(state[:4] + (False, ) + state[5:])
    return out
