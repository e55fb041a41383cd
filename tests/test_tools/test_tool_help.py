# Copyright (c) mmlesion contributors. All rights reserved.
"""``--help`` of every tool under ``tools/`` (found by glob).

Each tool runs ``--help`` in a fresh interpreter: it must exit 0, print a
usage line and a help text for every argument, and print nothing on
stderr (no start-up warnings, issue 20). The runs go in parallel; how long
they take is measured by ``tools/analysis_tools/benchmark_tool_help.py``,
not here.
"""
from concurrent.futures import ThreadPoolExecutor

import pytest

from mmlesion.testing import repo_root
from mmlesion_cli.tool_help import (find_tool_scripts, options_without_help,
                                    run_tool_help)

ROOT = repo_root()
SCRIPTS = find_tool_scripts(ROOT)


@pytest.fixture(scope='module')
def help_results():
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda s: run_tool_help(s, ROOT), SCRIPTS)
        return dict(zip(SCRIPTS, results))


def test_tools_found():
    names = {p.relative_to(ROOT).as_posix() for p in SCRIPTS}
    # One of each folder, so a broken glob cannot pass with no tools.
    for name in ('tools/train.py', 'tools/test.py', 'tools/infer_volume.py',
                 'tools/analysis_tools/eval_lens_3d.py',
                 'tools/dataset_converters/lits.py',
                 'tools/misc/generate_demo_data.py'):
        assert name in names


@pytest.mark.parametrize(
    'script', SCRIPTS, ids=[p.relative_to(ROOT).as_posix() for p in SCRIPTS])
def test_tool_help(script, help_results):
    result = help_results[script]
    name = script.relative_to(ROOT).as_posix()
    assert result.returncode == 0, f'{name} --help: {result.stderr[-2000:]}'
    assert result.stdout.startswith('usage: '), name
    assert options_without_help(result.stdout) == [], name
    assert result.stderr == '', f'{name} --help printed: {result.stderr}'
    # parsed before the heavy imports: --help in about a second
    assert result.heavy_imports == [], (
        f'{name} --help imported {result.heavy_imports}')


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
