# Copyright (c) mmlesion contributors. All rights reserved.
"""Every paper number a document quotes is a number of the code's one
typed source of them, per paper (the method's package: ``PAPER_RESULTS``,
``RESULT_ROWS``, ``PRINTED``, ``GAINS``; read through
:mod:`mmlesion.apps.reproduce.paper_results` and
:mod:`tests.helpers.paper_quotes`), and stands at its place there.

A quote is recognised in three forms:

* a parenthesis that starts with the paper: ``(paper 82.66)``,
  ``(the paper: +2.10)``, ``(paper, Table 1: 28.4 M)``;
* ``the paper: ...`` / ``paper: ...`` up to the end of the clause
  (``;``, ``)``, a full stop, the end of the line);
* the cells of a results table's column whose header says ``paper``
  (the method READMEs).

The documents read are the README, ``docs/``, ``configs/*/README.md`` and
``projects/*/RESULTS.md``, and the docstrings of every Python file of the
package, tools, configs and projects.

In a quote, every number with a decimal point and every signed or
approximate one (``+1.12``, ``-2.04``, ``~4``) must be in the source, to
the digits quoted (a CPM also in percent); plain integers (epochs, GPUs,
slices, table numbers) are not checked. A method's README and
``projects/<method>/RESULTS.md`` are checked against that method's
numbers, every other document against all methods'. A quote that says it
is derived (``derived``) may give a number the source has not; a number
with a thousands ``K`` (``22.8K``) is checked too.

Where a number stands: each number of
:func:`~tests.helpers.paper_quotes.placed_numbers` (every compared number,
table cells included, and every other number the source holds) knows its
table, figure or section, its row and column, and the names a document
gives that row.
Quoted, such a number in its unit (``4.2 s``, ``90 %``, ``22.8K``,
``+2.37 points``) must have one of its own names nearest to it (in its
clause; else its cell, or its sentence up to the quote's end; else its
sentence), not the name of another entry of the same table or section (or
of the text on that table); a prose quote that names no row must cite the
number's place; a ``Sec.`` / ``Table`` / ``Fig.`` in its clause, else in
the parenthesis around it, must be its own; an FP rate in its clause must
be its column's; and a number only derived from printed ones (a ratio)
must be called derived. With the papers' text beside the data
(``../papers/`` of the shared data folder, as in CI), every printed
number is looked up at its place in the text: a table is its caption and
body, not the text around it; and the words a document quotes from a
paper (``the paper: "..."``, ``the text says "..."``, ``Sec. X: "..."``)
must be its words.
"""
import ast
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from mmlesion.apps.reproduce.paper_results import PAPER_RESULTS
from mmlesion.apps.reproduce.paper_tables import PAPER_TABLES
from mmlesion.apps.reproduce.paper_tables import Printed
from mmlesion.testing import repo_root, shared_data_root
from tests.helpers.paper_quotes import (RESULT_COLUMNS, RESULT_ROWS,
                                        placed_numbers, quotable_numbers)

ROOT = repo_root()
#: the registered methods (a new one's README is checked as theirs)
METHODS = tuple(PAPER_TABLES.parts())
DOCS = sorted([ROOT / 'README.md', ROOT / 'data' / 'README.md',
               ROOT / 'projects' / 'README.md'] +
              list((ROOT / 'docs').glob('*.md')) +
              list((ROOT / 'configs').glob('*/README.md')) +
              list((ROOT / 'projects').glob('*/RESULTS.md')))

_PAREN = re.compile(r"\((?:the )?paper(?:'s)?\b(?:[^()]|\([^()]*\))*\)", re.I)
_CLAUSE = re.compile(r"\b(?:the )?paper: (?:[^;()\n.]|\.(?=\d)|\([^()]*\))*")
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
        after = quote[m.end():m.end() + 2]
        thousands = after[:1] in ('K', 'k') and not after[1:].isalpha()
        if after[:1].isalpha() and after[:1] not in 'xX' and not thousands:
            continue  # a name: 2.5D, 3.1 of a section is "Sec. 3.1"
        if sign or dec or thousands:
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
        if re.search(r'\bderived\b', quote):
            continue  # says it is not the paper's number
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


# ------------------------------------------------ where a number stands
_UNIT = r'(K|k|%|ms|s|M|x|points?)(?![\w])'
_TOKEN = re.compile(r'(?<![\w.])([+\-−~]?)(\d+(?:\.(\d+))?)(?:\s?' + _UNIT +
                    ')?')
