# Copyright (c) mmlesion contributors. All rights reserved.
"""A paper's table on the real data from one command
(``tools/reproduce.py``): plans of stages, their execution, the table."""
from .execute import (StageError, compare, plan_lines, run_rows, summarise,
                      table_markdown, write_table)
from .paper_tables import TableSpec
from .plan import PlanContext, Row, Stage
from .tables import TABLES, build_rows

__all__ = [
    'PlanContext', 'Row', 'Stage', 'TableSpec', 'TABLES', 'build_rows',
    'run_rows', 'write_table', 'summarise', 'compare', 'plan_lines',
    'table_markdown', 'StageError'
]
