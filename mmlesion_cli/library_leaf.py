# Copyright (c) mmlesion contributors. All rights reserved.
"""Read a module of the library that imports nothing heavy, without
importing ``mmlesion`` (whose ``__init__`` registers every component and
takes seconds): the tools' ``--help`` and parse-time checks use the
library's own values instead of copies of them."""
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Dict, Optional

_LOADED: Dict[str, ModuleType] = {}


def library_file(module: str) -> Optional[Path]:
    """The source file of a dotted module name, found without running any
    package's ``__init__`` (None where the package cannot be found)."""
    top, *rest = module.split('.')
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).joinpath(
        *rest).with_suffix('.py')


def load_library_leaf(module: str) -> ModuleType:
    """Execute one file of the library on its own (e.g.
    ``'mmlesion.reproduce.table_index'``), once per process.

    Only for modules whose imports at module level are the standard
    library's: the file runs as it is, outside its package.

    Raises:
        ImportError: the file cannot be found.
    """
    if module not in _LOADED:
        path = library_file(module)
        if path is None or not path.is_file():
            raise ImportError(f'{module}: no such file of the library '
                              f'({path})')
        spec = importlib.util.spec_from_file_location(
            f'mmlesion_cli._leaf.{module}', path)
        leaf = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(leaf)
        _LOADED[module] = leaf
    return _LOADED[module]
