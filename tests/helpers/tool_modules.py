# Copyright (c) mmlesion contributors. All rights reserved.
"""Import a script under ``tools/`` as a module (tools are not a package)."""
import importlib.util
from types import ModuleType

from mmlesion.utils.configs.lookup import repo_root


def load_tool(rel_path: str) -> ModuleType:
    """The module of ``tools/<rel_path>`` (e.g. ``'train.py'``), or of the
    script ``<rel_path>`` when it starts with ``projects/``.

    Args:
        rel_path (str): path under ``tools/`` (or from the repository
            root for ``projects/...``).

    Returns:
        ModuleType: the executed module (its ``main`` not run).
    """
    path = (repo_root() / rel_path if rel_path.startswith('projects/') else
            repo_root() / 'tools' / rel_path)
    name = '_mmlesion_tool_' + rel_path.replace('/', '_').replace('.', '_')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
