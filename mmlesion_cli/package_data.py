# Copyright (c) mmlesion contributors. All rights reserved.
"""The data of the installed ``mmlesion`` package, read without importing
it.

A few values a tool's ``--help`` shows (the tables of ``reproduce``, the
demo generators' defaults) are data of the library, which the library
reads too: the one source of each, a JSON file or a plain literal of a
module (read with :mod:`ast`). ``importlib.util.find_spec`` locates a
top-level package without running its ``__init__``, so reading them costs
no import of mmlesion, mmdet or torch.
"""
import ast
import glob
import importlib.util
import json
import os.path as osp
from typing import Any, Dict, Sequence


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


def package_literals(pattern: str, name: str) -> Dict[str, Any]:
    """The dict literals assigned to ``name`` at the top of the modules of
    the ``mmlesion`` package matching ``pattern`` (``/``-separated, a
    glob), merged in file-name order, e.g. ``('methods/*/*.py',
    'TABLE_INDEX')``: every method's tables."""
    return module_literals(
        sorted(glob.glob(osp.join(_package_dir(), *pattern.split('/')))),
        name)


def module_literals(paths: Sequence[str], name: str) -> Dict[str, Any]:
    """The dict literals ``name = {...}`` (or ``name: type = {...}``) at the
    top of the modules ``paths``, merged in their order, read with
    :func:`ast.literal_eval` (no module is imported).

    Raises:
        ValueError: an assignment that is not a plain literal dict, or two
            modules giving the same key, each named with its file.
    """
    out: Dict[str, Any] = {}
    where: Dict[str, str] = {}
    for path in paths:
        with open(path, encoding='utf-8') as f:
            text = f.read()
        if name not in text:
            continue
        for node in ast.parse(text, path).body:
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, ast.AnnAssign) else
                       [])
            if not any(isinstance(t, ast.Name) and t.id == name
                       for t in targets):
                continue
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = None
            if not isinstance(value, dict):
                raise ValueError(
                    f'{path}:{node.lineno}: {name} must be a plain literal '
                    'dict (the tools read it without importing mmlesion)')
            for key, item in value.items():
                if key in out:
                    raise ValueError(f'{path}: {key!r} is also in '
                                     f'{where[key]}: rename one')
                out[key], where[key] = item, path
    return out
