# Copyright (c) mmlesion contributors. All rights reserved.
"""A method added the way ``docs/adding_a_method.md`` says, with no edit of
an engine: a toy method's package (its spec, rows and table index in one
``__init__.py``, a config over the demo detector's) written to a
temporary folder and imported, which registers it; its
one-row table then runs at tiny size through ``tools/reproduce.py``, and
the table list, the paper column, the step times and the whole-config
check know it. Unregistered afterwards, it is gone from all of them. The
page's file table lists at most 8 files in at most 4 folders, the count
its text states, and its example module's table index reads as the
tool reads it."""
import ast
import importlib
import json
import math
import posixpath
import re
import sys

import pytest

from mmlesion.apps.reproduce.paper_tables import PAPER_TABLES
from mmlesion.testing import repo_root
from mmlesion.utils.configs.whole_config import CONFIG_KEYS
from mmlesion_cli.package_data import module_literals
from tests.helpers.tool_modules import load_tool

# Stages run as forks of a process that imported mmdet once (conftest).
pytestmark = pytest.mark.usefixtures('tools_forked')

STEM = 'toyd_r18_fpn_1e_deeplesion-demo'
PAGE = repo_root() / 'docs' / 'adding_a_method.md'
#: a row of the page's file table: ``| n | `path` | what |``
PAGE_ROW = re.compile(r'^\| (\d+) \| `([^`]+)` \|', re.M)
#: the page's example of the method's one module
PAGE_MODULE = re.compile(
    r'`mmlesion/methods/mymethod/tables\.py`:\s*```python\n(.*?)```',
    re.S)
#: the toy's files, as the page lists them: its package's one module
#: (spec, rows and table index) and its config
FILES = {
    '__init__.py': f'''
import os.path as osp

from mmlesion.apps.reproduce.execute import FROC_RATES, froc_map
from mmlesion.apps.reproduce.paper_tables import PAPER_TABLES, PaperTables
from mmlesion.apps.reproduce.row_stages import train_test_row
from mmlesion.apps.reproduce.table_index import table_specs
from mmlesion.utils.configs.whole_config import CONFIG_KEYS, ConfigKeys

STEM = {STEM!r}
CONFIG = osp.join(osp.dirname(__file__), 'configs', STEM + '.py')
TABLE_INDEX = {{
    'toy/table1': {{'title': 'Toy Table 1: the demo detector',
                   'rows': ['full']}},
}}


def _table1(ctx, key, seed):
    return train_test_row(ctx, key, 'Toy detector', CONFIG, seed)


BUILDERS = {{'toy/table1': (_table1, froc_map(), FROC_RATES, False)}}
PAPER_TABLES.register(PaperTables(
    name='toy',
    tables=table_specs(__file__, BUILDERS, TABLE_INDEX),
    paper_results={{STEM: {{'sens@4': 50.0}}}},
    config_prefixes=('toyd', ),
    step_times={{'toyd': 0.5}}))
CONFIG_KEYS.register(ConfigKeys(
    name='toy', keys={{'ToyDetector': {{
        'test_cfg': frozenset({{'score_thr'}})}}}}))
''',
    f'configs/{STEM}.py': f'''
_base_ = {str(repo_root() / 'configs' / 'demo' /
              'faster-rcnn_r18_fpn_36e_deeplesion-demo.py')!r}
train_cfg = dict(max_epochs=1, val_begin=2)
default_hooks = dict(checkpoint=dict(interval=1, save_best=None))
train_dataloader = dict(dataset=dict(indices=2))
test_dataloader = dict(dataset=dict(indices=1))
''',
}


@pytest.fixture
def toy_method(tmp_path):
    """The toy package written and imported (registered); unregistered
    and forgotten afterwards."""
    package = tmp_path / 'toy_method'
    for name, text in FILES.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module('toy_method')
    finally:
        sys.path.remove(str(tmp_path))
        PAPER_TABLES.module_dict.pop('toy', None)
        CONFIG_KEYS.module_dict.pop('toy', None)
        for name in [m for m in sys.modules if m.split('.')[0] ==
                     'toy_method']:
            del sys.modules[name]


