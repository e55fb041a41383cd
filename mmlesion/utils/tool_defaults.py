# Copyright (c) mmlesion contributors. All rights reserved.
"""The defaults and choices a tool's ``--help`` shows, as data.

Importing any module of ``mmlesion`` registers every component (torch,
mmcv, mmdet: seconds). So the values of a settings module that a tool's
options show (a dataclass's field defaults, the names of the choices) are
a data file beside the module, ``tool_defaults.json``, which the module
reads for its definitions and the tool reads without importing
``mmlesion`` (``mmlesion_cli.package_json``): the one source of each.
"""
import functools
import json
import os.path as osp
from typing import Dict, List, Union

#: A value of a JSON file.
JSONValue = Union[None, bool, int, float, str, List['JSONValue'],
                  Dict[str, 'JSONValue']]


def tool_defaults(module_file: str) -> Dict[str, JSONValue]:
    """The ``tool_defaults.json`` beside a module, read once per folder
    (the modules of one folder share it).

    Args:
        module_file (str): the module's ``__file__``.

    Returns:
        dict: its values, by the name of the dataclass or constant (shared:
        read them, never change them).
    """
    return _read(osp.dirname(module_file))


@functools.lru_cache(maxsize=None)
def _read(folder: str) -> Dict[str, JSONValue]:
    with open(osp.join(folder, 'tool_defaults.json'), encoding='utf-8') as f:
        return json.load(f)