_RANGE_END = re.compile(r'\s*(?:-|–|to)\s*[+~]?\d+(?:\.\d+)?\s?' + _UNIT)
_REF = re.compile(r'\b(?:Sec\.|Section)\s*([IVX]+(?:-[A-H])?|\d+(?:\.\d+)*)'
                  r'|\bTables?\s+([IVX]+|\d+)\b|\bFig\.\s*(\d+[a-z]?)')
_ABBREV = ('Sec.', 'Fig.', 'Eq.', 'al.', 'e.g.', 'i.e.', 'vs.', 'cf.')


def _units(text: str) -> Iterator[Tuple[str, str]]:
    """(text, header) of every sentence of prose and every table row
    (header: its table's header line; '' for prose)."""
    lines, fence, para = text.splitlines(), False, []

    def sentences(block: List[str]) -> Iterator[str]:
        flat = ' '.join(ln.strip() for ln in block)
        parts = re.split(r'(?<=[.!?])\s+(?=[A-Z(*`"\[])', flat)
        out: List[str] = []
        for part in parts:
            if out and out[-1].endswith(_ABBREV):
                out[-1] += ' ' + part
            else:
                out.append(part)
        yield from out

    header = ''
    for i, line in enumerate(lines):
        if line.lstrip().startswith('```'):
            fence = not fence
            continue
        if fence:
            continue
        if line.startswith('|'):
            if i + 1 < len(lines) and re.match(r'^\|[\s:|-]+\|$',
                                               lines[i + 1].strip()):
                header = line
            elif not re.match(r'^\|[\s:|-]+\|$', line.strip()):
                yield line, header
            continue
        if not line.strip() or re.match(r'\s*(?:[-*]|\d+\.) ', line):
            yield from ((t, '') for t in sentences(para))
            para = []
        if line.strip():
            para.append(line)
    yield from ((t, '') for t in sentences(para))


def _same(value: float, num: str, dec: int) -> bool:
    """``num`` is ``value`` to the decimals it gives (an integer: exactly,
    so that ``4 %`` is not a gain of 3.9)."""
    if dec == 0:
        return abs(value - float(num)) < 1e-9
    return abs(round(value, dec) - float(num)) < 10**-(dec + 3)


def _unit_fits(place: Printed, sign: str, unit: str) -> bool:
    unit = {'k': 'K', 'point': 'points'}.get(unit, unit)
    if place.unit == 'points':
        return bool(sign.strip('~')) or unit in ('points', '%')
    if place.unit == '%':  # a percentage: written with or without '%'
        return not sign.strip('~') and unit in ('', '%')
    return unit == place.unit


#: an FP rate a quote names: ``at 3 FPs``, ``@3``, ``3 FPs per image``
_RATE = re.compile(r'(?:\bat\s+|@)(\d+(?:\.\d+)?|1/\d)(?:\s*FPs?\b)?'
                   r'|(?<![\d./\-–])(\d+(?:\.\d+)?|1/\d)\s*FPs?\b')


def _rate(text: str) -> Optional[float]:
    num, _, den = text.partition('/')
    return float(num) / float(den) if den else float(num)


def _column_rate(place: Printed) -> Optional[float]:
    """The FP rate of a sensitivity's column (None: another column)."""
    m = re.search(r'(?:at |@)([\d.]+)(?: FPs|$|_)', place.column)
    return float(m.group(1)) if m else None


def _spans(unit: str, start: int, end: int) -> List[Tuple[int, int]]:
    """The number's clause, then its cell or sentence, then the unit:
    where its row's name is looked for, narrowest first."""
    cuts = [m.start() for m in re.finditer(r'[,;()|]| — ', unit)]
    left = max([c for c in cuts if c < start] + [-1]) + 1
    right = min([c for c in cuts if c >= end] + [len(unit)])
    cells = [m.start() for m in re.finditer(r'\|', unit)]
    cell_l = max([c for c in cells if c < start] + [-1]) + 1
    cell_r = min([c for c in cells if c >= end] + [len(unit)])
    return [(left, right), (cell_l, cell_r), (0, len(unit))]


_PAPERS = re.compile(r"\bpaper's\s+[+\-~]?\d+(?:\.\d+)?(?:\s?" + _UNIT + ')?',
                     re.I)


