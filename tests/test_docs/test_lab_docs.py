# Copyright (c) mmlesion contributors. All rights reserved.
"""Every command of every user doc, typed as a user types it; and
``docs/benchmarks.md`` and ``docs/mutation_testing.md``, short pages for a
user.

* Every command of the user docs (``README.md``, ``data/README.md``,
  ``projects/README.md``, ``docs/*.md``, ``configs/*/README.md``: their
  shell blocks and the commands written inline) is started from the
  clone's root without ``PYTHONPATH`` (``test_docs_run.py`` also runs those
  that touch real data, on release replicas):

  - ``python tools/...`` / ``python projects/...`` (also behind
    ``OMP_NUM_THREADS=1``, ``nice`` or ``python -m torch.distributed.run``):
    started as ``python`` starts it (``sys.argv``, ``sys.path[0]`` the
    script's folder and not the clone's root, its imports, its parser on
    the arguments as typed) and stopped as soon as its arguments are
    parsed: trainings, benchmarks and conversions take minutes to days.
    ``--help`` runs to its end and must exit 0. All share one process
    (:data:`DRIVER`), which pays the imports of torch and mmdet once.
    Every config a command names exists;
  - ``python -c`` one-liners run to their end in the same process; one
    whose output a variable keeps (``T=$(python -c ...)/.mim/tools``) must
    name a folder, and the commands after it use it (mmdet's own
    ``$T/test.py`` is parse-checked);
  - ``bash tools/...``: run as typed with ``python`` and ``srun`` replaced
    by stubs that record their arguments (:func:`run_scripts`): the script
    must exit 0, every ``-r`` requirements file it names must exist, and
    every ``python`` script it would start is parse-checked as above;
  - ``projects/mutation/mutation_test.py``: run to its end as typed with
    ``--dry-run`` appended (its plan); every test file it names exists;
  - ``python -m pytest PATH -k WORD``: the path exists and WORD is in the
    name of one of its tests;
  - the README's install and test commands (:data:`README_CI`) are what
    ``.ci/run`` runs, in order (:func:`test_ci_runs_the_readme_commands`);
  - a placeholder of a synopsis (``{a,b}``, ``[--opt V]``, ``<config>``,
    ``K``) is typed as a value of :data:`SUBSTITUTIONS`, each with its
    reason (a placeholder that is a plain string argument, ``CONFIG``,
    ``WORK/epoch_2.pth``, ``DEEPLESION_DIR``, is typed as written: the
    parser takes it);
  - anything else is in :data:`EXPECTED_SKIPS` with its reason, compared
    exactly (a new command nobody classified fails here).

  The records of the laboratory's runs (``projects/*/RESULTS.md``) keep
  their commands as they were run, and are not checked.
* ``benchmarks.md`` has at most 285 lines and ``mutation_testing.md`` at
  most 150; neither names a run letter, a goal or a verdict (the record of
  the runs is ``projects/benchmarks/RESULTS.md`` and
  ``projects/mutation/RESULTS.md``).
* The scores table of ``mutation_testing.md`` names files of the package
  and counts, per file, the equivalent mutants the tool reads from
  ``projects/mutation/mutation_equivalents.md``.
* Every file ``projects/mutation/mutation_equivalents.md`` names, and the module
  of every mutant it lists, is under ``mmlesion/`` (the tool mutates only
  the package: a module that left it takes its entries with it).
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
from typing import Dict, List, Optional, Tuple, Union

import pytest

from mmlesion.testing import repo_root
from tests.helpers.doc_commands import (DocCommand, doc_commands,
                                        inline_commands)

ROOT = repo_root()
LIMITS = {'docs/benchmarks.md': 285, 'docs/mutation_testing.md': 150}
#: What these pages must not say: the record's run letters, goals and
#: verdicts.
DIARY = (re.compile(r'\bgoals?\b', re.I), re.compile(r'\bNOT MET\b'),
         re.compile(r'\bmet\b'), re.compile(r'\bruns? [A-Z]\d?\b'))
def user_docs() -> List[Path]:
    """The user docs whose commands are checked (the records of the
    laboratory, ``projects/*/RESULTS.md``, keep the commands of past runs
    as they were run and are not)."""
    return ([ROOT / 'README.md', ROOT / 'data' / 'README.md',
             ROOT / 'projects' / 'README.md'] +
            sorted((ROOT / 'docs').glob('*.md')) +
            sorted((ROOT / 'configs').glob('*/README.md')))


ELIXIR = 'elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice'
#: A placeholder of a synopsis (as written) -> what the check types for
#: it (one command per value) and why. Every entry must be used.
SUBSTITUTIONS: Dict[str, Tuple[List[str], str]] = {
    'configs/<algo>/<config>.py': ([f'configs/{ELIXIR}.py'],
                                   "a config of the repository: the "
                                   "README's first training"),
    'configs/elixirnet/CONFIG.py work_dirs/CONFIG/':
    ([f'configs/{ELIXIR}.py work_dirs/{ELIXIR.split("/")[1]}/'],
     "a config of the page's table: its first"),
    'configs/<folder>/... --json ...':
    ([f'configs/{ELIXIR}.py --json work_dirs/smoke.json'],
     'the configs of a folder and a JSON file: a config of the table and '
     'the JSON file of the block above'),
    'work_dirs/<config>_cv/fold<K>':
    (['work_dirs/rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16_cv/fold3'],
     "the work dir of a fold of the page's cross-validation"),
    '--fold K': (['--fold 3'], 'K: a fold, 0 to 9'),
    'CONFIG N ': (['CONFIG 4 '], 'N: a number of processes'),
    '{deeplesion,luna16,kits19,lits,nih_ln}':
    (['deeplesion', 'luna16', 'kits19', 'lits', 'nih_ln'],
     'a brace list of the synopsis: every dataset it names'),
    '[--seed N]': (['--seed 0'], 'an optional part, given'),
    '[--size small|tiny]': (['--size small', '--size tiny'],
                            'an optional part, given, both values'),
    '[--overwrite]': (['--overwrite'], 'an optional part, given'),
    '[--window -160 240]': (['--window -160 240'], 'an optional part, given'),
    '[--topk 20]': (['--topk 20'], 'an optional part, given'),
    r'[--metric froc\|mAP]': (['--metric froc', '--metric mAP'],
                              'an optional part, given, both values (the '
                              'table cell escapes the bar)'),
    '[--fp-rate 4]': (['--fp-rate 4'], 'an optional part, given'),
    '$C': (['configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'],
           "an inline command of docs/mmdet_tools.md: the page's block "
           'sets C to this config'),
    ' ...': ([''], 'the elision of the rest of the options (those before '
             'it are checked)'),
    ' &': ([''], 'started in the background in a loop: checked in the '
           'foreground, one after another'),
    'TABLE': (['elixirnet/table5'], "a table of `--list`: the one "
              'the README names'),
}
#: (doc, command as written) -> why it is not started. Compared exactly.
EXPECTED_SKIPS: Dict[Tuple[str, str], str] = {
    ('docs/mutation_testing.md', 'pip install -r requirements/mutation.txt'):
    'installs from the network (the requirements file is checked)',
    ('docs/get_started_gpu.md', 'pip install torch'):
    'installs the CUDA build of torch from the network',
    ('README.md', 'python -m pytest tests --collect-only -q | tail -1'):
    'collects the whole suite, as .ci/run does before it runs it',
}
#: The README's install and test commands: test_ci_runs_the_readme_commands.
README_CI = ('python3 -m venv .venv', '. .venv/bin/activate',
             'pip install -r requirements/build.txt',
             'pip install --no-build-isolation -r requirements/runtime.txt '
             '-r requirements/tests.txt',
             'pip install --no-build-isolation --no-deps -e .',
             'python -m pytest tests -q')
_ENV = re.compile(r'^[A-Z_][A-Z0-9_]*=\S*$')
_CAPTURE = re.compile(r'^([A-Za-z_]\w*)=\$\(python -c (".*"|\'.*\')\)(\S*)$')


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands() -> List[DocCommand]:
    """Every command of the user docs: those of their shell blocks and
    those written inline (`` `python tools/...` ``)."""
    out = []
    for doc in user_docs():
        rel = doc.relative_to(ROOT).as_posix()
        out += doc_commands(doc, ROOT)
        out += [DocCommand(rel, line, text, text)
                for line, text in inline_commands(doc)]
    return out


def typed(text: str, used: Counter) -> List[str]:
    """The commands the check types for ``text``: each placeholder of
    :data:`SUBSTITUTIONS` replaced by each of its values."""
    out = [text]
    for key, (values, _) in SUBSTITUTIONS.items():
        if any(key in t for t in out):
            used[key] += 1
            out = [t.replace(key, v) for t in out for v in values]
    return [' '.join(t.split()) if '"' not in t and "'" not in t else t
            for t in out]


def python_argv(text: str) -> List[str]:
    """The ``python ...`` words of a command, without the environment
    (``OMP_NUM_THREADS=1``) and ``nice -n N`` before them."""
    words = shlex.split(text)
    while words and _ENV.match(words[0]):
        words = words[1:]
    if words[:1] == ['nice']:
        words = words[3:] if words[1:2] == ['-n'] else words[1:]
    return words


def script_call(words: List[str]) -> Optional[Tuple[str, List[str]]]:
    """``(script, its arguments)`` of the words after ``python``
    (``-u`` and ``-m torch.distributed.run --k=v ...`` before it), or
    None when they name no script."""
    i = 0
    while i < len(words):
        if words[i] == '-u':
            i += 1
        elif words[i:i + 2] == ['-m', 'torch.distributed.run']:
            i += 2
            while i < len(words) and words[i].startswith('--'):
                i += 1
        else:
            break
    if i < len(words) and words[i].endswith('.py'):
        return words[i], words[i + 1:]
    return None


def _env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env['PATH']
    env['CUDA_VISIBLE_DEVICES'] = ''
    return env


def _run(text: str, env: Optional[Dict[str, str]] = None
         ) -> subprocess.CompletedProcess:
    """``text`` run by bash from the clone's root, ``PYTHONPATH`` unset,
    this environment's ``python`` first on ``PATH``."""
    return subprocess.run(['bash', '-c', text], cwd=ROOT, env=env or _env(),
                          capture_output=True, text=True, timeout=120)


#: Stands for ``python`` / ``srun`` while a ``bash tools/...`` script of
#: the docs runs: appends its name and arguments to ``$STUB_LOG`` (each
#: word ended by NUL, each call by RS).
_STUB = r"""#!/bin/sh
printf '%s\0' {name} "$@" >> "$STUB_LOG"
printf '\036' >> "$STUB_LOG"
"""


def run_scripts(texts: List[str], tmp: Path) -> List[Tuple[int, str,
                                                           List[list]]]:
    """Each ``bash tools/...`` command run as typed from the clone's root,
    ``python`` and ``srun`` stubs first on ``PATH`` (``sinfo`` failing):
    per command its exit status, output and the calls it made (``[name,
    args...]``), without starting any of them."""
    stubs = tmp / 'stubs'
    stubs.mkdir()
    for name in ('python', 'srun'):
        (stubs / name).write_text(_STUB.format(name=name))
        (stubs / name).chmod(0o755)
    (stubs / 'sinfo').write_text('#!/bin/sh\nexit 1\n')
    (stubs / 'sinfo').chmod(0o755)
    out = []
    for i, text in enumerate(texts):
        env = _env()
        env['PATH'] = f'{stubs}{os.pathsep}{env["PATH"]}'
        env['STUB_LOG'] = str(tmp / f'{i}.log')
        run = _run(text, env)
        log = tmp / f'{i}.log'
        calls = [call.split('\0')[:-1] for call in log.read_text().split(
            '\036')[:-1]] if log.exists() else []
        out.append((run.returncode, run.stdout + run.stderr, calls))
    return out


#: Runs each spec of the JSON list ``sys.argv[1]`` as ``python`` would,
#: from the clone's root: ``{"script", "args"}`` as ``python script args``
#: (``sys.argv``, ``sys.path[0]`` the script's folder and not the clone's
#: root, ``__main__``), stopped once its arguments are parsed (``--help``
#: runs to its end); ``{"code", "args"}`` as ``python -c code args`` (to its
#: end, or until a script it runs has parsed its arguments), with ``"var"``:
#: its output (plus ``"suffix"``) is ``$var`` in the specs after it, and
#: must name a folder. The modules of the clone (``projects``, ``tests``)
#: are forgotten between specs, so each imports them through its own
#: ``sys.path``; the installed packages are imported once for all. Prints
#: one JSON line: ``'ok'``, ``'exit N'`` or the error, per spec.
DRIVER = r"""
import argparse, contextlib, io, json, os, runpy, sys, traceback
root = os.getcwd()
base = [p for p in sys.path if p not in ('', root)]
original = argparse.ArgumentParser.parse_args
class Parsed(Exception):
    pass
def parse_and_stop(parser, argv=None, namespace=None):
    original(parser, argv, namespace)
    raise Parsed()
argparse.ArgumentParser.parse_args = parse_and_stop
out, env = [], {}
def sub(word):
    for name, value in env.items():
        word = word.replace('$' + name, value)
    return word
for spec in json.loads(sys.argv[1]):
    for name in [m for m in sys.modules
                 if m.split('.')[0] in ('projects', 'tests')]:
        del sys.modules[name]
    args = [sub(a) for a in spec['args']]
    text = io.StringIO()
    try:
        with contextlib.redirect_stdout(text), \
                contextlib.redirect_stderr(text):
            if 'code' in spec:
                sys.path[:] = [''] + base
                sys.argv = ['-c'] + args
                exec(compile(spec['code'], '<string>', 'exec'),
                     {'__name__': '__main__'})
            else:
                script = sub(spec['script'])
                sys.path[:] = [os.path.dirname(os.path.abspath(script))] + base
                sys.argv = [script] + args
                runpy.run_path(script, run_name='__main__')
        if 'var' in spec:
            env[spec['var']] = text.getvalue().strip() + spec['suffix']
            out.append('ok' if os.path.isdir(env[spec['var']]) else
                       f'names no folder: {env[spec["var"]]}')
        else:
            out.append('ok' if 'code' in spec else
                       'ran to the end without parsing its arguments')
    except Parsed:
        out.append('ok')
    except SystemExit as err:
        out.append(f'exit {err.code or 0}')
    except BaseException:
        out.append(traceback.format_exc()[-1500:])
print()
print(json.dumps(out))
"""


def parse_from_root(specs: List[Union[dict, list]]) -> List[str]:
    """:data:`DRIVER` on the specs (``[script, args]`` stands for
    ``{"script": script, "args": args}``), in one process started from the
    clone's root without ``PYTHONPATH``."""
    specs = [dict(script=s[0], args=s[1]) if isinstance(s, list) else s
             for s in specs]
    run = _run(f'python -c {shlex.quote(DRIVER)} '
               f'{shlex.quote(json.dumps(specs))}')
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


def _check_mutation_test(where: str, text: str) -> List[str]:
    """``mutation_test.py`` as typed with ``--dry-run``: its plan, and
    every test file it names exists."""
    if '--dry-run' not in text:
        text += ' --dry-run'
    run = _run(text)
    out = run.stdout + run.stderr
    tests = re.search(r'^tests: (.*)$', out, re.M)
    if run.returncode != 0 or not (tests or 'nothing to mutate' in out):
        return [f'{where}\n{out[-1500:]}']
    missing = [t for t in tests.group(1).split()
               if not (ROOT / t).exists()] if tests else []
    return [f'{where}: no test {missing}'] if missing else []


def _check_pytest(where: str, argv: List[str]) -> List[str]:
    """``python -m pytest PATH -k WORD``: the path exists and a test of it
    has the word in its name."""
    paths = [w for w in argv[3:] if w.startswith('tests')]
    word = argv[argv.index('-k') + 1] if '-k' in argv else ''
    bad = [p for p in paths if not (ROOT / p.split('::')[0]).exists()]
    if word and not any(
            re.search(rf'def test_\w*{word}', (ROOT / p).read_text())
            for p in paths if p not in bad and (ROOT / p).is_file()):
        bad.append(f'-k {word} selects nothing')
    return [f'{where}: {bad}'] if bad or not paths else []


def test_every_command_runs_as_typed(tmp_path):
    """Every command of every user doc, typed from the clone's root without
    ``PYTHONPATH`` (see the module docstring)."""
    failures, skipped, checked = [], {}, Counter()
    used: Counter = Counter()
    specs: List[Tuple[str, dict]] = []
    scripts: List[Tuple[str, str]] = []
    seen = set()
    for cmd in _commands():
        for text in typed(cmd.text, used):
            where = f'{cmd.doc}:{cmd.line}: {text}'
            if text in seen:
                continue
            seen.add(text)
            capture = _CAPTURE.match(text)
            argv = python_argv(text) if not capture else []
            call = script_call(argv[1:]) if argv[:1] == ['python'] else None
            if capture:
                code = shlex.split(capture.group(2))[0]
                specs.append((where, dict(code=code, args=[],
                                          var=capture.group(1),
                                          suffix=capture.group(3))))
            elif argv[:2] == ['python', '-c']:
                specs.append((where, dict(code=argv[2], args=argv[3:])))
            elif argv[:2] == ['python', 'projects/mutation/mutation_test.py']:
                failures += _check_mutation_test(where, text)
                checked['mutation_test'] += 1
            elif argv[:3] == ['python', '-m', 'pytest'] and \
                    text not in README_CI and '|' not in text:
                failures += _check_pytest(where, argv)
                checked['pytest'] += 1
            elif call:
                specs.append((where, dict(script=call[0], args=call[1])))
                missing = [w for w in argv if w.startswith('configs/')
                           and w.endswith('.py') and not (ROOT / w).is_file()]
                if missing:
                    failures.append(f'{where}: no config {missing}')
            elif argv[:1] == ['bash'] and argv[1:2] != ['-c']:
                scripts.append((where, text))
            elif cmd.doc == 'README.md' and text in README_CI:
                checked['ci'] += 1
            else:
                skipped[(cmd.doc, cmd.written)] = EXPECTED_SKIPS.get(
                    (cmd.doc, cmd.written), 'not classified')
    # the bash scripts: their own checks, then the python they start
    for (where, text), (code, out, calls) in zip(
            scripts, run_scripts([t for _, t in scripts], tmp_path)):
        started = [script_call(c[c.index('python') + 1:]) for c in calls
                   if c[0] == 'python' or 'python' in c]
        if code != 0:
            failures.append(f'{where}: exit {code}, {calls}\n{out[-1500:]}')
        for call in calls:
            files = [call[i + 1] for i, w in enumerate(call[:-1])
                     if w == '-r']
            failures += [f'{where}: no {f}' for f in files
                         if not (ROOT / f).is_file()]
        specs += [(f'{where} -> python {s[0]} {" ".join(s[1])}',
                   dict(script=s[0], args=s[1])) for s in started if s]
        checked['bash'] += 1
    for (where, spec), got in zip(specs, parse_from_root(
            [s for _, s in specs])):
        ran = '--help' in spec['args'] and got == 'exit 0'
        if got != 'ok' and not ran:
            failures.append(f'{where}: {got}')
    checked['python'] = len(specs)
    print(dict(checked), 'skipped', len(skipped))
    assert failures == [], '\n\n'.join(failures)
    assert skipped == EXPECTED_SKIPS
    assert sorted(used) == sorted(SUBSTITUTIONS), 'a substitution unused'
    assert (ROOT / 'requirements' / 'mutation.txt').is_file()
    assert checked['mutation_test'] >= 4 and checked['python'] >= 100 and \
        checked['bash'] >= 10 and checked['ci'] == len(README_CI), checked


def test_ci_runs_the_readme_commands():
    """The README's install and test commands are the ones ``.ci/run``
    runs, in order; what differs is listed here with its reason."""
    differences = {
        'pip install -q ': ('pip install ', 'quiet'),
        ' "${FIND_LINKS[@]}"': ('', 'the prebuilt mmcv wheel, where CI '
                                'has one, saves the source build'),
        '"$PY" -m venv "$VENV"': ('python3 -m venv .venv', 'python3.11 '
                                  'where there is one, else python3; a '
                                  'venv of its own, so CI never touches '
                                  "the developer's .venv"),
        '. "$VENV/bin/activate"': ('. .venv/bin/activate', 'the same'),
    }
    lines = []
    for line in (ROOT / '.ci' / 'run').read_text().splitlines():
        for old, (new, _) in differences.items():
            line = line.replace(old, new)
        lines.append(line.strip())
    readme = [c.text for c in doc_commands(ROOT / 'README.md', ROOT)
              if c.text in README_CI]
    # the README: the first block installs, the second runs the tests
    assert [t for t in readme if t != '. .venv/bin/activate'] == [
        t for t in README_CI if t != '. .venv/bin/activate']
    at = [lines.index(t) for t in README_CI]
    assert at == sorted(at), 'CI runs them in another order'


def test_the_driver_can_fail(tmp_path):
    """A wrong option, and a script that imports the clone's modules
    without putting the clone's root on its path, fail; a one-liner's
    output names a folder or fails."""
    script = tmp_path / 'uses_projects.py'
    script.write_text('import argparse\n'
                      'import projects.benchmarks.synthetic_scans\n'
                      'argparse.ArgumentParser().parse_args()\n')
    box = 'projects/benchmarks/benchmark_box_stacking.py'
    got = parse_from_root([[box, ['--repeat', '5']],
                           [box, ['--repeats', '5']],
                           [str(script), []],
                           dict(code='print("tools")', args=[], var='T',
                                suffix=''),
                           [f'$T/{Path(box).name}', ['--help']]])
    assert got[:2] == ['ok', 'exit 2']
    assert "No module named 'projects'" in got[2]
    assert got[3] == 'ok' and got[4].startswith('Traceback')
    assert python_argv('OMP_NUM_THREADS=1 nice -n 10 python x.py --a 1') == \
        ['python', 'x.py', '--a', '1']
    assert script_call(['-m', 'torch.distributed.run', '--nnodes=1',
                        'tools/train.py', 'C', '--launcher', 'pytorch']) == \
        ('tools/train.py', ['C', '--launcher', 'pytorch'])


def test_stubbed_scripts_report_their_calls(tmp_path):
    """A bash script of the docs runs with ``python`` recorded, not run;
    its own refusal is its exit status."""
    (code, _, calls), (refused, out, none) = run_scripts(
        ['bash tools/dist_train.sh CONFIG 2', 'bash tools/slurm_train.sh p j'],
        tmp_path)
    assert code == 0 and script_call(calls[0][1:]) == (
        'tools/train.py', ['CONFIG', '--launcher', 'pytorch'])
    assert refused == 2 and 'usage' in out and none == []


def _table_equivalents(text: str) -> Dict[Tuple[str, ...], int]:
    """The code of a row of the scores table (``mmlesion/...``: a file, or a
    folder ending in ``/``; several joined by `` + `` where one run
    mutated them together) -> its Equivalent column."""
    return {tuple(re.findall(r'`(mmlesion/[^`]+)`', m.group(1))):
            int(m.group(2)) for m in re.finditer(
                r'^\| (`mmlesion/[^|]*) \| \d+ \| (\d+) \|', text, re.M)}


def test_scores_count_the_equivalents_the_tool_reads():
    tool = _load('_doc_mutation_test',
                 ROOT / 'projects' / 'mutation' / 'mutation_test.py')
    assert tool.EQUIVALENTS_DOC.is_file()
    listed = Counter(
        name.split('.x')[0] for name in tool.equivalent_mutants())
    table = _table_equivalents(
        (ROOT / 'docs' / 'mutation_testing.md').read_text(encoding='utf-8'))
    assert len(table) >= 35
    assert [c for row in table for c in row if not (ROOT / c).exists()] == []
    wrong = {}
    for codes, equivalent in table.items():
        got = 0
        for code in codes:
            module = code[:-3] if code.endswith('.py') else code
            module = module.replace('/', '.').rstrip('.')
            got += sum(n for m, n in listed.items()
                       if m == module or m.startswith(module + '.'))
        if got != equivalent:
            wrong[' + '.join(codes)] = (equivalent, got)
    assert wrong == {}, '(table, listed)'


def test_equivalents_name_files_of_the_package():
    text = (ROOT / 'projects' / 'mutation' / 'mutation_equivalents.md').read_text(
        encoding='utf-8')
    files = re.findall(r'^`(mmlesion/[^`]+\.py)`:$', text, re.M)
    assert len(files) >= 40
    tool = _load('_doc_mutation_test',
                 ROOT / 'projects' / 'mutation' / 'mutation_test.py')
    modules = {name.split('.x')[0] for name in tool.equivalent_mutants()}
    missing = [f for f in files if not (ROOT / f).is_file()] + sorted(
        m for m in modules
        if not (ROOT / f"{m.replace('.', '/')}.py").is_file()
        and not (ROOT / m.replace('.', '/') / '__init__.py').is_file())
    assert missing == []


def test_anchors_of_every_user_doc_resolve():
    index = _load('_doc_index', Path(__file__).with_name(
        'test_docs_index.py'))
    user = _load('_doc_user', Path(__file__).with_name('test_user_docs.py'))
    docs = user.USER_DOCS + [ROOT / 'projects' / 'benchmarks' / 'RESULTS.md',
                             ROOT / 'projects' / 'mutation' / 'RESULTS.md']
    broken = [f'{d.relative_to(ROOT)}: {b}' for d in docs
              for b in index.broken_anchors(d)]
    assert broken == []
