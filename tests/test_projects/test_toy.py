# Copyright (c) mmlesion contributors. All rights reserved.
"""The toy method (``projects/toy/``), added from outside the package with no
other file of the repository edited: its table is found by
``tools/reproduce.py`` through ``--custom-imports`` (mmengine's
``custom_imports``, not read from source) and runs its README's command end
to end at tiny size, beside the number that README publishes; its detector
keeps at most ``test_cfg.max_per_slice`` boxes of a slice; the whole-config
check knows that key (and refuses a typo of it); its metafile is
OpenMMLab's form."""
import json
import math
import os
import re
import shlex
import subprocess
import sys

import pytest

from mmlesion.testing import repo_root

ROOT = repo_root()
TOY = ROOT / 'projects' / 'toy'
TABLES = 'projects.toy.toy.tables'
STEM = 'toy_r18_fpn_12e_deeplesion-demo'
CONFIG = f'projects/toy/configs/{STEM}.py'
#: the README's results row: label | data | sens@4 | config
RESULT_ROW = re.compile(r'^\| (Faster R-CNN, 20 boxes a slice) \| [^|]+ \| '
                        r'([0-9.]+) \|', re.M)
#: one epoch at the suite's tiny size (appended to the training and test)
TINY = ['train_cfg.max_epochs=1']


def _run(argv, cwd=ROOT):
    """A tool as the README runs it: from the clone's root, which is on
    ``PYTHONPATH``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1',
               CUDA_VISIBLE_DEVICES='')
    return subprocess.run([sys.executable] + argv, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def _readme_command(start: str) -> str:
    """The README's command that starts with ``start``."""
    (line, ) = [line for line in (TOY / 'README.md').read_text().splitlines()
                if line.startswith(start)]
    return line


@pytest.mark.usefixtures('tools_forked')
def test_the_table_is_found_through_custom_imports():
    command = _readme_command('python tools/reproduce.py --list')
    listed = _run(shlex.split(command)[1:])
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert 'toy/table1: Toy Table 1' in listed.stdout
    assert 'rows: capped' in listed.stdout
    plain = _run(['tools/reproduce.py', '--list'])
    assert plain.returncode == 0 and 'elixirnet/table1' in plain.stdout
    assert 'toy/table1' not in plain.stdout  # registered only when imported
    unknown = _run(['tools/reproduce.py', 'toy/table1', '--dry-run'])
    assert unknown.returncode == 2
    assert "unknown table 'toy/table1'" in unknown.stderr


@pytest.mark.usefixtures('tools_forked')
def test_the_readme_table_runs_end_to_end(tiny_demo_root, tmp_path):
    command = _readme_command('python tools/reproduce.py toy/table1')
    work = tmp_path / 'work'
    argv = [str(tiny_demo_root) + '/' if w == 'data/demo_deeplesion/' else
            str(work) if w == 'work_dirs/toy' else w
            for w in shlex.split(command)[1:]]
    run = _run(argv + ['--seeds', '0', '--cfg-options'] + TINY)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    (row, ) = json.loads((work / 'table.json').read_text())['rows']
    assert (row['key'], row['model']) == ('capped', STEM)
    (published, ) = RESULT_ROW.findall((TOY / 'README.md').read_text())
    assert row['paper'] == {'sens@4': float(published[1])}
    assert math.isfinite(row['ours']['sens@4']['mean'])
    assert f'| {published[0]} |' in (work / 'table.md').read_text()


def test_the_detector_keeps_at_most_max_per_slice():
    import torch
    from mmengine.config import Config

    from mmdet.registry import MODELS
    from projects.study_demo.config_smoke import batch_2d
    cfg = Config.fromfile(str(ROOT / CONFIG))  # custom_imports: the toy
    cfg.model.test_cfg.rcnn.update(score_thr=0., max_per_img=50)
    model = MODELS.build(cfg.model).eval()
    data = model.data_preprocessor(batch_2d(0, 2, 64, 3), False)
    counts = {}
    for cap in (20, 3, None):
        model.test_cfg['max_per_slice'] = cap
        with torch.no_grad():
            found = model.predict(data['inputs'], data['data_samples'])
        counts[cap] = [len(s.pred_instances) for s in found]
        scores = [s.pred_instances.scores for s in found]
        assert all(bool((s[:-1] >= s[1:]).all()) for s in scores)
    assert counts[3] == [3, 3] and counts[20] == [20, 20]
    assert min(counts[None]) > 20


def test_the_config_check_knows_its_key():
    """``max_per_slice`` passes the whole-config check of ``tools/train.py``
    and ``test.py``; a typo of it is refused, named, because the toy
    registered the key (without it the section would be open-ended)."""
    from mmengine.config import Config

    from mmlesion.utils.configs.whole_config import (CONFIG_KEYS,
                                                     find_config_problems)
    cfg = Config.fromfile(str(ROOT / CONFIG))  # custom_imports: the toy
    assert find_config_problems(cfg) == []
    cfg.model.test_cfg['max_per_slise'] = 3
    (problem, ) = find_config_problems(cfg)
    assert problem.error and problem.path == 'model.test_cfg.max_per_slise'
    assert 'max_per_slice' in problem.message  # the closest known key
    part = CONFIG_KEYS.module_dict.pop('toy')
    try:
        assert find_config_problems(cfg) == []
    finally:
        CONFIG_KEYS.register(part)


def test_the_metafile_is_openmmlabs_form():
    from modelindex.load_model_index import load
    index = load(str(TOY / 'metafile.yml'))
    (model, ) = index.models
    assert model.name == STEM and model.config == CONFIG
    assert (ROOT / model.config).is_file()
    assert model.in_collection == 'Toy'
    assert index.collections[0].readme == 'projects/toy/README.md'
    (published, ) = RESULT_ROW.findall((TOY / 'README.md').read_text())
    assert model.results[0].metrics == {'sens@4': float(published[1])}
