# Copyright (c) mmlesion contributors. All rights reserved.
"""The data of the installed ``mmlesion`` package, read without importing
it.

A few values a tool's ``--help`` shows (the demo generators' defaults,
the settings' defaults and choices) are data of the library, which the
library reads too: the one source of each, a JSON file.
``importlib.util.find_spec`` locates a
top-level package without running its ``__init__``, so reading them costs
no import of mmlesion, mmdet or torch.
"""
import importlib.util
import json
import os.path as osp
from typing import Any


def _package_dir() -> str:
    spec = importlib.util.find_spec('mmlesion')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('mmlesion is not installed: see README.md')
    return spec.submodule_search_locations[0]


def package_json(relative: str) -> Any:
    """The JSON file ``relative`` (``/``-separated) of the ``mmlesion``
    package, e.g. ``'apps/demo/tool_defaults.json'``."""
    path = osp.join(_package_dir(), *relative.split('/'))
    with open(path) as f:
        return json.load(f)
