# Copyright (c) mmlesion contributors. All rights reserved.
"""Every table of ``tools/reproduce.py`` and every distinct row of it runs
end to end in the suite.

Which rows the end-to-end tests run is read from the tests themselves (no
list of them is kept here): every ``reproduce`` argument list in
:data:`E2E_MODULES` of the form ``[TABLE, '--rows', ROW, ...]`` whose
table and rows the test's code gives (literals, the test's own variables,
its ``parametrize`` values, a helper's arguments at its call sites,
module constants), a ``--dry-run`` list excepted. A row is distinct when
one of its stages (named by its command,
:func:`~mmlesion.apps.reproduce.execute.stage_id`) is in no row that an
end-to-end test runs: its config, its options or its stage differ. A table
none of whose rows a test runs fails too (its rows may share every stage
with another table's, as TNP's and Table IV's do, but the table's own
collection and rendering run only when one of its rows does).
"""
import ast
import importlib.util
import itertools
from pathlib import Path
from typing import Dict, List, Set

from mmlesion.apps.reproduce import PlanContext, build_rows
from mmlesion.apps.reproduce.execute import stage_id
from mmlesion.apps.reproduce.table_index import TABLE_INDEX
from mmlesion.testing import repo_root

ROOT = repo_root()
#: the end-to-end tests of ``tools/reproduce.py``
E2E_MODULES = sorted(
    (ROOT / 'tests' / 'test_apps' /
     'test_reproduce').glob('test_e2e_*.py')) + [
        ROOT / 'tests' / 'test_tools' / 'test_reproduce.py']
E2E_MODULES.remove(Path(__file__))


