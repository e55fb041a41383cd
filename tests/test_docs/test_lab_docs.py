# Copyright (c) mmlesion contributors. All rights reserved.
"""``docs/benchmarks.md`` and ``docs/mutation_testing.md``: short pages for
a user, every command of them typed as a user types it.

* ``benchmarks.md`` has at most 250 lines and ``mutation_testing.md`` at
  most 150; neither names a run letter, a goal or a verdict (the record of
  the runs is ``projects/benchmarks/RESULTS.md`` and
  ``projects/mutation/RESULTS.md``).
* Every command of their shell blocks, and every ``python projects/...``
  command of the other user docs, runs from the clone's root, without
  ``PYTHONPATH``:

  - ``tools/misc/mutation_test.py``: as typed with ``--dry-run`` appended
    (the tool's plan: the files to mutate and the tests to run, the way
    ``tools/reproduce.py`` commands run with ``--dry-run`` in
    ``test_docs_run.py``); every test file it names exists;
  - a script of ``projects/`` (the benchmarks): started as typed from the
    clone's root without ``PYTHONPATH`` (its own ``sys.path``, its imports,
    its parser on the arguments as typed) and stopped as soon as its
    arguments are parsed: a benchmark takes minutes to hours; each one runs
    at a tiny size in ``tests/test_projects/benchmarks/``. The commands
    share one process (:data:`DRIVER`), which pays the imports of torch and
    mmdet once. Every config a command names exists;
  - anything else is in :data:`EXPECTED_SKIPS` with its reason, compared
    exactly (a new command nobody classified fails here).
* The scores table of ``mutation_testing.md`` names files of the package
  and counts, per file, the equivalent mutants the tool reads from
  ``tools/misc/mutation_equivalents.md``.
* In every user doc, a link to a heading of a markdown file finds that
  heading.
"""
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from mmlesion.testing import repo_root
from tests.helpers.doc_commands import DocCommand, doc_commands

ROOT = repo_root()
LIMITS = {'docs/benchmarks.md': 250, 'docs/mutation_testing.md': 150}
#: What these pages must not say: the record's run letters, goals and
#: verdicts.
DIARY = (re.compile(r'\bgoals?\b', re.I), re.compile(r'\bNOT MET\b'),
         re.compile(r'\bmet\b'), re.compile(r'\bruns? [A-Z]\d?\b'))
#: (doc, command as written) -> why it does not run here. Compared exactly.
EXPECTED_SKIPS: Dict[Tuple[str, str], str] = {
    ('docs/mutation_testing.md', 'pip install -r requirements/mutation.txt'):
    'installs from the network (the requirements file is checked)',
}
_ENV = re.compile(r'^[A-Z_][A-Z0-9_]*=\S*$')


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands() -> List[DocCommand]:
    """Every command of the two pages, and the ``python projects/...``
    commands of the other user docs (``README.md``, ``data/README.md``,
    ``docs/*.md``, the method READMEs)."""
    out = [c for doc in LIMITS for c in doc_commands(ROOT / doc, ROOT)]
    others = ([ROOT / 'README.md', ROOT / 'data' / 'README.md'] +
              sorted((ROOT / 'docs').glob('*.md')) +
              sorted((ROOT / 'configs').glob('*/README.md')))
    for doc in others:
        if doc.relative_to(ROOT).as_posix() not in LIMITS:
            out += [c for c in doc_commands(doc, ROOT)
                    if python_argv(c.text)[1:2] and python_argv(
                        c.text)[1].startswith('projects/')]
    return out


def python_argv(text: str) -> List[str]:
    """The ``python ...`` words of a command, without the environment
    (``OMP_NUM_THREADS=1``) and ``nice -n N`` before them."""
    words = shlex.split(text)
    while words and _ENV.match(words[0]):
        words = words[1:]
    if words[:1] == ['nice']:
        words = words[3:] if words[1:2] == ['-n'] else words[1:]
    return words


def _run(text: str) -> subprocess.CompletedProcess:
    """``text`` run by bash from the clone's root, ``PYTHONPATH`` unset,
    this environment's ``python`` first on ``PATH``."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env['PATH']
    env['CUDA_VISIBLE_DEVICES'] = ''
    return subprocess.run(['bash', '-c', text], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


#: Runs each ``[script, args]`` of the JSON list ``sys.argv[1]`` as
#: ``python script args`` would (``sys.argv``, ``sys.path[0]`` the script's
#: folder and not the clone's root, ``__main__``), stopped once its
#: arguments are parsed; the modules of the clone (``projects``, ``tests``)
#: are forgotten between scripts, so each imports them through its own
#: ``sys.path``. The installed packages are imported once for all. Prints
#: one JSON line: ``'ok'`` or the error, per command.
DRIVER = r"""
import argparse, json, os, runpy, sys, traceback
root = os.getcwd()
base = [p for p in sys.path if p not in ('', root)]
original = argparse.ArgumentParser.parse_args
class Parsed(Exception):
    pass
def parse_and_stop(parser, argv=None, namespace=None):
    original(parser, argv, namespace)
    raise Parsed()
argparse.ArgumentParser.parse_args = parse_and_stop
out = []
for script, args in json.loads(sys.argv[1]):
    for name in [m for m in sys.modules
                 if m.split('.')[0] in ('projects', 'tests')]:
        del sys.modules[name]
    sys.path[:] = [os.path.dirname(os.path.abspath(script))] + base
    sys.argv = [script] + args
    try:
        runpy.run_path(script, run_name='__main__')
        out.append('ran to the end without parsing its arguments')
    except Parsed:
        out.append('ok')
    except SystemExit as err:
        out.append(f'exit {err.code}')
    except BaseException:
        out.append(traceback.format_exc()[-1500:])
