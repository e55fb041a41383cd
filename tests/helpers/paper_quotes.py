# Copyright (c) mmlesion contributors. All rights reserved.
"""The reader of the papers' numbers that documents quote outside the
compared metrics (:data:`PAPER_TEXT`: parameters, times, other columns,
each registered method's ``PaperTables.printed``) and the gains
computed from the compared ones (:data:`PAPER_DIFFERENCES`), each typed
with its place (:class:`Printed`): ``tests/test_docs/test_paper_quotes.py``
fails on a quoted number that is none of :func:`quotable_numbers`, or that
stands beside another row, model or section than the paper's.
"""
import re
from typing import Any, List, Mapping, Optional, Tuple

from mmlesion.apps.reproduce.paper_results import (MERGED_MODELS,
                                                  PAPER_RESULTS,
                                                  QUOTED_MODELS)
from mmlesion.apps.reproduce.paper_tables import (PAPER_TABLES, Gain,
                                                 Printed, ResultRow,
                                                 paper_view)
from mmlesion.apps.reproduce.plan import LazyMapping


def _by_method(attr: str) -> Mapping[str, Any]:
    """Method name -> one mapping field of its spec (every registered
    method's)."""
    return LazyMapping(lambda: {name: getattr(spec, attr) for name, spec
                                in PAPER_TABLES.parts().items()})


#: model of :data:`.paper_results.PAPER_RESULTS` -> the places of its
#: numbers (each registered method's ``result_rows``)
RESULT_ROWS: Mapping[str, Tuple[ResultRow, ...]] = paper_view('result_rows')


def result_column(key: str) -> Tuple[str, str]:
    """The column a metric key of :data:`.paper_results.PAPER_RESULTS`
    stands in (``'sensitivity at 3 FPs'``, ``'mAP'``) and what a document
    writes after its number (``'%'``: also nothing)."""
    name = key.split('/')[-1]
    rate = re.match(r'sens@([\d.]+)$', name)
    if rate:
        return f'sensitivity at {rate.group(1)} FPs', '%'
    if name.startswith('sens@4_'):
        return f'sensitivity at 4 FPs, {name[7:]}', '%'
    if name.startswith('mean@'):
        return f'average sensitivity, {name[5:]} FPs', '%'
    return {'bbox_mAP': ('mAP', '%'), 'cpm': ('FROC score', ''),
            'tnp': ('TNP', ''), 'infer_ms': ('inference ms', 'ms'),
            'infer_time_x': ('inference time', 'x'),
            'model_size_x': ('model size', 'x')}.get(name, (name, ''))


#: numbers the papers print outside the compared metrics that the
#: documents quote: method -> name -> :class:`Printed` (each registered
#: method's ``printed``)
PAPER_TEXT: Mapping[str, Mapping[str, Printed]] = _by_method('printed')
#: the columns of :data:`.paper_results.PAPER_RESULTS` whose numbers the
#: documents quote in prose, placed like :data:`PAPER_TEXT`: metric key ->
#: (table, column, names, unit); the row is the model's
RESULT_COLUMNS: Mapping[str, Tuple[str, str, Tuple[str, ...], str]] = \
    paper_view('result_columns')


#: differences of two paper numbers that the documents quote as a gain:
#: method -> name -> :class:`Gain` (each registered method's ``gains``)
PAPER_DIFFERENCES: Mapping[str, Mapping[str, Gain]] = _by_method('gains')


def model_method(model: str) -> str:
    """The method folder of a model of :data:`PAPER_RESULTS` (a quoted or
    merged model's, or the method whose ``config_prefixes`` has the first
    word of its stem).

    Raises:
        KeyError: a model of no registered method.
    """
    if model in QUOTED_MODELS:
        return QUOTED_MODELS[model]
    if model in MERGED_MODELS:
        return MERGED_MODELS[model]
    prefix = model.split('@')[0].split('-')[0].split('_')[0]
    for name, spec in PAPER_TABLES.parts().items():
        if prefix in spec.config_prefixes:
            return name
    raise KeyError(f'{model}: no registered method has the config prefix '
                   f'{prefix!r} (PaperTables.config_prefixes)')


def paper_difference(method: str, name: str) -> float:
    """A quoted gain of :data:`PAPER_DIFFERENCES`, from the table above."""
    gain = PAPER_DIFFERENCES[method][name]
    return round(PAPER_RESULTS[gain.model][gain.key] -
                 PAPER_RESULTS[gain.minus][gain.key], 6)


def placed_numbers(method: Optional[str] = None) -> List[Printed]:
    """Every paper number documents quote with its place: the entries of
    :data:`PAPER_TEXT`, the compared numbers (in the columns of
    :data:`RESULT_COLUMNS`, else at the rows of :data:`RESULT_ROWS`)
    and the gains of :data:`PAPER_DIFFERENCES` (unit ``points``),
    of one method's paper (None: all)."""
    out = [p for m, named in PAPER_TEXT.items()
           if method is None or m == method for p in named.values()]
    for model, metrics in PAPER_RESULTS.items():
        if method is None or model_method(model) == method:
            rows = RESULT_ROWS.get(model, ())
            out += [Printed(v, where, next((r.row for r in rows
                                            if r.where == where), model),
                            column, names, unit)
                    for key, (where, column, names, unit)
                    in RESULT_COLUMNS.items()
                    for v in [metrics.get(key)] if v is not None]
            for row in RESULT_ROWS.get(model, ()):
                for key, v in metrics.items():
                    if key not in RESULT_COLUMNS and (not row.keys or
                                                      key in row.keys):
                        column, unit = result_column(key)
                        out.append(Printed(v, row.where, row.row, column,
                                           row.names, unit, row.printed))
    for m, named in PAPER_DIFFERENCES.items():
        if method is None or m == method:
            # a difference of two printed rows: documents quote it as the
            # step between them (the row names say which)
            out += [Printed(abs(paper_difference(m, n)), g.where,
                            f'{g.model} minus {g.minus}', g.key, g.names,
                            'points')
                    for n, g in named.items()]
    return out


def quotable_numbers(method: Optional[str] = None) -> Tuple[float, ...]:
    """Every paper number a document may quote: the compared numbers
    (a CPM also in percent), :data:`PAPER_TEXT` and the gains of
    :data:`PAPER_DIFFERENCES`, of one method's paper (None: all)."""
    out = set()
    for model, metrics in PAPER_RESULTS.items():
        if method is None or model_method(model) == method:
            for v in metrics.values():
                out.update({v, round(v * 100, 6)} if abs(v) < 1 else {v})
    out.update(p.value for p in placed_numbers(method))
    return tuple(sorted(out))
