# Copyright (c) mmlesion contributors. All rights reserved.
"""The one rule every study judges its steps by: paired by seed, shown
when |mean difference| > 2 x the std of the per-seed differences, at least
3 seeds; computed by the shared report for every study tool."""
import importlib.util
import json
import math

import pytest

from projects.study_demo.study import (RowResult, StudyResult, StudyRow,
                                 StudySettings, StudyStep, StudyTestSet,
                                 deeplesion_froc,
                                 effects_markdown, paired_effects, verdict,
                                 write_study_report)
from mmlesion.testing import repo_root

KEY = 'froc/mean@0.5-4'


def _result(per_row, work_dir='w'):
    rows = []
    for key, per_seed in per_row.items():
        res = RowResult(StudyRow(key, f'row {key}', 'x.py'))
        res.metrics = {s: {KEY: v} for s, v in per_seed.items()}
        rows.append(res)
    return StudyResult(rows, StudySettings(str(work_dir), seeds=(0, 1, 2)),
                       deeplesion_froc())


def test_paired_not_unpaired():
    # rows spread by seed (std 0.1) but the step is +0.10 / +0.10 / +0.12
    res = _result({'a': {0: .30, 1: .20, 2: .40},
                   'b': {0: .40, 1: .30, 2: .52}})
    (e, ) = paired_effects(res, [StudyStep('a', 'b', 'step')], KEY)
    assert e['seeds'] == [0, 1, 2]
    assert e['mean'] == pytest.approx(0.32 / 3)
    assert e['std'] == pytest.approx(0.011547, abs=1e-6)
    assert e['smallest_shown'] == pytest.approx(2 * e['std'])
    assert e['shown'] is True and verdict(e) == 'shown, up'
    # unpaired (difference of means vs 2 x the larger row std) would not
    # show it: 0.107 < 2 x 0.1
    reverse = paired_effects(res, [StudyStep('b', 'a', 'back')], KEY)[0]
    assert verdict(reverse) == 'shown, down'


def test_boundary_and_too_few_seeds():
    # differences +0.25, +0.5, +0.75 (exact in binary): mean 0.5, std 0.25,
    # 2 std = 0.5: the mean equals 2 std exactly, which is not "more than"
    res = _result({'a': {0: 0., 1: 0., 2: 0.},
                   'b': {0: .25, 1: .5, 2: .75},
                   'c': {0: .5, 1: .6}})
    eff = paired_effects(
        res, [StudyStep('a', 'b', 'x'), StudyStep('b', 'c', 'y'),
              StudyStep('a', 'nope', 'z')], KEY)
    assert eff[0]['mean'] == 0.5 and eff[0]['smallest_shown'] == 0.5
    assert eff[0]['shown'] is False and verdict(eff[0]) == 'not shown'
    assert eff[1]['seeds'] == [0, 1] and eff[1]['shown'] is None
    assert verdict(eff[1]) == 'no verdict (2 paired seeds < 3)'
    assert eff[2]['seeds'] == [] and math.isnan(eff[2]['mean'])
    md = effects_markdown(eff)
    assert '| x | a -> b | 3 | +50.00 | 25.00 | 50.00 | +25.0, +50.0, ' \
        '+75.0 | not shown |' in md
    assert '| z | a -> nope | 0 | - | - | - | - | no verdict (0 paired ' \
        'seeds < 3) |' in md


