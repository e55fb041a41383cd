# Copyright (c) mmlesion contributors. All rights reserved.
"""The options a method adds to the tools that run its steps.

A method home (``mmlesion/methods/<name>/``) that adds options to a tool
keeps them in its ``flags.py``, a module of the standard library only, with
one function per tool kind: ``add_<kind>_arguments(parser)`` (e.g.
``add_whole_scan_arguments`` for ``tools/infer_volume.py``). The tool calls
:func:`add_method_arguments` while it builds its parser; each ``flags.py``
is loaded from its file, so ``--help`` imports nothing of mmlesion. The
method reads its options back through the typed settings object it
registers with its steps (e.g.
:class:`~mmlesion.apis.whole_scan.method_steps.WholeScanMethod`), which
fails naming an option the parser lacks.
"""
import argparse
import importlib.util
import os.path as osp
from glob import glob
from typing import List

from .package_data import _package_dir


def add_method_arguments(parser: argparse.ArgumentParser,
                         kind: str) -> List[str]:
    """Call ``add_<kind>_arguments(parser)`` of every method home's
    ``flags.py`` that defines it, in name order.

    Returns:
        list[str]: the methods that added options.
    """
    out = []
    for path in sorted(glob(osp.join(_package_dir(), 'methods', '*',
                                     'flags.py'))):
        method = osp.basename(osp.dirname(path))
        spec = importlib.util.spec_from_file_location(
            f'mmlesion_cli._method_flags.{method}', path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        add = getattr(module, f'add_{kind}_arguments', None)
        if add is not None:
            add(parser)
            out.append(method)
    return out
