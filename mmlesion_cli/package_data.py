# Copyright (c) mmlesion contributors. All rights reserved.
"""The data files of the installed ``mmlesion`` package, read without
importing it.

A few values a tool's ``--help`` shows (the tables of ``reproduce``, the
demo generators' defaults) are data files of the library, which the
library reads too: the one source of each. ``importlib.util.find_spec``
locates a top-level package without running its ``__init__``, so reading
them costs no import of mmlesion, mmdet or torch.
"""
import glob
import importlib.util
import json
import os.path as osp
from typing import Any, Dict


def _package_dir() -> str:
    spec = importlib.util.find_spec('mmlesion')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('mmlesion is not installed: see README.md')
    return spec.submodule_search_locations[0]


def package_json(relative: str) -> Any:
    """The JSON file ``relative`` (``/``-separated) of the ``mmlesion``
    package, e.g. ``'datasets/demo/tool_defaults.json'``."""
    path = osp.join(_package_dir(), *relative.split('/'))
    with open(path) as f:
        return json.load(f)


def package_jsons(pattern: str) -> Dict[str, Any]:
    """The JSON objects of every file of the ``mmlesion`` package matching
    ``pattern`` (``/``-separated, a glob), merged in file-name order, e.g.
    ``'methods/*/table_index.json'``: every method's tables.

    Raises:
        ValueError: two files giving the same key, both named.
    """
    out: Dict[str, Any] = {}
    where: Dict[str, str] = {}
    for path in sorted(glob.glob(osp.join(_package_dir(),
                                          *pattern.split('/')))):
        with open(path) as f:
            for key, value in json.load(f).items():
                if key in out:
                    raise ValueError(f'{path}: {key!r} is also in '
                                     f'{where[key]}: rename one')
                out[key], where[key] = value, path
    return out
