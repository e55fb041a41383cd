# Copyright (c) mmlesion contributors. All rights reserved.
"""The 3D Aggregated Faster R-CNN ablation tool: each row's model, schedule
and starting checkpoint, the ABS round, resuming (training stubbed)."""
import json
import os
import os.path as osp

import pytest

import mmlesion.methods.aggregated3d.hard_regions as hard_regions
import projects.study_demo.study as study
import projects.study_demo.study.runner as study_runner
from tests.helpers.tool_modules import load_tool


@pytest.fixture
def tool():
    return load_tool('projects/aggregated3d/tools/eval_aggregated3d_demo.py')


def _stub_training(monkeypatch, tool, seen):
    """Replace training and mining: record each row's config, write the
    checkpoint its schedule ends with, return a metric per row (and the
    test-set count, which reads the stub data)."""
    from projects.study_demo.study import StudyTestSet
    monkeypatch.setattr(
        tool, 'study_test_set', lambda root: StudyTestSet(
            61, 30, unit='nodules', image_unit='scans', minimum=60))

    def train_and_test(cfg, train=True):
        key = osp.basename(osp.dirname(cfg.work_dir))
        seen[key] = cfg
        epochs = cfg.train_cfg.max_epochs
        os.makedirs(cfg.work_dir, exist_ok=True)
        with open(osp.join(cfg.work_dir, f'epoch_{epochs}.pth'), 'w') as f:
            f.write('stub')
        return {'luna16/cpm': 0.1 * len(seen), 'luna16/sens@1': 0.5}

    def find_hard_regions(cfg, checkpoint):
        seen['mined_from'] = checkpoint
        return []

    monkeypatch.setattr(study_runner, 'train_and_test', train_and_test)
    # the tool imports them when a row runs (after parsing its arguments)
    monkeypatch.setattr(study, 'train_and_test', train_and_test)
    monkeypatch.setattr(hard_regions, 'find_hard_regions', find_hard_regions)


def test_rows_schedules_and_starting_points(tmp_path, monkeypatch, tool,
                                            capsys):
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'luna16.json').write_text('{}')
    seen = {}
    _stub_training(monkeypatch, tool, seen)
    work = tmp_path / 'study'
    args = ['--data-root', str(data), '--work-dir', str(work),
            '--stage-epochs', '3', '--epochs', '2', '--abs-epochs', '1']
    results = tool.main(args + ['--rows'] + list(tool.DEMO_ROWS))
    assert set(seen) == set(tool.DEMO_ROWS) | {'mined_from'}

    def ckpt(key, epochs):
        return str(work / key / 'seed_0' / f'epoch_{epochs}.pth')

    stage, rpn, fprn = seen['rpn-stage'], seen['rpn'], seen['fprn']
    da, magnify, abs_, more = (seen['da'], seen['magnify'], seen['abs'],
                               seen['magnify-more'])
    # models: RPN alone, then FPRN without / with DA, with Magnify
    assert stage.model.fprn_head is None and rpn.model.fprn_head is None
    head = fprn.model.fprn_head
    assert not head.use_diameter_alignment and not head.use_magnify
    assert da.model.fprn_head.use_diameter_alignment
    assert not da.model.fprn_head.use_magnify
    assert magnify.model.fprn_head.use_magnify
    assert magnify.model.fprn_head == abs_.model.fprn_head
    # schedules: the stage, the rows, the ABS round and its control
    assert stage.train_cfg.max_epochs == 3 and stage.load_from is None
    for cfg in (rpn, fprn, da, magnify, seen['augment']):
        assert cfg.train_cfg.max_epochs == 2
        assert cfg.load_from == ckpt('rpn-stage', 3)
        assert cfg.param_scheduler == rpn.param_scheduler
        assert cfg.train_cfg.val_begin == 3  # tested once, at the end
    assert rpn.get('load_from_allowed_missing') == ['fprn_head.']
    for cfg in (abs_, more):
        assert cfg.train_cfg.max_epochs == 1
        assert cfg.load_from == ckpt('magnify', 2)
        assert cfg.optim_wrapper.optimizer.lr == pytest.approx(
            magnify.optim_wrapper.optimizer.lr / 10)
        loss = cfg.model.rpn_head.loss_cls
        assert loss.t_start == loss.t_end == 10.0
    assert abs_.param_scheduler == more.param_scheduler
    # ABS: mined from the 3D-AG checkpoint, crops on the hard regions; its
    # control differs only by the crops
    assert seen['mined_from'] == ckpt('magnify', 2)
    crop = abs_.train_dataloader.dataset.pipeline[1]
    assert crop['type'] == 'HardRegionRandomCrop3D'
    assert crop['hard_prob'] == 0.3
    regions = work / 'abs' / 'seed_0' / 'hard_regions.json'
    assert crop['hard_regions_file'] == str(regions)
    assert json.loads(regions.read_text())['scans'] == []
    assert more.train_dataloader.dataset.pipeline[1]['type'] == \
        'RandomCrop3D'
    assert [s['type'] for s in seen['augment'].train_dataloader.dataset
            .pipeline][1:3] == ['RandomCrop3D', 'Compose']
    assert results['RPN alone']['luna16/cpm'] == pytest.approx(0.2)
    assert (work / 'summary.md').is_file()
    assert 'paper, full-size models' in capsys.readouterr().out

    # a second call reuses every row/seed (nothing trained again)
    seen.clear()
    tool.main(args)
    assert seen == {}


