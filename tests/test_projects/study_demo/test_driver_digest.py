# Copyright (c) mmlesion contributors. All rights reserved.
"""A stored study result records the study drivers of ``projects/`` too: a
fix in a driver is never answered with a result of the old driver."""
import json

import pytest

from projects.study_demo.study import (RESULT_FILE, StudyMetric, StudyRow,
                                       StudySettings, run_study)
from projects.study_demo.study.driver_digest import drivers_digest

METRIC = StudyMetric('toy', fp_rates=('1', ))


def _tree(root):
    (root / 'lens' / 'tools').mkdir(parents=True)
    (root / 'lens' / 'tools' / 'study.py').write_text('A = 1\n')
    (root / 'benchmarks').mkdir()
    (root / 'benchmarks' / 'bench.py').write_text('B = 1\n')
    (root / 'conftest_like.py').write_text('C = 1\n')
    (root / 'README.md').write_text('text\n')


def test_a_driver_change_changes_the_digest(tmp_path):
    _tree(tmp_path)
    first = drivers_digest(str(tmp_path))
    assert len(first) == 64
    # neither a benchmark nor a page is a study driver
    (tmp_path / 'benchmarks' / 'bench.py').write_text('B = 2\n')
    (tmp_path / 'README.md').write_text('other text\n')
    from projects.study_demo.study import driver_digest
    driver_digest._cached_digest.cache_clear()
    assert drivers_digest(str(tmp_path)) == first
    for path in (tmp_path / 'lens' / 'tools' / 'study.py',
                 tmp_path / 'conftest_like.py'):
        old = path.read_text()
        path.write_text(old + 'D = 2\n')
        driver_digest._cached_digest.cache_clear()
        assert drivers_digest(str(tmp_path)) != first, path
        path.write_text(old)
    driver_digest._cached_digest.cache_clear()
    assert drivers_digest(str(tmp_path)) == first


class _Run:

    def __init__(self):
        self.calls = 0

    def __call__(self, cfg, ctx):
        self.calls += 1
        return {'froc/sens@1': 0.5}


def test_result_of_another_driver_is_not_reused(tmp_path, monkeypatch):
    from projects.study_demo.study import runner
    rows = [StudyRow('a', 'A', 'demo/faster-rcnn_r18_fpn_36e_deeplesion-'
                     'demo.py')]
    settings = StudySettings(str(tmp_path), seeds=(0, ))
    run_study(rows, settings, METRIC, run_row=_Run(), log=lambda s: None)
    stored = json.loads((tmp_path / 'a' / 'seed_0' / RESULT_FILE).read_text())
    assert stored['fingerprint']['code']['drivers'] == drivers_digest()
    same = _Run()
    run_study(rows, settings, METRIC, run_row=same, log=lambda s: None)
    assert same.calls == 0  # same drivers: reused
    monkeypatch.setattr(runner, 'drivers_digest', lambda: '0' * 64)
    with pytest.raises(ValueError, match='drivers'):
        run_study(rows, settings, METRIC, run_row=_Run(), log=lambda s: None)
