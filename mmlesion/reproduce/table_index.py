# Copyright (c) mmlesion contributors. All rights reserved.
"""The paper tables the registered methods plan: the title of each and its
rows, in the paper's order.

A method keeps the index of its tables as data, ``table_index.json`` in
its package (``mmlesion/methods/<name>/``), so that ``tools/reproduce.py
--help`` lists every method's tables by reading those files without
importing mmlesion (:func:`mmlesion_cli.package_data.package_jsons`); the
method builds its :class:`~.plan.TableSpec` objects from it with
:func:`table_specs`.
"""
import json
import os.path as osp
from typing import (Any, Callable, Dict, List, Mapping, NamedTuple, Sequence,
                    Tuple)

from .plan import LazyMapping, TableSpec

#: a table's row builder, the paper keys it prints, its FROC picture's FP
#: rates, and whether its rows are LUNA16 10-fold rows
TableBuilder = Tuple[Callable[..., Any], Mapping[str, Any], Sequence[float],
                     bool]


class TableIndex(NamedTuple):
    title: str
    rows: List[str]


def table_specs(package_file: str,
                builders: Mapping[str, TableBuilder]) -> Dict[str, TableSpec]:
    """A method's tables: the titles and rows of the ``table_index.json``
    of its package with the row builders of its ``tables.py``.

    Args:
        package_file (str): a file of the method's package (its
            ``__init__``'s ``__file__``).
        builders (Mapping[str, TableBuilder]): table name -> (build,
            metric map, picture rates, folds).

    Raises:
        ValueError: a table in one and not the other, named with the file.
    """
    index_file = osp.join(osp.dirname(package_file), 'table_index.json')
    with open(index_file) as f:
        index = {name: TableIndex(**t) for name, t in json.load(f).items()}
    if set(index) != set(builders):
        raise ValueError(
            f'{index_file}: tables {sorted(set(index) ^ set(builders))} are '
            'in the index or the builders, not both: add the missing one')
    out = {}
    for name, (title, rows) in index.items():  # the paper's order
        build, metrics, rates, folds = builders[name]
        out[name] = TableSpec(name, title, rows, build, list(metrics),
                              folds=folds, picture_rates=rates)
    return out


def _index() -> Dict[str, TableIndex]:
    from .tables import TABLES
    return {name: TableIndex(spec.title, spec.row_keys)
            for name, spec in TABLES.items()}


#: table name -> its title and rows (every registered method's)
TABLE_INDEX: Mapping[str, TableIndex] = LazyMapping(_index)
