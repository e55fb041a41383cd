# Copyright (c) mmlesion contributors. All rights reserved.
"""The options a method adds to the tools that run its steps.

A method home (``mmlesion/methods/<name>/``) that adds options to a tool
lists them as data in its ``flags.json``: per tool kind (e.g.
``whole_scan`` for ``tools/infer_volume.py``) an argument group's title
and its options (``flags`` and ``argparse`` keywords; ``type`` one of
:data:`TYPES`). The tool calls :func:`add_method_arguments` while it builds
its parser; the file is read, never run, so ``--help`` imports nothing of
mmlesion. The method reads its options back through the typed settings
object it registers with its steps (e.g.
:class:`~mmlesion.apis.whole_scan.method_steps.WholeScanMethod`), which
fails naming an option the parser lacks.
"""
import argparse
import json
import os.path as osp
from glob import glob
from typing import List

from .package_data import _package_dir

#: The option types a ``flags.json`` may name.
TYPES = {'int': int, 'float': float}


def add_method_arguments(parser: argparse.ArgumentParser,
                         kind: str) -> List[str]:
    """Add the ``kind`` options of every method home's ``flags.json``, in
    name order.

    Returns:
        list[str]: the methods that added options.

    Raises:
        ValueError: a ``flags.json`` naming a type not in :data:`TYPES`
            (the file named).
    """
    out = []
    for path in sorted(glob(osp.join(_package_dir(), 'methods', '*',
                                     'flags.json'))):
        with open(path) as f:
            spec = json.load(f).get(kind)
        if spec is None:
            continue
        group = parser.add_argument_group(spec['group'])
        for option in spec['options']:
            kwargs = {k: v for k, v in option.items() if k != 'flags'}
            if 'type' in kwargs:
                if kwargs['type'] not in TYPES:
                    raise ValueError(f'{path}: option {option["flags"]}: '
                                     f'type {kwargs["type"]!r} is not one '
                                     f'of {sorted(TYPES)}')
                kwargs['type'] = TYPES[kwargs['type']]
            group.add_argument(*option['flags'], **kwargs)
        out.append(osp.basename(osp.dirname(path)))
    return out
