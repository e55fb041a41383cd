# Copyright (c) mmlesion contributors. All rights reserved.
"""``--cfg-options NAME=VALUE`` for a variable a config file lists in its
``planned_names`` (``tools/plan_dataset.py``'s configs): the file is run
again with ``NAME = VALUE`` in place of its assignment, so every setting
derived from it follows (mmengine merges options after the files ran).
"""
import ast
import os.path as osp
from typing import Any, Dict, Mapping, Tuple

from mmengine.config import Config


class PlannedOptionError(ValueError):
    """A planned variable that cannot be set as given."""


def split_planned(cfg: Config, options: Mapping[str, Any]
                  ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(planned, rest)``: the options naming a variable of the config's
    ``planned_names``, and the others."""
    names = cfg.get('planned_names') or ()
    planned = {k: v for k, v in options.items() if k in names}
    return planned, {k: v for k, v in options.items() if k not in planned}


def rerun_with(cfg: Config, values: Mapping[str, Any],
               source: str = 'config') -> Config:
    """The config file of ``cfg`` run again with the top-level assignments
    of ``values``' names replaced by those values (module doc).

    Args:
        cfg (Config): the loaded config (its ``filename`` is run again).
        values (Mapping): variable -> its new value.
        source (str): named in errors.

    Returns:
        Config: the config of the changed file.

    Raises:
        PlannedOptionError: the file cannot be read or has no top-level
            assignment of a name.
    """
    path = cfg.filename
    if not path or not osp.isfile(path):
        raise PlannedOptionError(
            f'{source}: --cfg-options {", ".join(values)}: the config file '
            'is needed to set a planned value, and it is not there')
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    spans = {}
    for node in ast.parse('\n'.join(lines)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            spans[node.targets[0].id] = (node.lineno, node.end_lineno)
    missing = [name for name in values if name not in spans]
    if missing:
        raise PlannedOptionError(
            f'{path}: lists {missing[0]!r} in planned_names but does not '
            'assign it; plan the config again with tools/plan_dataset.py')
    for name, (first, last) in sorted(
            ((n, spans[n]) for n in values), key=lambda x: -x[1][0]):
        lines[first - 1:last] = [f'{name} = {values[name]!r}']
    folder = osp.dirname(osp.abspath(path))
    for node in ast.parse('\n'.join(lines)).body:  # _base_ from anywhere
        if isinstance(node, ast.Assign) and getattr(
                node.targets[0], 'id', None) == '_base_' and isinstance(
                    node.value, ast.Constant) and isinstance(
                        node.value.value, str) and '::' not in \
                node.value.value:
            base = osp.normpath(osp.join(folder, node.value.value))
            lines[node.lineno - 1:node.end_lineno] = [f'_base_ = {base!r}']
            break
    new = Config.fromstring('\n'.join(lines) + '\n', '.py')
    return Config(new._cfg_dict.to_dict(), cfg_text=new.text,
                  filename=path)
