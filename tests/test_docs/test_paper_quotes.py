# Copyright (c) mmlesion contributors. All rights reserved.
"""Every paper number a document quotes is a number of the code's one
table of them (:mod:`mmlesion.reproduce.paper_results`: the compared
numbers; :mod:`mmlesion.reproduce.paper_text`: ``PAPER_TEXT`` and the gains
of ``PAPER_DIFFERENCES``).

A quote is recognised in three forms:

* a parenthesis that starts with the paper: ``(paper 82.66)``,
  ``(the paper: +2.10)``, ``(paper, Table 1: 28.4 M)``;
* ``the paper: ...`` / ``paper: ...`` up to the end of the clause
  (``;``, ``)``, a full stop, the end of the line);
* the cells of a results table's column whose header says ``paper``
  (the method READMEs).

In a quote, every number with a decimal point and every signed or
approximate one (``+1.12``, ``-2.04``, ``~4``) must be in the table, to
the digits quoted (a CPM also in percent); plain integers (epochs, GPUs,
slices, table numbers) are not checked. A method's README and
``projects/<method>/RESULTS.md`` are checked against that method's
numbers, every other document against all methods'.
"""
import re
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

from mmlesion.reproduce.paper_text import quotable_numbers
from mmlesion.testing import repo_root

ROOT = repo_root()
METHODS = ('elixirnet', 'retinanet_lesion', 'aggregated3d', 'lens')
DOCS = sorted([ROOT / 'README.md', ROOT / 'data' / 'README.md',
               ROOT / 'projects' / 'README.md'] +
              list((ROOT / 'docs').glob('*.md')) +
              list((ROOT / 'configs').glob('*/README.md')) +
              list((ROOT / 'projects').glob('*/RESULTS.md')))

_PAREN = re.compile(r"\((?:the )?paper(?:'s)?\b[^()]*\)", re.I)
_CLAUSE = re.compile(r"\b(?:the )?paper: (?:[^;)\n.]|\.(?=\d))*")
#: a number; a sign only where it cannot be a range's dash (``0.5-4``)
_NUM = re.compile(r"(?:(?<=[\s(:])|^)([+\-−~]?)(\d+(?:\.(\d+))?)(?![\d])"
                  r"|(?<![\w.\-])(\d+(?:\.(\d+))?)(?![\d])")


def _method(path: Path) -> Optional[str]:
    parts = path.relative_to(ROOT).parts
    if parts[0] in ('configs', 'projects') and parts[1] in METHODS:
        return parts[1]
    return None


#: FP rates, sections and ranges that name a column, not a result
_NOT_RESULTS = re.compile(
    r"\d+(?:\.\d+)?(?:\s*(?:-|,|/)\s*\d+(?:\.\d+)?)*\s*FPs?\b"
    r"|\b(?:Sec|Eq|Fig)\.\s*[\dIVX.-]+|\b(?:Table|Tables)\s+[\dIVX]+")


def checked_numbers(quote: str) -> Iterator[Tuple[str, int]]:
    """(number as written, its decimals) of every number a quote must
    take from the table."""
    quote = _NOT_RESULTS.sub(' ', quote)
    for m in _NUM.finditer(quote):
        if m.group(2) is not None:
            sign, num, dec = m.group(1), m.group(2), m.group(3)
        else:
            sign, num, dec = '', m.group(4), m.group(5)
        after = quote[m.end():m.end() + 1]
        if after.isalpha() and after not in 'xX':
            continue  # a name: 2.5D, 3.1 of a section is "Sec. 3.1"
        if sign or dec:
            yield num, len(dec or '')


def _table_quotes(text: str) -> Iterator[str]:
    """The cells of every markdown table column headed ``paper``."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if not (line.startswith('|') and
                re.match(r'^\|[\s:|-]+\|$', lines[i + 1].strip())):
            continue
        header = [c.strip() for c in line.strip().strip('|').split('|')]
        cols = [k for k, c in enumerate(header)
                if re.match(r'paper:', c, re.I)]
        for row in lines[i + 2:]:
            if not row.startswith('|'):
                break
            cells = [c.strip() for c in row.strip().strip('|').split('|')]
            for k in cols:
                if k < len(cells):
                    yield cells[k]


def quotes(text: str) -> Iterator[str]:
    """Every paper quote of a document, in the three forms."""
    flat = re.sub(r'\s*\n\s*', ' ', text)
    yield from (m.group(0) for m in _PAREN.finditer(flat))
    yield from (m.group(0) for m in _CLAUSE.finditer(flat))
    yield from _table_quotes(text)


def unknown_numbers(text: str, allowed) -> List[Tuple[str, str]]:
    """(quote, number) of every quoted number not in ``allowed``."""
    bad = []
    for quote in quotes(text):
        for num, dec in checked_numbers(quote):
            value = float(num)
            if not any(abs(round(a, dec) - value) < 10**-(dec + 3) or
                       abs(a - value) < 1e-9 for a in allowed):
                bad.append((quote[:120], num))
    return bad


@pytest.mark.parametrize('path', DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_quoted_paper_number_is_the_tables(path):
    allowed = quotable_numbers(_method(path))
    assert unknown_numbers(path.read_text(), allowed) == []


def test_a_number_not_in_the_table_fails():
    """The check fails on a made-up quote in every form, and passes the
    paper's own numbers and gains."""
    allowed = quotable_numbers('elixirnet')
    for text in ('TRPN helps (paper: +1.12 points at 3 FPs).',
                 'TRPN is ahead (paper: TRPN ahead by ~4 points).',
                 'the paper: 41.0 M parameters; ours 41.35 M',
                 '| row | paper: sens@3 |\n| --- | --- |\n| FPN | 81.52 |\n'):
        assert unknown_numbers(text, allowed), text
    for text in ('TRPN helps (paper: +2.10 points at 3 FPs).',
                 'over the focal loss (the paper: 0.95 at 3 FPs)',
                 '(paper, Table 1: 28.4 M), 0.5-4 FPs',
                 '| row | paper: sens@3 |\n| --- | --- |\n| FPN | 81.51 |\n'):
        assert unknown_numbers(text, allowed) == [], text
