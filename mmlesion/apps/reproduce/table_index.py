# Copyright (c) mmlesion contributors. All rights reserved.
"""The paper tables the registered methods plan: the title of each and its
rows, in the paper's order.

A method keeps the index of its tables, ``TABLE_INDEX = {...}`` (table
name -> title and rows), beside their row builders (its ``tables.py``) and
builds its :class:`~.paper_tables.TableSpec` objects from both with
:func:`table_specs`; ``tools/reproduce.py --list`` prints them.
"""
from typing import (Any, Callable, Dict, List, Mapping, NamedTuple, Sequence,
                    Tuple)

from .paper_tables import TableSpec
from .plan import LazyMapping

#: a table's row builder, the paper keys it prints, its FROC picture's FP
#: rates, and whether its rows are LUNA16 10-fold rows
TableBuilder = Tuple[Callable[..., Any], Mapping[str, Any], Sequence[float],
                     bool]


class TableIndex(NamedTuple):
    title: str
    rows: List[str]


def table_specs(index_file: str, builders: Mapping[str, TableBuilder],
                table_index: Mapping[str, Mapping[str, Any]]
                ) -> Dict[str, TableSpec]:
    """A method's tables: the titles and rows of its ``TABLE_INDEX`` with
    its row builders.

    Args:
        index_file (str): the module holding ``TABLE_INDEX`` (its
            ``__file__``), named in the error.
        builders (Mapping[str, TableBuilder]): table name -> (build,
            metric map, picture rates, folds).
        table_index (Mapping[str, Mapping[str, Any]]): table name ->
            ``{'title': ..., 'rows': [...]}``, in the paper's order.

    Raises:
        ValueError: a table in one and not the other, named with the file.
    """
    index = {name: TableIndex(**t) for name, t in table_index.items()}
    if set(index) != set(builders):
        raise ValueError(
            f'{index_file}: tables {sorted(set(index) ^ set(builders))} are '
            'in TABLE_INDEX or the builders, not both: add the missing one')
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