print(json.dumps(out))
"""


def parse_from_root(commands: List[List[str]]) -> List[str]:
    """:data:`DRIVER` on ``[script, args]`` each, in one process started
    from the clone's root without ``PYTHONPATH``."""
    run = _run(f'python -c {shlex.quote(DRIVER)} '
               f'{shlex.quote(json.dumps(commands))}')
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('doc', sorted(LIMITS))
def test_short_and_no_diary(doc):
    text = (ROOT / doc).read_text(encoding='utf-8')
    assert len(text.splitlines()) <= LIMITS[doc]
    found = [f'{p.pattern}: {m.group(0)!r}' for p in DIARY
             for m in p.finditer(text)]
    assert found == [], doc


def test_diary_check_can_fail():
    text = 'Goal: 2x. NOT MET in run Q; runs O and P met it.'
    assert all(p.search(text) for p in DIARY)


def test_every_command_runs_as_typed():
    failures, skipped, checked = [], {}, Counter()
    benchmarks: List[Tuple[str, list]] = []
    for cmd in _commands():
        where = f'{cmd.doc}:{cmd.line}: {cmd.text}'
        argv = python_argv(cmd.text)
        if argv[:2] == ['python', 'tools/misc/mutation_test.py']:
            text = cmd.text if '--dry-run' in argv else cmd.text + ' --dry-run'
            run = _run(text)
            out = run.stdout + run.stderr
            tests = re.search(r'^tests: (.*)$', out, re.M)
            if run.returncode != 0 or not (tests or 'nothing to mutate'
                                           in out):
                failures.append(f'{where}\n{out[-1500:]}')
            elif tests:
                missing = [t for t in tests.group(1).split()
                           if not (ROOT / t).exists()]
                if missing:
                    failures.append(f'{where}: no test {missing}')
            checked['mutation_test'] += 1
        elif argv[:1] == ['python'] and argv[1].startswith('projects/'):
            benchmarks.append((where, [argv[1], argv[2:]]))
            missing = [w for w in argv if w.startswith('configs/')
                       and not (ROOT / w).is_file()]
            if missing:
                failures.append(f'{where}: no config {missing}')
        else:
            skipped[(cmd.doc, cmd.written)] = EXPECTED_SKIPS.get(
                (cmd.doc, cmd.written), 'not classified')
    for (where, _), got in zip(benchmarks, parse_from_root(
            [argv for _, argv in benchmarks])):
        if got != 'ok':
            failures.append(f'{where}: {got}')
    checked['projects'] = len(benchmarks)
    assert failures == [], '\n\n'.join(failures)
    assert skipped == EXPECTED_SKIPS
    assert (ROOT / 'requirements' / 'mutation.txt').is_file()
    assert checked['mutation_test'] >= 4 and checked['projects'] >= 15, \
        checked


def test_the_driver_can_fail(tmp_path):
    """A wrong option, and a script that imports the clone's modules
    without putting the clone's root on its path, fail."""
    script = tmp_path / 'uses_projects.py'
    script.write_text('import argparse\n'
                      'import projects.benchmarks.synthetic_scans\n'
                      'argparse.ArgumentParser().parse_args()\n')
    box = 'projects/benchmarks/benchmark_box_stacking.py'
    got = parse_from_root([[box, ['--repeat', '5']],
                           [box, ['--repeats', '5']],
                           [str(script), []]])
    assert got[:2] == ['ok', 'exit 2']
    assert "No module named 'projects'" in got[2]
    assert python_argv('OMP_NUM_THREADS=1 nice -n 10 python x.py --a 1') == \
        ['python', 'x.py', '--a', '1']


def _table_equivalents(text: str) -> Dict[str, int]:
    """``mmlesion/...`` (a file, or a folder ending in ``/``) -> the
    Equivalent column of the scores table."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^\| `(mmlesion/[^`]+)`[^|]* \| \d+ \| (\d+) \|', text, re.M)}


def test_scores_count_the_equivalents_the_tool_reads():
    tool = _load('_doc_mutation_test',
                 ROOT / 'tools' / 'misc' / 'mutation_test.py')
    assert tool.EQUIVALENTS_DOC.is_file()
    listed = Counter(
        name.split('.x')[0] for name in tool.equivalent_mutants())
    table = _table_equivalents(
        (ROOT / 'docs' / 'mutation_testing.md').read_text(encoding='utf-8'))
    assert len(table) >= 40
    assert [c for c in table if not (ROOT / c).exists()] == []
    wrong = {}
    for code, equivalent in table.items():
        module = code[:-3] if code.endswith('.py') else code
        module = module.replace('/', '.').rstrip('.')
        got = sum(n for m, n in listed.items()
                  if m == module or m.startswith(module + '.'))
        if got != equivalent:
            wrong[code] = (equivalent, got)
    assert wrong == {}, '(table, listed)'


def test_anchors_of_every_user_doc_resolve():
    index = _load('_doc_index', Path(__file__).with_name(
        'test_docs_index.py'))
    user = _load('_doc_user', Path(__file__).with_name('test_user_docs.py'))
    docs = user.USER_DOCS + [ROOT / 'projects' / 'benchmarks' / 'RESULTS.md',
                             ROOT / 'projects' / 'mutation' / 'RESULTS.md']
    broken = [f'{d.relative_to(ROOT)}: {b}' for d in docs
              for b in index.broken_anchors(d)]
    assert broken == []