def _quote_spans(unit: str, header: str) -> Tuple[List[Tuple[int, int]],
                                                  List[Tuple[int, int]]]:
    """The spans of a unit that quote the paper: (prose quotes: ``(paper
    ...)``, ``the paper: ...``, ``the paper's N``; the cells of a table's
    ``paper`` columns)."""
    prose = [m.span() for rx in (_PAREN, _CLAUSE, _PAPERS)
             for m in rx.finditer(unit)]
    cells = []
    if header:
        heads = [c.strip() for c in header.strip().strip('|').split('|')]
        bars = [m.start() for m in re.finditer(r'\|', unit)]
        for k, (a, b) in enumerate(zip(bars, bars[1:])):
            if k < len(heads) and re.search(r'\bpaper', heads[k], re.I):
                cells.append((a + 1, b))
    return prose, cells


def _name_pattern(names) -> 're.Pattern':
    return re.compile('|'.join(
        r'(?<![A-Za-z0-9-])' + re.escape(n) + r'(?![A-Za-z0-9-])'
        for n in sorted(names, key=len, reverse=True)), re.I)


def misplaced(text: str, method: Optional[str]) -> List[str]:
    """Every placed paper number a document quotes beside another row,
    model or section than the paper's, beside no name of its row, or, if
    derived, without saying so: one line each."""
    places = [p for p in placed_numbers(method) if p.names]
    bad = []
    for unit, header in _units(text):
        prose, cells = _quote_spans(unit, header)
        for tok in _TOKEN.finditer(unit):
            inside = [s for s in prose + cells
                      if s[0] <= tok.start() and tok.end() <= s[1]]
            if not inside:
                continue
            sign, num, dec, suffix = tok.group(1), tok.group(2), len(
                tok.group(3) or ''), tok.group(4) or ''
            end = _RANGE_END.match(unit, tok.end())
            if not suffix and end:
                suffix = end.group(1)
            if not (dec or sign.strip('~') or suffix):
                continue  # a plain integer: not a quoted number
            found = [p for p in places if _same(p.value, num, dec) and
                     _unit_fits(p, sign, suffix) or p.column == 'FROC score'
                     and _same(p.value * 100, num, dec) and  # a CPM in %
                     suffix in ('', '%') and not sign.strip('~')]
            if not found:
                continue
            where = f'{tok.group(0)!r} in {unit.strip()[:100]!r}'
            if all(not p.printed for p in found) and not re.search(
                    r'\bderived\b', unit):
                bad.append(f'{where}: derived, not said so')
            # the names of every entry of the same tables / sections (and
            # of the text on them: 'Table 5' and 'the text on Table 5')
            wheres = {p.where for p in found}
            owners = {}
            for place in places:
                if any(w in place.where or place.where in w for w in wheres):
                    for name in place.names:
                        owners.setdefault(name.lower(), []).append(place)
            names = _name_pattern(owners)
            in_cell = not any(s in prose for s in inside)
            spans = _spans(unit, tok.start(), tok.end())
            quote_end = max(b for a, b in inside)
            # the clause; the cell, or the sentence up to the quote's end
            # (what a quote is about is named before it); the unit
            scopes = spans[:2] if in_cell else [spans[0], (0, quote_end),
                                                 spans[2]]
            verdict = '' if in_cell or any(
                _cites(r, found) for r in _REF.finditer(unit)) \
                else 'names no row of it'
            for a, b in scopes:
                hits = list(names.finditer(unit, a, b))
                if not hits:
                    continue

                def dist(m):
                    return max(m.start() - tok.end(), tok.start() - m.end(),
                               0)

                near = min(dist(m) for m in hits)
                ok = any(set(map(id, owners[m.group(0).lower()])) &
                         set(map(id, found))
                         for m in hits if dist(m) == near)
                verdict = '' if ok else 'beside ' + ', '.join(sorted(
                    {m.group(0) for m in hits if dist(m) == near}))
                break
            if verdict:
                rows = '; '.join(sorted({f'{p.where}: {p.row}'
                                         for p in found}))
                bad.append(f'{where}: {verdict} (the paper: {rows})')
            # a Sec. / Table / Fig. in its clause, else in the parenthesis
            # around it, is its own
            refs = list(_REF.finditer(unit, *spans[0])) or list(
                _REF.finditer(unit, *_paren(unit, tok.start())))
            if refs and not any(_cites(r, found) for r in refs):
                bad.append(f'{where}: cited as ' + ', '.join(
                    r.group(0) for r in refs) + ' (the paper: ' +
                           '; '.join(sorted(wheres)) + ')')
            # an FP rate named in its clause is its column's
            rates = {_rate(m.group(1) or m.group(2))
                     for m in _RATE.finditer(unit, *spans[0])}
            columns = {_column_rate(p) for p in found} - {None}
            if rates and columns and not rates & columns:
                bad.append(f'{where}: at {sorted(rates)} FPs (the paper: '
                           + '; '.join(sorted(f'{p.where}: {p.row}, '
                                              f'{p.column}' for p in found))
                           + ')')
    return bad


