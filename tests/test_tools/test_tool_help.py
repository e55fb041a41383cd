# Copyright (c) mmlesion contributors. All rights reserved.
"""``--help`` of every tool under ``tools/`` and every script of the
laboratory under ``projects/`` (found by glob).

Each tool runs ``--help`` in a process of its own, as ``python`` runs a
file: it must exit 0, print a usage line and a help text for every
argument, and print nothing on stderr (no start-up warnings). The text
must say each default once, never "(default: None)", and nothing a user
cannot follow: "see below" / "above", ``../shared`` paths, ``PROTOCOLS``,
issue numbers or commit hashes
(:func:`~projects.benchmarks.tool_help.help_text_problems`).

The processes are forks of the suite's zygote (``tools_forked``,
:mod:`tests.helpers.zygote`), which imported torch, mmdet and mmlesion
once: a fresh interpreter per tool paid those imports (about 5 s of CPU)
for each of the tools that show a library default, 65 s of CPU for all
tools, and a module-scoped fixture running them all ran once per
pytest-xdist worker. The warnings those imports print are checked once,
in a fresh interpreter (:func:`test_preimports_print_nothing`); what the
zygote did not import, a tool imports in its own process, where its
warnings land on the stderr checked here. How long a fresh ``--help``
takes is measured by ``projects/benchmarks/benchmark_tool_help.py``.
"""
import importlib.util
import os
import subprocess
import sys
from dataclasses import asdict

import pytest

from mmlesion.testing import repo_root
from projects.benchmarks.tool_help import (find_tool_scripts, help_items,
                                           help_text_problems,
                                           options_without_help,
                                           run_tool_help)
from tests.helpers.zygote import PREIMPORTS

ROOT = repo_root()
SCRIPTS = find_tool_scripts(ROOT, ('tools', 'projects'))


def test_tools_found():
    names = {p.relative_to(ROOT).as_posix() for p in SCRIPTS}
    # One of each folder, so a broken glob cannot pass with no tools.
    for name in ('tools/train.py', 'tools/test.py', 'tools/infer_volume.py',
                 'tools/analysis_tools/eval_lens_3d.py',
                 'tools/dataset_converters/lits.py',
                 'tools/misc/generate_demo_data.py',
                 'projects/lens/tools/lens_demo.py',
                 'projects/benchmarks/benchmark_froc.py'):
        assert name in names


@pytest.mark.usefixtures('tools_forked')
@pytest.mark.parametrize(
    'script', SCRIPTS, ids=[p.relative_to(ROOT).as_posix() for p in SCRIPTS])
def test_tool_help(script):
    result = run_tool_help(script, ROOT)
    name = script.relative_to(ROOT).as_posix()
    assert result.returncode == 0, f'{name} --help: {result.stderr[-2000:]}'
    assert result.stdout.startswith('usage: '), name
    assert options_without_help(result.stdout) == [], name
    assert result.stderr == '', f'{name} --help printed: {result.stderr}'
    assert help_text_problems(result.stdout) == [], name


def test_preimports_print_nothing():
    """What the zygote imports before it forks the ``--help`` runs above
    prints nothing on stderr in a fresh interpreter (a tool that imports it
    would print that first)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get('PYTHONPATH', '')) if p))
    proc = subprocess.run(
        [sys.executable, '-c', 'import importlib, sys\n'
         'for name in sys.argv[1:]:\n'
         '    importlib.import_module(name)\n', *PREIMPORTS],
        cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == '', proc.stderr


#: Tools whose parser is built without importing the library (a switch
#: imports its environment variable when it is given; ``reproduce`` looks
#: its tables up after parsing (``--list``), a method's whole-scan options
#: are its ``flags.py``, loaded from the file; the demo generators'
#: defaults are data files read as data, as are the defaults and choices
#: of the settings dataclasses that
#: ``infer_volume.py``, the converters and the LUNA16 tools show: the
#: library's ``tool_defaults.json`` files).
LIGHT_HELP = ('tools/train.py', 'tools/test.py', 'tools/reproduce.py',
              'tools/misc/generate_demo_data.py',
              'projects/study_demo/tools/generate_demo_volumes.py',
              'projects/study_demo/tools/generate_study_data.py',
              'tools/analysis_tools/analyze_results.py',
              'tools/infer_volume.py',
              'tools/dataset_converters/convert_dataset.py',
              'tools/dataset_converters/kits19.py',
              'tools/dataset_converters/lits.py',
              'tools/dataset_converters/luna16.py',
              'tools/dataset_converters/nih_ln.py',
              'tools/analysis_tools/eval_luna16.py', 'tools/luna16_cv.py')
#: What ``--help`` of those must not import.
HEAVY = ('mmlesion', 'mmdet', 'mmcv', 'torch')

_IMPORTS_OF_HELP = """
import contextlib, io, runpy, sys
heavy = set(sys.argv[1].split(','))
for tool in sys.argv[2:]:
    sys.argv = [tool, '--help']
    code = 1
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            runpy.run_path(tool, run_name='__main__')
        except SystemExit as stop:
            code = stop.code
    loaded = sorted({m.split('.')[0] for m in sys.modules} & heavy)
    print(tool, code, *loaded)
