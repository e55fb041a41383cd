# Copyright (c) mmlesion contributors. All rights reserved.
"""What a ``tools/reproduce.py`` end-to-end test checks of a finished
table: every row it ran has a number of its own in each measured cell."""
import json
import math
import re
from pathlib import Path
from typing import Callable, Dict, Iterable


def measured_rows(work: Path, keys: Iterable[str],
                  may_be_nan: Callable[[str], bool] = lambda col: False,
                  not_measured: Iterable[str] = ()) -> Dict[str, dict]:
    """The rows of ``work/table.json``, which must be exactly ``keys``,
    each run with seed 0 and with a finite number in every column the
    paper prints for it (a row the paper has no number for: every column
    of ours; NaN only in the columns ``may_be_nan`` names, e.g. a lesion
    type the tiny test set lacks), and ``table.md`` with no ``-`` for ours
    beside a paper number, but in the columns the table does not measure
    by design (``not_measured``: LENS's GPU inference times)."""
    table = json.loads((work / 'table.json').read_text())
    rows = {r['key']: r for r in table['rows']}
    assert set(rows) == set(keys), sorted(rows)
    md = (work / 'table.md').read_text()
    skip = set(not_measured)
    for key, row in rows.items():
        assert row['seeds'] == [0], key
        measured = (set(row['paper']) or set(row['ours'])) - skip
        assert measured and measured <= set(row['ours']), (key, row['ours'])
        assert not skip & set(row['ours']), key
        for col in measured:
            value = row['ours'][col]['mean']
            assert math.isfinite(value) or (
                math.isnan(value) and may_be_nan(col)), (key, col)
        (line, ) = [ln for ln in md.splitlines()
                    if ln.startswith(f"| {row['label']} |")]
        dashes = len(re.findall(r'\d / -', line))  # paper's, not ours
        assert dashes == len(skip & set(row['paper'])), line
    return rows
