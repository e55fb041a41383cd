# Copyright (c) mmlesion contributors. All rights reserved.
"""The paper methods' workflows, one package each (docs/adding_a_method.md).

Importing this package imports none of them: a config imports the one it
uses (``custom_imports=['mmlesion', 'mmlesion.methods.<name>']``), and an
engine that needs every method (its registry's first lookup) calls
:func:`import_methods`.
"""
import importlib
import pkgutil
from types import ModuleType
from typing import List


def import_methods() -> List[ModuleType]:
    """Import every method home below this package (each registers its
    parts and components), in name order.

    Returns:
        list[ModuleType]: the homes.
    """
    return [importlib.import_module(f'{__name__}.{info.name}')
            for info in sorted(pkgutil.iter_modules(__path__),
                               key=lambda i: i.name) if info.ispkg]