def _module(path: Path):
    """The test module, imported (its constants: rows, options)."""
    spec = importlib.util.spec_from_file_location(
        f'_e2e_rows_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: the calls a value may make: builtin containers only
_PURE = {'sorted', 'list', 'tuple', 'set', 'dict', 'str', 'range', 'len'}
#: the expressions being resolved (a self-referencing name stops there)
_BUSY: Set[tuple] = set()


class _Scope:
    """What a name in a function of a test module can hold: its
    assignments in the function, its ``parametrize`` values, the arguments
    of the function's call sites in the module, or the module's value."""

    def __init__(self, tree: ast.Module, namespace: dict,
                 func: ast.FunctionDef):
        self.tree, self.namespace, self.func = tree, namespace, func

    def _assigned(self, name: str) -> List[object]:
        out = []
        for node in ast.walk(self.func):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    out += self.values(node.value)
                elif isinstance(target, ast.Tuple):
                    ids = [getattr(t, 'id', None) for t in target.elts]
                    if name in ids:
                        out += [v[ids.index(name)]
                                for v in self.values(node.value)]
        return out

    def _parametrized(self, name: str) -> List[object]:
        for dec in self.func.decorator_list:
            if (isinstance(dec, ast.Call) and dec.args and
                    getattr(dec.func, 'attr', '') == 'parametrize' and
                    isinstance(dec.args[0], ast.Constant) and
                    dec.args[0].value == name):
                return list(self.values(dec.args[1])[0])
        return []

    def _call_sites(self, names: List[str]) -> List[dict]:
        """The values of parameters ``names`` at each call of the function
        in the module, bound together per call."""
        params = [a.arg for a in self.func.args.args]
        out = []
        for caller in ast.walk(self.tree):
            if not isinstance(caller, ast.FunctionDef):
                continue
            scope = _Scope(self.tree, self.namespace, caller)
            for call in ast.walk(caller):
                if not (isinstance(call, ast.Call) and
                        getattr(call.func, 'id', '') == self.func.name):
                    continue
                args = dict(zip(params, call.args))
                args.update({k.arg: k.value for k in call.keywords})
                if all(n in args for n in names):
                    values = [scope.values(args[n]) for n in names]
                    out += [dict(zip(names, c))
                            for c in itertools.product(*values)]
        return out

    def values(self, expr: ast.expr) -> List[object]:
        """Every value ``expr`` can take (empty: not known here, or an
        expression that would call anything but a builtin container)."""
        if any(isinstance(n, ast.Call) and
               getattr(n.func, 'id', None) not in _PURE
               for n in ast.walk(expr)):
            return []
        stored = {n.id for n in ast.walk(expr)
                  if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        free = sorted({n.id for n in ast.walk(expr)
                       if isinstance(n, ast.Name) and n.id not in stored})
        params = {a.arg for a in self.func.args.args}
        assigned = {t.id for n in ast.walk(self.func)
                    if isinstance(n, ast.Assign) for t in ast.walk(n)
                    if isinstance(t, ast.Name) and
                    isinstance(t.ctx, ast.Store)}
        key = (self.func.name, ast.dump(expr))
        if key in _BUSY:  # a name that its own value reads
            return []
        _BUSY.add(key)
        try:
            bound = {n: self._assigned(n) or self._parametrized(n)
                     for n in free if n in assigned or n in params}
            called = [n for n in bound if not bound[n] and n in params]
            sites = self._call_sites(called) if called else [{}]
        finally:
            _BUSY.discard(key)
        others = {n: v for n, v in bound.items() if n not in called}
        code = compile(ast.Expression(expr), '<e2e>', 'eval')
        out = []
        for site in sites:
            for combo in itertools.product(*others.values()):
                env = dict(self.namespace, **site,
                           **dict(zip(others, combo)))
                try:
                    out.append(eval(code, env))
                except Exception:  # a value this reading does not follow
                    pass
        return out


def e2e_rows(tree: ast.Module, namespace: dict) -> Dict[str, Set[str]]:
    """table -> the rows a test module runs through ``tools/reproduce.py``
    (``[TABLE, '--rows', ROW, ...]``, not ``--dry-run``)."""
    out: Dict[str, Set[str]] = {}
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef):
            continue
        scope = _Scope(tree, namespace, func)
        for node in ast.walk(func):
            if not (isinstance(node, ast.List) and len(node.elts) > 2 and
                    isinstance(node.elts[1], ast.Constant) and
                    node.elts[1].value == '--rows') or any(
                        isinstance(e, ast.Constant) and e.value == '--dry-run'
                        for e in node.elts):
                continue
            kept = []  # the elements up to the first option
            for elt in node.elts[2:]:
                if isinstance(elt, ast.Constant) and str(
                        elt.value).startswith('--'):
                    break
                if isinstance(elt, ast.Starred) and not any(
                        list(v)[:1] and not str(list(v)[0]).startswith('--')
                        for v in scope.values(elt.value)):
                    break
                kept.append(elt)
            pair = ast.Tuple([node.elts[0], ast.List(kept, ast.Load())],
                             ast.Load())
            for table, rows in scope.values(ast.fix_missing_locations(
                    ast.copy_location(pair, node))):
                if table in TABLE_INDEX:
                    out.setdefault(table, set()).update(map(str, rows))
    return out


def suite_rows() -> Dict[str, Set[str]]:
    """table -> the rows the end-to-end tests run, over every module."""
    out: Dict[str, Set[str]] = {}
    for path in E2E_MODULES:
        tree = ast.parse(path.read_text())
        for table, rows in e2e_rows(tree, vars(_module(path))).items():
            out.setdefault(table, set()).update(rows)
    return out


def uncovered(rows: Dict[str, Set[str]], work_dir: str) -> List[str]:
    """The tables no test runs, the rows named that the table has not,
    and the rows with a stage no test runs."""
    ctx = PlanContext(work_dir, data_root='/data/', python='python', gpus=0,
                      folds=[0, 1])
    left = [f'{t}: no row runs end to end' for t in TABLE_INDEX
            if not rows.get(t)]
    left += [f'{t} {r}: not a row of the table' for t, keys in rows.items()
             for r in sorted(keys) if r not in TABLE_INDEX[t].rows]
    covered = set()
    for table, keys in rows.items():
        known = [k for k in TABLE_INDEX[table].rows if k in keys]
        for row in build_rows(table, ctx, known, [0]):
            covered.update(stage_id(s) for s in row.stages)
    left += [f'{table} {row.key}: ' + ', '.join(
        s.name for s in row.stages if stage_id(s) not in covered)
             for table in TABLE_INDEX
             for row in build_rows(table, ctx, None, [0])
             if any(stage_id(s) not in covered for s in row.stages)]
    return left


def test_every_table_and_distinct_row_runs_end_to_end(tmp_path):
    assert uncovered(suite_rows(), str(tmp_path)) == []


def test_rows_removed_from_a_test_fail(tmp_path):
    """The rows are the tests': a table's run in a test's code (a literal
    argument list, rows from a ``parametrize`` constant) counts, a row taken
    out of the constant does not, and a table none of whose runs is left in
    the suite is reported, whatever its stages share with other tables'."""
    table, *_ = TABLE_INDEX  # any registered table
    keys = tuple(TABLE_INDEX[table].rows)
    source = ('@pytest.mark.parametrize(\'row\', ROWS)\n'
              'def test_row(row):\n'
              f'    run([{table!r}, \'--rows\', row, \'--seeds\', \'0\'])\n'
              'def test_plan():\n'
              f'    run([{table!r}, \'--rows\', *ROWS, \'--dry-run\'])\n')
    assert e2e_rows(ast.parse(source), {'ROWS': keys}) == {table: set(keys)}
    cut = e2e_rows(ast.parse(source), {'ROWS': keys[1:]})
    assert cut == ({table: set(keys[1:])} if keys[1:] else {})

    rows = suite_rows()
    assert rows.get(table)
    others = {t: r for t, r in rows.items() if t != table}
    assert f'{table}: no row runs end to end' in uncovered(others,
                                                           str(tmp_path))