def test_report_writes_the_effects(tmp_path):
    res = _result({'a': {0: .30, 1: .20, 2: .40},
                   'b': {0: .40, 1: .30, 2: .52}}, tmp_path)
    for r in res.rows:
        for m in r.metrics.values():
            m.update({f'froc/sens@{x}': 0.5 for x in res.metric.fp_rates})
    steps = [StudyStep('a', 'b', 'step')]
    # a study that judges steps must say what it tested on
    with pytest.raises(ValueError, match='test_set'):
        write_study_report(res, name='s', steps=steps)
    test_set = StudyTestSet(lesions=152, images=80, data_seeds=(0, ))
    write_study_report(res, name='s', steps=steps, test_set=test_set)
    summary = json.loads((tmp_path / 's.json').read_text())
    (e, ) = summary['effects']
    assert e['metric'] == KEY and e['shown'] is True
    assert summary['test_set']['lesions'] == 152
    assert summary['test_set']['training_seeds'] == [0, 1, 2]
    assert summary['test_set']['one_finding'] == pytest.approx(1 / 152)
    md = (tmp_path / 's.md').read_text()
    assert 'Paired effects on froc/mean@0.5-4' in md
    assert '| step | a -> b | 3 | +10.67 |' in md
    assert ('Test set: 152 lesions on 80 key slices (one lesion = 0.66 '
            'points); data seed(s) [0]; training seeds [0, 1, 2].') in md
    # without steps: no effects
    write_study_report(res, name='t')
    assert 'effects' not in json.loads((tmp_path / 't.json').read_text())


def _tool(rel):
    spec = importlib.util.spec_from_file_location(
        rel.replace('/', '_')[:-3], repo_root() / rel)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize('rel', [
    'projects/elixirnet/tools/eval_elixirnet_demo.py',
    'projects/retinanet_lesion/tools/eval_retinanet_lesion_demo.py',
])
def test_study_tools_declare_their_steps(rel):
    """Every step of the 2D studies names two rows the study has."""
    tool = _tool(rel)
    steps = tool.study_steps()
    assert len(steps) >= 5
    if hasattr(tool, 'DEMO_ROWS'):
        keys = {tool.row_dir_name(k) for k in tool.DEMO_ROWS}
    else:
        keys = {r.key for r in tool.study_rows()}
    for step in steps:
        assert {step.before, step.after} <= keys, step


def test_too_small_a_test_set_gives_no_verdict(tmp_path):
    """With fewer test lesions than the minimum (150; 60 nodules) no step is
    judged, however large the paired effect."""
    res = _result({'a': {0: .30, 1: .20, 2: .40},
                   'b': {0: .40, 1: .30, 2: .52}}, tmp_path)
    steps = [StudyStep('a', 'b', 'step')]
    for lesions, shown in ((149, None), (150, True)):
        small = StudyTestSet(lesions=lesions, images=40)
        (e, ) = paired_effects(res, steps, KEY, test_set=small)
        assert e['shown'] is shown
    (e, ) = paired_effects(res, steps, KEY,
                           test_set=StudyTestSet(76, 40))
    assert verdict(e) == 'no verdict (76 test lesions < 150)'
    nodules = StudyTestSet(59, 35, unit='nodules', image_unit='scans',
                           minimum=60)
    assert not nodules.large_enough
    assert 'Below the minimum of 60 nodules' in nodules.describe((0, 1, 2))
    assert 'one nodule = 1.69 points' in nodules.describe()
    assert StudyTestSet(60, 35, minimum=60).large_enough
    with pytest.raises(ValueError):
        StudyTestSet(-1, 3)


def test_config_test_set_counts_what_the_rows_test_on(tiny_demo_root):
    """The test set is counted from the row config's test dataset as built
    (data root and options applied), not from a preset."""
    from projects.study_demo.study import config_test_set
    from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
    from mmlesion.testing import get_config
    cfg = get_config('elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-'
                     'demo.py')
    cfg.test_dataloader.dataset.data_root = str(tiny_demo_root) + '/'
    recs = [r for r in parse_dl_info(str(tiny_demo_root / 'DL_info.csv'))
            if r.split == 3]
    ts = config_test_set(cfg, data_seeds=(4, ))
    assert ts.lesions == len(recs) and ts.images == len(
        {r.file_name for r in recs}) and ts.data_seeds == (4, )
    cfg.test_dataloader.dataset.indices = 1
    one = config_test_set(cfg)
    assert one.images == 1 and one.lesions < ts.lesions