def test_row_without_its_start_says_so(tmp_path, monkeypatch, tool):
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'luna16.json').write_text('{}')
    _stub_training(monkeypatch, tool, {})
    with pytest.raises(FileNotFoundError, match="row 'rpn-stage', seed 0"):
        tool.main(['--data-root', str(data), '--work-dir',
                   str(tmp_path / 's'), '--rows', 'fprn'])
    with pytest.raises(FileNotFoundError, match='--generate-data'):
        tool.main(['--data-root', str(tmp_path), '--work-dir',
                   str(tmp_path / 's')])
    with pytest.raises(SystemExit):
        tool.parse_args(['--epochs', '0'])


def test_step_effects_paired_by_seed(tool):
    from projects.study_demo.study import (RowResult, StudyResult, StudySettings,
                                     StudyRow)
    cpm = {  # seed -> CPM of rpn / fprn / da
        'rpn': {0: 0.30, 1: 0.10, 2: 0.50},
        'fprn': {0: 0.40, 1: 0.20, 2: 0.62},  # +0.10, +0.10, +0.12: shown
        'da': {0: 0.50, 1: 0.10, 2: 0.62},  # +0.10, -0.10, 0: not shown
    }
    rows = []
    for key, per_seed in cpm.items():
        res = RowResult(StudyRow(key, key, 'x.py'))
        res.metrics = {s: {'luna16/cpm': v} for s, v in per_seed.items()}
        rows.append(res)
    rows[2].metrics.pop(2)  # a seed missing: compared on the others
    result = StudyResult(rows, StudySettings('w', seeds=(0, 1, 2)),
                         tool.study_metric())
    steps = {(s['row'], s['base']): s for s in tool.step_effects(result)}
    assert set(steps) == {('fprn', 'rpn'), ('da', 'fprn')}
    fprn = steps[('fprn', 'rpn')]
    assert fprn['seeds'] == [0, 1, 2] and fprn['shown']
    assert fprn['mean'] == pytest.approx(0.32 / 3)
    assert fprn['std'] == pytest.approx(0.011547, abs=1e-5)
    da = steps[('da', 'fprn')]
    assert da['seeds'] == [0, 1] and not da['shown']  # 2 seeds: never
    table = tool.format_steps(tool.step_effects(result))
    assert '| + FPRN (no DA, no Magnify) vs RPN alone | 3 |' in table
    assert '+10.0, +10.0, +12.0 | +10.7 | 1.2 | shown |' in table