def test_a_toy_method_runs_its_table_without_an_engine_edit(
        toy_method, tiny_demo_root, tmp_path, capsys, monkeypatch):
    from mmlesion.apps.reproduce import TABLES
    from mmlesion.apps.reproduce.estimate import family, training_gpu_hours
    from mmlesion.apps.reproduce.paper_text import model_method
    from mmlesion.utils.configs.whole_config import MODEL_CFG_KEYS

    assert TABLES['toy/table1'].row_keys == ['full']
    assert model_method(STEM) == 'toy'
    assert family(f'{STEM}.py') == 'toyd'
    assert training_gpu_hours(f'{STEM}.py', 2, 3600) == pytest.approx(1.0)
    assert MODEL_CFG_KEYS['ToyDetector'] == {
        'test_cfg': frozenset({'score_thr'})}

    # the tool's --help and choices read the TABLE_INDEX of every module
    # of methods/*/ with ast, without importing them: the toy's too, as if
    # it were there
    toy_index = module_literals([toy_method.__file__], 'TABLE_INDEX')
    assert toy_index == toy_method.TABLE_INDEX
    tool = load_tool('reproduce.py')
    shipped = tool.package_literals
    monkeypatch.setattr(tool, 'package_literals', lambda *args: dict(
        shipped(*args), **toy_index))
    work = tmp_path / 'work'
    assert tool.main([
        'toy/table1', '--seeds', '0', '--work-dir', str(work),
        '--data-root', f'{tiny_demo_root}/']) == 0
    assert capsys.readouterr().out.count('tools/train.py') == 1
    (row, ) = json.loads((work / 'table.json').read_text())['rows']
    assert (row['key'], row['model']) == ('full', STEM)
    assert row['paper'] == {'sens@4': 50.0}
    assert math.isfinite(row['ours']['sens@4']['mean'])
    assert '| Toy detector |' in (work / 'table.md').read_text()


def test_the_page_adds_at_most_8_files_in_4_folders(tmp_path):
    text = PAGE.read_text()
    rows = PAGE_ROW.findall(text)
    assert [int(n) for n, _ in rows] == list(range(1, len(rows) + 1))
    files = [path for _, path in rows]
    folders = {posixpath.dirname(path) for path in files}
    # the line of model-index.yml, which the page states below its table
    assert 'model-index.yml' not in files
    assert len(files) + 1 <= 8 and len(folders) <= 4, (files, folders)
    assert (f'That is {len(files)} files in {len(folders)} folders, '
            f'{len(files) + 1} files with `model-index.yml`.'
            ) in ' '.join(text.split())
    # the workflow is one module, as the toy's: spec, rows and index
    assert 'mmlesion/methods/mymethod/tables.py' in files
    assert [n for n in FILES if '/' not in n] == ['__init__.py']
    (example, ) = PAGE_MODULE.findall(text)
    module = tmp_path / '__init__.py'
    module.write_text(example)
    compile(example, str(module), 'exec')
    index = module_literals([str(module)], 'TABLE_INDEX')
    builders = next(node.value for node in ast.parse(example).body
                    if isinstance(node, ast.Assign)
                    and node.targets[0].id == 'BUILDERS')
    assert list(index) == [ast.literal_eval(k) for k in builders.keys]
    assert all(set(t) == {'title', 'rows'} for t in index.values())


def test_an_unregistered_toy_is_nowhere(toy_method):
    from mmlesion.apps.reproduce import TABLES
    from mmlesion.apps.reproduce.estimate import SECONDS_PER_TRAINING_ITEM
    assert 'toy/table1' in TABLES and 'toyd' in SECONDS_PER_TRAINING_ITEM
    PAPER_TABLES.module_dict.pop('toy')
    assert 'toy/table1' not in TABLES
    assert 'toyd' not in SECONDS_PER_TRAINING_ITEM
    with pytest.raises(KeyError, match="unknown table 'toy/table1'"):
        from mmlesion.apps.reproduce import PlanContext, build_rows
        build_rows('toy/table1', PlanContext('w', python='python'), None,
                   [0])
