# Copyright (c) mmlesion contributors. All rights reserved.
"""The paper methods' workflows, one package each.

Each ``mmlesion/methods/<name>/`` registers what it tells each engine in
that engine's registry (:mod:`mmlesion.utils.method_registry`): its config
keys and whole-scan steps when imported, its paper tables from the module
it names in ``PAPER_TABLES_MODULE`` (its ``tables.py``, imported by the
paper harness only). What only it adds (its models, datasets, search)
lives in it too, registered when it is imported, as mmdet's ``projects/``
do: its configs under ``configs/<name>/`` import it through
``custom_imports``; a component two methods share stays in the core
(``mmlesion/models``, ``mmlesion/datasets``). Every package here is imported
with this one, so a new method is a new folder (docs/adding_a_method.md).
"""
import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if _info.ispkg:
        importlib.import_module(f'{__name__}.{_info.name}')
