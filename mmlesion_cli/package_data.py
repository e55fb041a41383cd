# Copyright (c) mmlesion contributors. All rights reserved.
"""The data files of the installed ``mmlesion`` package, read without
importing it.

A few values a tool's ``--help`` shows (the tables of ``reproduce``, the
demo generators' defaults) are data files of the library, which the
library reads too: the one source of each. ``importlib.util.find_spec``
locates a top-level package without running its ``__init__``, so reading
them costs no import of mmlesion, mmdet or torch.
"""
import importlib.util
import json
import os.path as osp
from typing import Any


def package_json(relative: str) -> Any:
    """The JSON file ``relative`` (``/``-separated) of the ``mmlesion``
    package, e.g. ``'reproduce/table_index.json'``."""
    spec = importlib.util.find_spec('mmlesion')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('mmlesion is not installed: see README.md')
    path = osp.join(spec.submodule_search_locations[0], *relative.split('/'))
    with open(path) as f:
        return json.load(f)
