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
numbers, every other document against all methods'. A quote that says it
is derived (``derived``) may give a number the table has not; a number
with a thousands ``K`` (``22.8K``) is checked too.

Where a number stands: each number of :func:`~mmlesion.reproduce.
paper_text.placed_numbers` knows its table or section, row and column and
the names a document gives that row. Quoted (a prose quote above, ``the
paper's N``, or a ``paper`` column's cell), such a number in its unit
(``4.2 s``, ``90 %``, ``22.8K``, ``+2.37 points``) must have one of its
own names nearest to it (in its clause; else its cell, or its sentence up
to the quote's end; else its sentence), not the name of another entry of
the same table or section; a prose quote that names no row must cite the
number's table or section; a ``Sec.`` / ``Table`` in its clause must be
its own; and a number derived from printed ones (a ratio) must be called
derived. With the papers' text beside the data (``../papers/`` of the
shared data folder), every place is checked against it, and the words a
document quotes from a paper (``the paper: "..."``, ``the text says
"..."``, ``Sec. X: "..."``) must be its words.
"""
import re
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

from mmlesion.reproduce.paper_text import (Printed, placed_numbers,
                                           quotable_numbers)
from mmlesion.testing import repo_root, shared_data_root
from mmlesion.utils.method_spec import registered_methods

ROOT = repo_root()
#: the registered methods (a new one's README is checked as theirs)
METHODS = tuple(registered_methods())
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
        after = quote[m.end():m.end() + 2]
        thousands = after[:1] in 'Kk' and not after[1:].isalpha()
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
                  r'|\bTables?\s+([IVX]+|\d+)\b')
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
    return unit == place.unit


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
                     _unit_fits(p, sign, suffix)]
            if not found:
                continue
            where = f'{tok.group(0)!r} in {unit.strip()[:100]!r}'
            if any(not p.printed for p in found) and not re.search(
                    r'\bderived\b', unit):
                bad.append(f'{where}: derived, not said so')
            # the names of every entry of the same tables / sections
            wheres = {p.where for p in found}
            owners = {}
            for place in places:
                if place.where in wheres:
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
            refs = list(_REF.finditer(unit, *spans[0]))
            if refs and not any(_cites(r, found) for r in refs):
                bad.append(f'{where}: cited as ' + ', '.join(
                    r.group(0) for r in refs) + ' (the paper: ' +
                           '; '.join(sorted(wheres)) + ')')
    return bad


def _cites(ref: 're.Match', found: List[Printed]) -> bool:
    """Whether a ``Sec.`` / ``Table`` reference is the place of one of
    ``found`` (``Sec. IV`` is that of ``Sec. IV-F``; ``Tables II, IV``
    of ``Table IV``)."""
    kind = 'Sec.' if ref.group(1) else 'Table'
    label = ref.group(1) or ref.group(2)
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


def place_span(paper: str, where: str) -> str:
    """The text of a section (``Sec. IV-F``: from its heading to the next)
    or around a table's caption (``Table III``: 80 lines before, 120
    after) of a
    paper; several joined by ``and``: all of them."""
    lines = paper.splitlines()
    heading = re.compile(r'^(?:[IVX]+|[A-H])\. [A-Z]')
    out = []
    for part in re.split(r'\s+and\s+', where):
        m = re.match(r'Sec\. ([IVX]+)(?:-([A-H]))?$', part)
        t = re.match(r'Table ([IVX]+|\d+)$', part)
        if m:
            top = next(i for i, ln in enumerate(lines)
                       if ln.startswith(m.group(1) + '. '))
            if m.group(2):
                top = next(i for i in range(top + 1, len(lines))
                           if lines[i].startswith(m.group(2) + '. '))
            end = next((i for i in range(top + 1, len(lines))
                        if heading.match(lines[i]) and not (
                            m.group(2) is None and
                            re.match(r'^[A-H]\. ', lines[i]))),
                       len(lines))
            out += lines[top:end]
        elif t:
            cap = [i for i, ln in enumerate(lines)
                   if re.match(rf'^\s*(?:TABLE {t.group(1)}\b|'
                               rf'Table {t.group(1)}:)', ln)]
            assert cap, f'no caption of {part}'
            out += lines[max(cap[0] - 80, 0):cap[0] + 120]
        else:  # an arabic section (Sec. 3): the whole paper
            out += lines
    return '\n'.join(out)


def _printed_in(span: str, value: float) -> bool:
    forms = {f'{value:g}'} | {f'{value:.{d}f}' for d in (1, 2, 3)
                              if abs(round(value, d) - value) < 1e-9}
    return any(re.search(r'(?<![\d.])' + re.escape(f) + r'(?!\d)', span)
               for f in forms)


def unplaced(method: str, places: List[Printed], paper: str) -> List[str]:
    """The printed numbers of ``places`` not in their table or section of
    the paper."""
    return [f'{p.value:g} not in {p.where} ({p.row}, {p.column})'
            for p in places
            if p.printed and not _printed_in(place_span(paper, p.where),
                                             p.value)]


@pytest.mark.parametrize('method', sorted(PAPER_FILES))
def test_every_place_is_the_papers(method):
    places = [p for p in placed_numbers(method) if p.unit != 'points']
    assert unplaced(method, places, _paper(method)) == []


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
    paper = _paper(method)
    docs = [ROOT / 'configs' / method / 'README.md',
            ROOT / 'projects' / method / 'RESULTS.md']
    assert {str(d.relative_to(ROOT)): unquoted(d.read_text(), paper)
            for d in docs if d.is_file()} == {
                str(d.relative_to(ROOT)): [] for d in docs if d.is_file()}
