# Copyright (c) mmlesion contributors. All rights reserved.
"""The paper tables ``tools/reproduce.py`` reproduces and their rows (the
index ``--help`` prints without importing torch): the library's own
:mod:`mmlesion.reproduce.table_index`, read on its own, which the library
plans from (the stages of each row are in :mod:`mmlesion.reproduce.tables`).
"""
from .library_leaf import load_library_leaf

TABLE_INDEX = load_library_leaf('mmlesion.reproduce.table_index').TABLE_INDEX


def tables_help() -> str:
    """Every table with its rows, for ``--help``."""
    lines = ['tables and their rows:']
    for name, t in TABLE_INDEX.items():
        lines.append(f'  {name}: {t.title}')
        lines.append(f"      rows: {' '.join(t.rows)}")
    return '\n'.join(lines)
