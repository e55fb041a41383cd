# Copyright (c) mmlesion contributors. All rights reserved.
"""The paper methods' workflows, one package each.

Each ``mmlesion/methods/<name>/`` registers its
:class:`~mmlesion.utils.method_spec.MethodSpec` in
:data:`mmlesion.registry.METHODS` when imported; its models, datasets and
configs stay where mmdet users look for them (``mmlesion/models``,
``mmlesion/datasets``, ``configs/<name>/``). Every package here is imported
with this one, so a new method is a new folder (docs/adding_a_method.md).
"""
import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if _info.ispkg:
        importlib.import_module(f'{__name__}.{_info.name}')
