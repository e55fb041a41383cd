# Copyright (c) mmlesion contributors. All rights reserved.
"""The paper tables ``tools/reproduce.py`` knows, as rows of stages: the
tables of every registered method (``mmlesion/methods/<name>/tables.py``,
:class:`~.paper_tables.PaperTables`'s ``tables``). The paper's
numbers are not here: they are in :mod:`.paper_results`.
"""
from typing import List, Mapping, Optional

from .paper_tables import PAPER_TABLES, TableSpec, paper_view
from .plan import PlanContext, Row

#: table name -> its :class:`~.paper_tables.TableSpec`, of every registered method
TABLES: Mapping[str, TableSpec] = paper_view('tables')


def build_rows(table: str, ctx: PlanContext, rows: Optional[List[str]],
               seeds: List[int]) -> List[Row]:
    """The rows (x seeds) of a table, in the paper's order.

    Raises:
        KeyError: an unknown table or row, naming the known ones.
    """
    if table not in TABLES:
        raise KeyError(f'unknown table {table!r}; known: {sorted(TABLES)}')
    spec = TABLES[table]
    keys = rows or spec.row_keys
    bad = [k for k in keys if k not in spec.row_keys]
    if bad:
        raise KeyError(f'{table}: unknown rows {bad}; its rows: '
                       f'{spec.row_keys}')
    return [spec.build(ctx, k, s) for k in keys for s in seeds]


def table_data_folders(table: str, ctx: PlanContext) -> List[str]:
    """Every data folder a table reads: its method's
    ``PaperTables.data_folders``, else ``--data-root`` or the method's
    default data root."""
    spec = PAPER_TABLES.part(table.split('/')[0])
    if spec.data_folders is not None:
        return spec.data_folders(table, ctx)
    return [ctx.data_root or spec.data_root]