"""


def test_help_imports_no_library():
    """``--help`` of the tools in :data:`LIGHT_HELP` imports nothing of
    mmlesion, mmdet, mmcv or torch: a switch imports its variable when it
    is given, a library default is filled in after parsing (one
    interpreter runs them one after the other, as ``python TOOL --help``
    each)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get('PYTHONPATH', '')) if p))
    proc = subprocess.run(
        [sys.executable, '-c', _IMPORTS_OF_HELP, ','.join(HEAVY),
         *LIGHT_HELP], cwd=str(ROOT), env=env, capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [f'{tool} 0' for tool in LIGHT_HELP]


def _load_tool(relative: str):
    spec = importlib.util.spec_from_file_location(
        relative.replace('/', '_')[:-3], ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.usefixtures('tools_forked')
@pytest.mark.parametrize('tool, config', [
    ('projects/study_demo/tools/generate_demo_volumes.py',
     'projects.study_demo.synthetic.volumes.DemoVolumeConfig'),
    ('tools/misc/generate_demo_data.py',
     'mmlesion.apps.demo.DemoDataConfig'),
    ('projects/study_demo/tools/generate_study_data.py',
     'projects.study_demo.synthetic.deeplesion.StudyDataConfig'),
])
def test_demo_generators_show_their_defaults(tool, config):
    """The demo data generators show the values their options default to
    (those of the generator's config dataclass), not a pointer to it."""
    help_text = run_tool_help(ROOT / tool, ROOT).stdout
    module_name, class_name = config.rsplit('.', 1)
    defaults = asdict(getattr(importlib.import_module(module_name),
                              class_name)())
    args = vars(_load_tool(tool).parse_args([]))
    shown = {name: text for _, name, text in help_items(help_text)}
    checked = 0
    for key, value in args.items():
        if key not in defaults:
            continue
        assert value == defaults[key], key
        option = '--' + key.replace('_', '-')
        (text, ) = [t for n, t in shown.items() if n.split()[0] == option]
        if value is not None:
            assert f'(default: {value})' in text, (option, text)
            checked += 1
    assert checked >= 5
    assert 'takes the default of' not in help_text


HELP = """usage: x.py [-h] [--seed SEED] [--out OUT] root

Does x.

positional arguments:
  root         the input

options:
  -h, --help   show this help message and exit
  --seed SEED
  --out OUT    where the
               result goes (default: a)
  --very-long-option-name VERY_LONG_OPTION_NAME
                        wrapped onto the next line
  --flag

examples:
  python x.py a
"""


def test_options_without_help():
    assert options_without_help(HELP) == ['--seed SEED', '--flag']
    assert options_without_help('usage: y.py [-h]\n\noptions:\n'
                                '  -h, --help  show this help\n') == []


def test_help_text_problems():
    assert help_text_problems(HELP) == []
    bad = HELP.replace('(default: a)', '(default: a) (default: b)')
    assert help_text_problems(bad) == [
        "--out OUT: the default twice: 'where the result goes (default: a) "
        "(default: b)'"]
    # comparisons are fine, references into the page are not
    fine = HELP.replace('the input', 'boxes scoring below it are dropped, '
                        'no air below -200 HU, IoU above 0.5')
    assert help_text_problems(fine) == []
    for text, what in [
            ('see below', 'below or above'), ('(defaults above)', 'above'),
            ('as listed below.', 'below'), ('(default: None)', 'None'),
            ('../shared/data/deeplesion', '../shared'),
            ('PROTOCOLS.md Sec. 2', 'PROTOCOLS'),
            ('(issue 12)', 'issue'), ('fixed in issue #7', 'issue'),
            ('since 3f2a9c1', 'commit'),
            ('at d7e5c0b4a1f29e8b6c3d2e1f0a9b8c7d6e5f4a3b', 'commit')]:
        problems = help_text_problems(HELP.replace('the input', text))
        assert len(problems) == 1 and what in problems[0], (text, problems)