def _paren(unit: str, pos: int) -> Tuple[int, int]:
    """The span of the innermost parenthesis around ``pos`` (empty:
    none)."""
    depth, start = 0, None
    for i in range(pos - 1, -1, -1):
        depth += {')': 1, '(': -1}.get(unit[i], 0)
        if depth < 0:
            start = i
            break
    if start is None:
        return 0, 0
    depth = 0
    for j in range(pos, len(unit)):
        depth += {'(': 1, ')': -1}.get(unit[j], 0)
        if depth < 0:
            return start, j + 1
    return start, len(unit)


def _cites(ref: 're.Match', found: List[Printed]) -> bool:
    """Whether a ``Sec.`` / ``Table`` reference is the place of one of
    ``found`` (``Sec. IV`` is that of ``Sec. IV-F``; ``Tables II, IV``
    of ``Table IV``)."""
    kind = 'Sec.' if ref.group(1) else 'Table' if ref.group(2) else 'Fig.'
    label = ref.group(1) or ref.group(2) or ref.group(3)
    return any(re.search(re.escape(f'{kind} {label}') + r'(?![\w])',
                         p.where) for p in found)


@pytest.mark.parametrize('path', DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_placed_number_stands_beside_its_row(path):
    assert misplaced(path.read_text(), _method(path)) == []


def test_a_number_beside_another_row_or_section_fails():
    """The check fails on a time, threshold, count, share or gain set
    beside another row or section than the paper's, or a ratio not called
    derived, and passes each at its place."""
    for text, method in (
            ('| 3D-AG (RPN + FPRN) | 0.93 s | the paper: 4.2 s on 4 K80s |',
             'aggregated3d'),
            ('The full model took 20 s (the paper: 4.2 s on 4 K80s, 3.0 s '
             'for the RPN).', 'aggregated3d'),
            ('The threshold (the paper, Sec. V: 0.269) cuts.',
             'aggregated3d'),
            ('Full / RPN 1.1x (the paper: 5.0 vs 3.0 s with Local '
             'Magnification, 1.7x).', 'aggregated3d'),
            ("Mined boxes: precision 0.33 against the paper's ~90 %.",
             'lens'),
            ("Sets of 40 key slices (the paper: DeepLesion's 22.8K key "
             'slices).', 'lens'),
            ('Small effects (paper: +2.37 points for the RTM).',
             'elixirnet')):
        assert misplaced(text, method), text
    for text, method in (
            ('| 3D-AG (RPN + FPRN) | 0.93 s | the paper (Sec. IV-F): ~5.0 s '
             'with Local Magnification on 4 K80s |', 'aggregated3d'),
            ('(Paper, 4 K80s: 3.0 s RPN, 5.0 s with Local Magnification.)',
             'aggregated3d'),
            ('The probability threshold (the paper, Sec. IV-F: 0.269).',
             'aggregated3d'),
            ("Table IV's 3D-AG (Ours), 4.2 s per scan (the paper).",
             'aggregated3d'),
            ("New lesion instances: 4 % true, against the paper's 90 %.",
             'lens'),
            ("(the paper: 22.8K lesions on 22.4K key slices)", 'lens'),
            ('(the paper, Table 5, derived from its rows: +0.31 for RTM '
             'over ALB to +2.37 for ALB over FPN)', 'elixirnet')):
        assert misplaced(text, method) == [], text


#: quotes that set a paper number beside another row, table or column than
#: its own, each with the same quote at its place: (method, misplaced,
#: placed)
MISPLACED = (
    # 0.935 is 3D-AG†'s; 3D-AG-LM† is 0.939
    ('aggregated3d', '(the paper: 0.935 for 3D-AG-LM†, Table III)',
     '(the paper: 0.939 for 3D-AG-LM†, Table III)'),
    # 82.66 is the focal-loss RPN's (the text on Table 5); FPN is 81.51
    ('elixirnet', '(the paper: FPN 82.66 at 3 FPs)',
     '(the paper: FPN 81.51 at 3 FPs)'),
    # 0.812 is Merged (Intersection)'s TNP; Merged (Union)'s is 0.714
    ('aggregated3d', '(the paper: Merged (Union) TNP 0.812)',
     '(the paper: Merged (Union) TNP 0.714)'),
    # 35.2 is ElixirNet w FPN's DeepLesion mAP (Tables 1, 5); KiTS19: 29.6
    ('elixirnet', '(the paper: ElixirNet 35.2 mAP on KiTS19, Table 3)',
     '(the paper: ElixirNet 29.6 mAP on KiTS19, Table 3)'),
    # 81.51 is FPN's sensitivity at 3 FPs; at 4 FPs it is 83.55
    ('elixirnet', '(the paper: FPN 81.51 at 4 FPs)',
     '(the paper: FPN 83.55 at 4 FPs)'),
    # a CPM in percent: 93.5 is 3D-AG†'s 0.935
    ('aggregated3d', '(the paper: 3D-AG-LM† 93.5 %)',
     '(the paper: 3D-AG-LM† 93.9 %)'),
)


@pytest.mark.parametrize('method,wrong,right', MISPLACED,
                         ids=[q for _, q, _ in MISPLACED])
def test_a_misplaced_quote_in_a_methods_docs_fails(method, wrong, right):
    """Added to the method's README (in memory), the misplaced quote makes
    the check fail, and only there; the same quote at its place passes."""
    readme = (ROOT / 'configs' / method / 'README.md').read_text()
    assert misplaced(readme, method) == []
    bad = misplaced(f'{readme}\nAs measured {wrong}.\n', method)
    assert len(bad) == 1 and 'As measured' in bad[0], bad
    assert misplaced(f'{readme}\nAs measured {right}.\n', method) == []


def test_every_paper_number_has_its_place():
    """Each number of ``PAPER_RESULTS`` stands at one typed place or more
    (a column of ``RESULT_COLUMNS``, else a row of ``RESULT_ROWS``), and
    every row places numbers of its model."""
    unplaced_keys = [
        (model, key) for model, metrics in PAPER_RESULTS.items()
        for key in metrics if key not in RESULT_COLUMNS and not any(
            not row.keys or key in row.keys
            for row in RESULT_ROWS.get(model, ()))]
    assert unplaced_keys == []
    stray = [(model, row.where) for model, rows in RESULT_ROWS.items()
             for row in rows if model not in PAPER_RESULTS or row.keys and
             not set(row.keys) & set(PAPER_RESULTS[model])]
    assert stray == []


#: the folders whose Python files' docstrings are read for quotes
_CODE = ('mmlesion', 'mmlesion_cli', 'tools', 'configs', 'projects')


def _code_method(path: Path) -> Optional[str]:
    """The method a Python file belongs to (its folder under
    ``mmlesion/methods``, ``configs`` or ``projects``), or None."""
    parts = path.relative_to(ROOT).parts
    if parts[:2] == ('mmlesion', 'methods') and len(parts) > 3:
        return parts[2] if parts[2] in METHODS else None
    return _method(path)


def docstring_quotes() -> Dict[Path, str]:
    """Every Python file's docstrings (module, class, function) that quote
    a paper, joined per file."""
    out = {}
    for top in _CODE:
        for path in sorted((ROOT / top).rglob('*.py')):
            src = path.read_text()
            if not re.search(r'\(paper|paper:', src, re.I):
                continue
            docs = [ast.get_docstring(node) for node in ast.walk(
                ast.parse(src)) if isinstance(node, (
                    ast.Module, ast.ClassDef, ast.FunctionDef,
                    ast.AsyncFunctionDef))]
            text = '\n\n'.join(d for d in docs if d and any(quotes(d)))
            if text:
                out[path] = text
    return out


def test_docstring_quotes_are_the_papers_and_in_place():
    """The quotes of docstrings are checked as the documents' are."""
    found = docstring_quotes()
    assert found, 'no docstring quotes a paper: the reader is broken'
    bad = {}
    for path, text in found.items():
        method = _code_method(path)
        wrong = [f'not the paper\'s: {n} in {q!r}' for q, n in
                 unknown_numbers(text, quotable_numbers(method))]
        wrong += misplaced(text, method)
        if wrong:
            bad[str(path.relative_to(ROOT))] = wrong
    assert bad == {}


_TUPLE = re.compile(r'(?<![\w.])\d+\.\d+(?:\s*/\s*\d+\.\d+)*')


def false_betweens(text: str) -> List[str]:
    """Every ``A lies between B and C`` of a document whose numbers do not
    (A, B, C: numbers or ``x / y`` tuples, compared place by place; A the
    last before the words in its sentence, B and C the first two after of
    A's length)."""
    bad = []
    for unit, _ in _units(text):
        for m in re.finditer(r'\blies between\b', unit):
            before = [t.group(0) for t in _TUPLE.finditer(unit, 0, m.start())]
            if not before:
                continue
            a = [float(x) for x in before[-1].split('/')]
            after = [[float(x) for x in t.group(0).split('/')]
                     for t in _TUPLE.finditer(unit, m.end())]
            ends = [t for t in after if len(t) == len(a)][:2]
            if len(ends) == 2 and not all(
                    min(b, c) <= x <= max(b, c)
                    for x, b, c in zip(a, *ends)):
                ends_text = ' and '.join(' / '.join(f'{v:g}' for v in t)
                                         for t in ends)
                around = unit[max(m.start() - 80, 0):m.end() + 80]
                bad.append(f'{before[-1]} does not lie between {ends_text}: '
                           f'{around!r}')
    return bad


@pytest.mark.parametrize('path', DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_number_said_to_lie_between_two_does(path):
    assert false_betweens(path.read_text()) == []


def test_a_false_between_fails():
    assert false_betweens('Read so: 85.43 / 34.4 lies between TRPN + ALB '
                          '(84.72 / 34.8) and ElixirNet (86.63 / 35.2).')
    assert false_betweens('Its sensitivity, 85.43, lies between TRPN + ALB '
                          '(84.72) and ElixirNet (86.63).') == []


# ---------------------------------------------- against the papers' text
#: the papers' text files (beside the shared data, ``../papers/``)
PAPER_FILES = {'elixirnet': 'elixirnet_relation_aware_lesion_detection.txt',
               'retinanet_lesion': 'improved_retinanet_dense_masks_recist.txt',
               'aggregated3d': '3d_aggregated_faster_rcnn_a.txt',
               'lens': 'lens_multi_dataset_partial_labels.txt'}


def _paper(method: str) -> str:
    shared = shared_data_root()
    path = None if shared is None else (shared.parent / 'papers' /
                                        PAPER_FILES[method])
    if path is None or not path.is_file():
        pytest.skip('the papers\' text is not beside the shared data')
    return path.read_text()


#: a line of running text: four words in lower case or more (a table's
#: rows are names, numbers and marks; a caption's first line is matched
#: on its own)
_PROSE = re.compile(r'(?:\b[a-z]{2,}\b.*){4}')
_CAPTION = re.compile(r'^\s*(?:TABLE [IVX]+\s*$|Table \d+:|Fig(?:ure|\.)\s*'
                      r'\d+[.:])')


def _is_body(line: str) -> bool:
    return not (_PROSE.search(line) or _CAPTION.match(line))


def _block_above(lines: List[str], cap: int) -> List[str]:
    """The lines of a table or figure body right above its caption: up
    to the first line of running text or caption."""
    top = cap
    while top > 0 and _is_body(lines[top - 1]):
        top -= 1
    return lines[top:cap]


def _table(lines: List[str], label: str) -> Optional[List[str]]:
    """A table's own lines: its caption and body (None: no caption).

    A ``TABLE IV`` caption (IEEE) stands above its tab-separated rows; a
    ``Table 4:`` caption below its body, or above it where running text
    follows the caption's paragraph at once (the body: the lines that are
    not running text)."""
    for i, line in enumerate(lines):
        if re.match(rf'^\s*TABLE {label}\s*$', line):
            out, rows = [], False
            for ln in lines[i:]:
                if '\t' in ln:
                    rows = True
                elif rows and ln.strip():
                    break
                out.append(ln)
            return out
        if re.match(rf'^\s*Table {label}:', line):
            below, k = [line], i + 1
            while k < len(lines) and _is_body(lines[k]):
                below.append(lines[k])
                k += 1
            return _block_above(lines, i) + below
    return None


def _figure(lines: List[str], label: str, panel: str) -> List[str]:
    """The body of a figure's panel as the text prints it (a panel's
    table: the lines above its ``(c)`` mark), else the whole figure's
    lines above its caption."""
    cap = next((i for i, ln in enumerate(lines)
                if re.match(rf'^\s*Fig(?:ure|\.)\s*{label}[.:]', ln)), None)
    assert cap is not None, f'no caption of Fig. {label}'
    block = _block_above(lines, cap)
    if panel:
        mark = [k for k, ln in enumerate(block)
                if ln.strip() == f'({panel})']
        if mark:
            return _block_above(block, mark[0]) + [f'({panel})']
    return block


def _section(lines: List[str], label: str) -> List[str]:
    """A section's text: roman (``IV``, ``IV-F``: from its heading to the
    next) or arabic (``3``, ``2.3``: from its number's line, followed by
    its title or first subsection, to the next such line that is no
    subsection of it)."""
    heading = re.compile(r'^(?:[IVX]+|[A-H])\. [A-Z]')
    m = re.match(r'([IVX]+)(?:-([A-H]))?$', label)
    if m:
        top = next(i for i, ln in enumerate(lines)
                   if ln.startswith(m.group(1) + '. '))
        if m.group(2):
            top = next(i for i in range(top + 1, len(lines))
                       if lines[i].startswith(m.group(2) + '. '))
        end = next((i for i in range(top + 1, len(lines))
                    if heading.match(lines[i]) and not (
                        m.group(2) is None and
                        re.match(r'^[A-H]\. ', lines[i]))), len(lines))
        return lines[top:end]

    def numbered(i: int) -> Optional[str]:
        if not re.match(r'^\d+(?:\.\d+)*$', lines[i].strip()):
            return None
        num = lines[i].strip()
        nxt = next((ln.strip() for ln in lines[i + 1:] if ln.strip()), '')
        return num if re.match(r'[A-Z]', nxt) or nxt == num + '.1' else None

    starts = [i for i in range(len(lines)) if numbered(i) == label]
    assert starts, f'no section {label}'
    end = next((i for i in range(starts[0] + 1, len(lines))
                if numbered(i) and not numbered(i).startswith(label + '.')),
               len(lines))
    return lines[starts[0]:end]


def _text_on(lines: List[str], label: str) -> List[str]:
    """The running text on a table: its lines from its first mention
    outside a caption to the first mention of another table (not the
    tables and figures printed between)."""
    def mentions(ln: str, other: bool) -> bool:
        found = re.findall(r'\bTable (\d+|[IVX]+)\b', ln)
        return not _CAPTION.match(ln) and (
            any(f != label for f in found) if other else label in found)
    top = next(i for i, ln in enumerate(lines) if mentions(ln, False))
    end = next((i for i in range(top + 1, len(lines))
                if mentions(lines[i], True)), len(lines))
    return [ln for ln in lines[top:end] if _PROSE.search(ln)]


#: tables whose body is not in the text of our copy of a paper: their
#: numbers cannot be checked there (each must really be absent)
NOT_IN_TEXT = {'lens': ('Table I', )}


def place_span(paper: str, where: str) -> Optional[str]:
    """The text of a place of a paper: a table (its caption and body, not
    the text around it), a figure's panel, a section, or the text on a
    table (``the text on Table 5``); several joined by ``and``: all of them.
    None: a table whose caption the text lacks."""
    lines = paper.splitlines()
    out = []
    for part in re.split(r'\s+and\s+', where):
        sec = re.match(r'Sec\. ([\dIVX][\w.-]*)$', part)
        table = re.match(r'Table ([IVX]+|\d+)$', part)
        fig = re.match(r'Fig\. (\d+)([a-z]?)$', part)
        text_on = re.match(r'the text on Table ([IVX]+|\d+)$', part)
        if sec:
            out += _section(lines, sec.group(1))
        elif table:
            body = _table(lines, table.group(1))
            if body is None:
                return None
            out += body
        elif fig:
            out += _figure(lines, fig.group(1), fig.group(2))
        elif text_on:
            out += _text_on(lines, text_on.group(1))
        else:
            raise ValueError(f'{where!r}: not a table, figure or section')
    return '\n'.join(out)


def _printed_in(span: str, value: float) -> bool:
    """Whether a span prints a number, or a row's number and its gain over
    this one (``60.43+4.49`` prints 55.94)."""
    forms = {f'{value:g}'} | {f'{value:.{d}f}' for d in (1, 2, 3)
                              if abs(round(value, d) - value) < 1e-9}
    return any(re.search(r'(?<![\d.])' + re.escape(f) + r'(?!\d)', span)
               for f in forms) or any(
                   abs(float(a) - float(b) - value) < 1e-6
                   for a, b in re.findall(r'(\d+\.\d+)\+(\d+\.\d+)', span))


def row_lines(span: str, row: str) -> List[str]:
    """The tab-separated rows of a table's text that are ``row``: its first
    cell, or its first cell and the headers of the columns it ticks
    (``Crop 128†, DA, Magnify, Joint``); citations such as ``[28]`` aside.
    None where the text prints the row otherwise."""
    def norm(text: str) -> str:
        return re.sub(r'\s*\[\d+\]', '', text).strip().lower()
    lines = [ln for ln in span.splitlines() if '\t' in ln]
    header = lines[0].split('\t') if lines else []
    out = []
    for ln in lines[1:]:
        cells = ln.split('\t')
        ticked = [h.strip() for h, c in zip(header[1:], cells[1:])
                  if c.strip() in ('√', '✓')]
        if norm(row) in (norm(cells[0]),
                         norm(', '.join([cells[0]] + ticked))):
            out.append(ln)
    return out


def unplaced(method: str, places: List[Printed], paper: str) -> List[str]:
    """The printed numbers of ``places`` not at their place in the paper:
    in their row where the text prints a table's (or figure's) rows as
    lines, else in their table, figure or section (a table of
    :data:`NOT_IN_TEXT` is not read)."""
    spans = {w: place_span(paper, w) for w in {p.where for p in places}}
    absent = sorted(w for w, span in spans.items() if span is None)
    assert absent == sorted(NOT_IN_TEXT.get(method, ())), (
        f'tables without a caption in the text: {absent}')
    bad = []
    for p in places:
        span = spans[p.where]
        if not p.printed or span is None:
            continue
        lines = row_lines(span, p.row) if re.match(
            r'(?:Table|Fig\.) ', p.where) else []
        if not _printed_in('\n'.join(lines) or span, p.value):
            bad.append(f'{p.value:g} not in {p.where} ({p.row}, {p.column})'
                       + (f': its row reads {lines}' if lines else ''))
    return bad


@pytest.mark.parametrize('method', sorted(PAPER_FILES))
def test_every_place_is_the_papers(method):
    places = [p for p in placed_numbers(method) if p.unit != 'points']
    assert unplaced(method, places, _paper(method)) == []


def test_a_number_in_another_row_of_its_table_fails():
    """Against the text, a number is looked up in its own row where the
    text prints the rows as lines: 0.935 is in Tables III and IV, but in
    neither's 3D-AG-LM† row (0.939)."""
    paper = _paper('aggregated3d')
    for where, row in (('Table IV', '3D-AG (Ours)'),
                       ('Table III', 'Crop 128†, DA, Joint')):
        ours = Printed(0.939, where, row, 'FROC')
        assert len(row_lines(place_span(paper, where), row)) == 1
        assert unplaced('aggregated3d', [ours], paper) == []
        assert unplaced('aggregated3d', [ours._replace(value=0.935)], paper)


def quoted_words(text: str) -> List[str]:
    """The words a document quotes from a paper: ``paper: "..."``,
    ``the text says "..."``, ``Sec. X: "..."``."""
    flat = re.sub(r'\s*\n\s*', ' ', text)
    return re.findall(r'(?:\bpaper(?:\s+says)?:?|\btext\s+says|\bSec\.\s*'
                      r'[IVX\d][\w.-]*:)\s*"([^"]{3,})"', flat)


def _norm(text: str) -> str:
    text = text.replace('“', '"').replace('”', '"').replace('’', "'")
    return re.sub(r'\s+', ' ', re.sub(r'\s+%', '%', text)).lower().strip()


def unquoted(text: str, paper: str) -> List[str]:
    """The words of :func:`quoted_words` that the paper does not print
    (each part of an ellipsis on its own)."""
    body = _norm(paper)
    return [q for q in quoted_words(text)
            if not all(_norm(part) in body
                       for part in re.split(r'\.\.\.|…', q) if part.strip())]


@pytest.mark.parametrize('method', sorted(PAPER_FILES))
def test_words_quoted_from_a_paper_are_its(method):
    """The method's README and RESULTS.md, and its files' docstrings."""
    paper = _paper(method)
    texts = {d: d.read_text() for d in (
        ROOT / 'configs' / method / 'README.md',
        ROOT / 'projects' / method / 'RESULTS.md') if d.is_file()}
    texts.update((path, text) for path, text in docstring_quotes().items()
                 if _code_method(path) == method)
    bad = {str(d.relative_to(ROOT)): unquoted(text, paper)
           for d, text in texts.items()}
    assert {d: words for d, words in bad.items() if words} == {}
