# Copyright (c) mmlesion contributors. All rights reserved.
"""Write a file so that it appears whole or not at all."""
import json
import os
import os.path as osp
import tempfile
from typing import Any


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same
    folder and ``os.replace`` (a reader sees the old file or the new one,
    never half of one; an interrupted write leaves no partial file).

    Args:
        path (str): output file; its folder is created if missing.
        text (str): the content.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix=f'.{osp.basename(path)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_json(path: str, obj: Any, **kwargs) -> None:
    """:func:`atomic_write_text` of ``json.dumps(obj, **kwargs)``.

    Args:
        path (str): output JSON file.
        obj: a JSON-serialisable object (NaN is written as ``NaN``, as
            :func:`json.dumps` does).
        **kwargs: passed to :func:`json.dumps` (e.g. ``indent=2``).
    """
    atomic_write_text(path, json.dumps(obj, **kwargs) + '\n')
