# Copyright (c) mmlesion contributors. All rights reserved.
"""What the study simulator's tools share with the main job's
``tools/misc/generate_demo_data.py`` (its options and its run: write the
set, print the summary, a named error for a bad setting or a folder in the
way), read without importing mmlesion."""
import importlib.util
import json
import os.path as osp
from types import ModuleType

_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def demo_data_tool() -> ModuleType:
    """The module of the clone's ``tools/misc/generate_demo_data.py``."""
    path = osp.join(_ROOT, 'tools', 'misc', 'generate_demo_data.py')
    spec = importlib.util.spec_from_file_location('_generate_demo_data',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shown_defaults(name: str) -> dict:
    """The defaults of the settings class ``name`` a tool's ``--help``
    shows (``tool_defaults.json`` beside this file, also read by the
    class)."""
    with open(osp.join(osp.dirname(__file__), 'tool_defaults.json')) as f:
        return json.load(f)[name]
