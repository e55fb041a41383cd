# Copyright (c) mmlesion contributors. All rights reserved.
"""The shared study runner, with a fake row runner (no training).

The real train-and-test path is exercised by
``tests/test_tools/test_analysis_tools/test_eval_elixirnet_demo.py``.
"""
import json
import os

import pytest

from projects.study_demo.study import (RESULT_FILE, StudyRow, StudySettings,
                                 deeplesion_froc, luna16_cpm, markdown_table,
                                 row_seed_dir, run_study, write_study_report)
from mmlesion.utils import atomic_write_json

CONFIG = 'study_row_cfg.py'
#: the fields the shared run settings touch (a real config is far slower
#: to load; the real path is in test_eval_elixirnet_demo.py)
TINY_CONFIG = '''
model = dict(type='Fake')
_loader = dict(dataset=dict(data_root='data/'))
train_dataloader = _loader
val_dataloader = _loader
test_dataloader = _loader
train_cfg = dict(max_epochs=12, val_interval=1)
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[8])]
default_hooks = dict(checkpoint=dict(interval=1))
test_evaluator = dict(type='FROCMetric')
'''


@pytest.fixture(autouse=True)
def tiny_config(tmp_path_factory, monkeypatch):
    path = tmp_path_factory.mktemp('cfg') / CONFIG
    path.write_text(TINY_CONFIG)
    monkeypatch.setitem(globals(), 'CONFIG', str(path))  # an existing file
METRIC = deeplesion_froc(('0.5', '1', '2', '4', '8', '16'))
BASE = {'a': 0.5, 'b': 0.7, 'c': 0.1}


class FakeRun:
    """Metrics from the row and seed; records every call."""

    def __init__(self, fail=()):
        self.calls = []
        self.fail = fail

    def __call__(self, cfg, ctx):
        self.calls.append((ctx.row.key, ctx.seed, cfg.randomness.seed,
                           cfg.work_dir, ctx.train))
        if ctx.row.key in self.fail:
            raise RuntimeError(f'{ctx.row.key} exploded')
        v = BASE[ctx.row.key] + 0.01 * ctx.seed
        out = {f'froc/sens@{r}': min(v * (1 + 0.1 * i), 1.0)
               for i, r in enumerate(METRIC.fp_rates)}
        out.update({'froc/mean@0.5-4': v, 'froc/bbox_mAP': v / 2,
                    'note': 'not a number'})
        return out


def _rows():
    return [StudyRow(k, f'row {k}', CONFIG) for k in ('a', 'b', 'c')]


def test_rows_seeds_mean_std_and_report(tmp_path):
    fake = FakeRun()
    settings = StudySettings(str(tmp_path), seeds=(0, 2), max_epochs=3)
    result = run_study(_rows(), settings, METRIC, selected=['a', 'b'],
                       run_row=fake, log=lambda s: None)
    assert [(k, s) for k, s, *_ in fake.calls] == [('a', 0), ('a', 2),
                                                   ('b', 0), ('b', 2)]
    # every row/seed ran with its own seed and folder, training on
    for key, seed, cfg_seed, work_dir, train in fake.calls:
        assert cfg_seed == seed and train
        assert work_dir == row_seed_dir(settings, _rows()[0], seed).replace(
            '/a/', f'/{key}/')
    a = result.rows[0]
    assert a.mean()['froc/mean@0.5-4'] == pytest.approx(0.51)
    assert a.std()['froc/mean@0.5-4'] == pytest.approx(0.0141421, rel=1e-4)
    assert 'note' not in a.mean()  # only numbers are kept
    assert not result.rows[2].done
    assert list(result.by_label()) == ['row a', 'row b']
    stored = json.loads(
        (tmp_path / 'a' / 'seed_2' / RESULT_FILE).read_text())
    assert stored['metrics']['froc/mean@0.5-4'] == pytest.approx(0.52)
    assert stored['fingerprint']['max_epochs'] == 3

    written = write_study_report(result, name='summary')
    assert sorted(os.listdir(tmp_path)) == [
        'a', 'b', 'summary.json', 'summary.md', 'summary_froc.png'
    ]
    md = (tmp_path / 'summary.md').read_text()
    assert '| row a | 2/2 | 51.00 ± 1.41 |' in md  # sens@0.5 in %
    assert '| row c | 0/2 | not run |' in md
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['rows']['row b']['froc/bbox_mAP'] == pytest.approx(
        0.355)
    assert summary['not_run'] == {'row c': {'0': 'not run', '2': 'not run'}}
    assert os.path.getsize(written[-1]) > 0


def test_resume_reuses_results_and_runs_only_what_is_missing(tmp_path):
    run_study(_rows(), StudySettings(str(tmp_path), seeds=(0, )), METRIC,
              selected=['a'], run_row=FakeRun(), log=lambda s: None)
    again = FakeRun()
    logs = []
    result = run_study(_rows(), StudySettings(str(tmp_path), seeds=(0, 1)),
                       METRIC, selected=['a', 'c'], run_row=again,
                       log=logs.append)
    assert [(k, s) for k, s, *_ in again.calls] == [('a', 1), ('c', 0),
                                                   ('c', 1)]
    assert result.rows[0].status == {0: 'reused', 1: 'run'}
    assert any('result exists, reused' in line for line in logs)
    # an unselected row with a stored result is reported from it
    result = run_study(_rows(), StudySettings(str(tmp_path), seeds=(0, 1)),
                       METRIC, selected=['b'], run_row=FakeRun(),
                       log=lambda s: None)
    assert result.rows[0].status == {0: 'reused', 1: 'reused'}


def test_stored_result_with_other_settings(tmp_path):
    run_study(_rows(), StudySettings(str(tmp_path)), METRIC, selected=['a'],
              run_row=FakeRun(), log=lambda s: None)
    other = StudySettings(str(tmp_path), max_epochs=1)
    with pytest.raises(ValueError, match=r'seed_0.*max_epochs: None -> 1'):
        run_study(_rows(), other, METRIC, selected=['a'], run_row=FakeRun(),
                  log=lambda s: None)
    # not selected: reported as not run, nothing raised
    result = run_study(_rows(), other, METRIC, selected=['b'],
                       run_row=FakeRun(), log=lambda s: None)
    assert 'other settings' in result.rows[0].status[0]
    fake = FakeRun()
    other.overwrite = True
    run_study(_rows(), other, METRIC, selected=['a'], run_row=fake,
              log=lambda s: None)
    assert len(fake.calls) == 1
    stored = json.loads((tmp_path / 'a' / 'seed_0' / RESULT_FILE).read_text())
    assert stored['fingerprint']['max_epochs'] == 1


def test_failures_stop_or_are_reported(tmp_path):
    with pytest.raises(RuntimeError, match='b exploded'):
        run_study(_rows(), StudySettings(str(tmp_path)), METRIC,
                  run_row=FakeRun(fail=('b', )), log=lambda s: None)
    assert not (tmp_path / 'b' / 'seed_0' / RESULT_FILE).exists()
    result = run_study(_rows(), StudySettings(str(tmp_path), keep_going=True),
                       METRIC, run_row=FakeRun(fail=('b', )),
                       log=lambda s: None)
    assert [r.done for r in result.rows] == [True, False, True]
    md = markdown_table(result)
    assert 'not run: failed (RuntimeError: b exploded)' in md


def test_pre_step_custom_run_and_pluggable_metric(tmp_path):
    seen = {}

    def optimise_anchors(cfg, ctx):
        cfg.model.custom_flag = f'anchors for seed {ctx.seed}'

    def own_pipeline(cfg, ctx):
        seen['flag'] = cfg.model.custom_flag
        seen['evaluator'] = cfg.test_evaluator
        seen['override'] = cfg.train_cfg.max_epochs
        return {'luna16/cpm': 0.5, **{
            f'luna16/sens@{r}': 0.5 for r in luna16_cpm().fp_rates}}

    row = StudyRow('x', 'X', CONFIG, overrides={'train_cfg.max_epochs': 5},
                   prepare=optimise_anchors, run=own_pipeline)
    result = run_study([row], StudySettings(str(tmp_path), seeds=(4, )),
                       luna16_cpm(), log=lambda s: None)
    assert seen == dict(flag='anchors for seed 4',
                        evaluator=dict(type='LUNA16Metric'), override=5)
    # --cfg-options win over the metric's evaluator too (not dropped)
    run_study([row], StudySettings(
        str(tmp_path / 'cut'), seeds=(4, ),
        cfg_options={'test_evaluator.rpn_score_cut': 0.269}),
        luna16_cpm(), log=lambda s: None)
    assert seen['evaluator'] == dict(type='LUNA16Metric', rpn_score_cut=0.269)
    md = markdown_table(result)
    assert 'CPM' in md and 'FPs per scan' in md and '| X | 1/1 |' in md


def test_skip_train_needs_the_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match='epoch_12.pth'):
        run_study(_rows()[:1], StudySettings(str(tmp_path), skip_train=True),
                  METRIC, run_row=FakeRun(), log=lambda s: None)
    ckpt = tmp_path / 'a' / 'seed_0' / 'epoch_12.pth'
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b'')
    fake = FakeRun()
    run_study(_rows()[:1], StudySettings(str(tmp_path), skip_train=True),
              METRIC, run_row=fake, log=lambda s: None)
    assert fake.calls[0][-1] is False  # tested, not trained


def test_row_testing_an_earlier_rows_weights(tmp_path):
    """``tests_from``: no training, the earlier row's last checkpoint of the
    same seed is tested (a paired test-time-only step)."""
    calls = []

    def fake(cfg, ctx):
        calls.append((ctx.row.key, ctx.train, cfg.get('load_from')))
        if ctx.train:  # "training" leaves the last checkpoint
            os.makedirs(ctx.row_dir, exist_ok=True)
            open(os.path.join(ctx.row_dir, 'epoch_12.pth'), 'wb').close()
        return FakeRun()(cfg, ctx) if ctx.row.key in BASE else {}

    rows = [StudyRow('a', 'A', CONFIG),
            StudyRow('a-calib', 'A calibrated', CONFIG, tests_from='a')]
    settings = StudySettings(str(tmp_path), seeds=(0, 1))
    with pytest.raises(FileNotFoundError, match="row 'a'"):
        run_study(rows, settings, METRIC, selected=['a-calib'], run_row=fake,
                  log=lambda s: None)
    result = run_study(rows, settings, METRIC, run_row=fake,
                       log=lambda s: None)
    assert [c[:2] for c in calls[-4:]] == [('a', True), ('a', True),
                                           ('a-calib', False),
                                           ('a-calib', False)]
    for seed, call in zip((0, 1), calls[-2:]):
        assert call[2] == os.path.join(str(tmp_path), 'a', f'seed_{seed}',
                                       'epoch_12.pth')
    stored = json.loads((tmp_path / 'a-calib' / 'seed_0' /
                         RESULT_FILE).read_text())
    assert stored['fingerprint']['tests_from'] == 'a'
    assert 'tests_from' not in json.loads(
        (tmp_path / 'a' / 'seed_0' / RESULT_FILE).read_text())['fingerprint']
    assert result.rows[1].status == {0: 'run', 1: 'run'}
    with pytest.raises(ValueError, match='earlier row'):
        run_study(rows[::-1], settings, METRIC, run_row=fake)
    with pytest.raises(ValueError, match='itself'):
        StudyRow('a', 'A', CONFIG, tests_from='a')


def test_bad_rows_and_settings():
    with pytest.raises(ValueError, match='folder name'):
        StudyRow('a/b', 'A', CONFIG)
    with pytest.raises(ValueError, match='duplicate'):
        run_study(_rows() + _rows()[:1], StudySettings('w'), METRIC)
    with pytest.raises(ValueError, match="unknown \\['z'\\]"):
        run_study(_rows(), StudySettings('w'), METRIC, selected=['z'])
    with pytest.raises(ValueError, match='distinct'):
        StudySettings('w', seeds=(1, 1))


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / 'out' / 'r.json'
    atomic_write_json(str(path), {'x': 1})
    with pytest.raises(TypeError):
        atomic_write_json(str(path), {'x': object()})
    assert json.loads(path.read_text()) == {'x': 1}  # the old file stays
    assert os.listdir(tmp_path / 'out') == ['r.json']


def test_atomic_write_removes_its_temporary_file(tmp_path, monkeypatch):
    from mmlesion.utils.writing import atomic as atomic_io

    def broken_replace(src, dst):
        raise OSError('disk full')

    monkeypatch.setattr(atomic_io.os, 'replace', broken_replace)
    with pytest.raises(OSError, match='disk full'):
        atomic_io.atomic_write_text(str(tmp_path / 'r.md'), 'text')
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('max_epochs, milestones', [
    (12, [9]),  # the config's own length
    (6, [5]),  # shorter: the step past the end moves to the last epoch
    (3, [2]),
    (24, [18]),  # longer: the schedule is stretched
    (36, [27]),
])
def test_max_epochs_moves_the_lr_steps(max_epochs, milestones):
    from mmengine.config import Config

    from projects.study_demo.study.row_run import apply_run_settings
    cfg = Config(dict(
        train_cfg=dict(max_epochs=12, val_interval=1),
        param_scheduler=[
            dict(type='LinearLR', by_epoch=False, begin=0, end=50),
            dict(type='MultiStepLR', by_epoch=True, begin=0, end=12,
                 milestones=[9])
        ],
        default_hooks=dict(checkpoint=dict(interval=1))))
    apply_run_settings(cfg, 'w', max_epochs=max_epochs)
    warmup, steps = cfg.param_scheduler
    assert warmup.end == 50  # iteration-based: untouched
    assert steps.end == max_epochs and steps.milestones == milestones
    assert cfg.train_cfg.max_epochs == max_epochs


def test_text_table_columns_never_run_together():
    """Long headers and labels widen their column: every header and value
    stays separated by at least one space, and columns stay aligned."""
    from projects.study_demo.study.report import format_text_table
    columns = [('16 FP', 'a'), ('mean0.5-4', 'b'), ('typecls@3', 'c')]
    long_label = 'multi-type fine-tuning on typed train, with RTM'
    table = format_text_table(
        {'FPN': dict(a=0.5, b=0.25, c=float('nan')),
         long_label: dict(a=1.0, b=0.125)},
        columns, reference={'paper': [81.5, None, 35.2]})
    lines = table.splitlines()
    header = lines[0]
    assert '16 FP  mean0.5-4  typecls@3' in header
    assert len({len(line) for line in lines}) == 1  # aligned
    row = next(line for line in lines if line.startswith(long_label))
    assert row[len(long_label)] == ' ' and row.split()[-3:] == [
        '100.00', '12.50', '-']
    assert lines[-1].split()[-3:] == ['81.50', '-', '35.20']


def test_code_digest_follows_every_source_byte(tmp_path):
    from mmlesion.utils.code_digest import tree_digest
    (tmp_path / 'pkg' / 'sub').mkdir(parents=True)
    (tmp_path / 'pkg' / 'a.py').write_text('x = 1\n')
    (tmp_path / 'pkg' / 'sub' / 'b.py').write_text('y = 2\n')
    (tmp_path / 'pkg' / 'notes.md').write_text('not code')
    first = tree_digest(str(tmp_path / 'pkg'))
    assert tree_digest(str(tmp_path / 'pkg')) == first
    (tmp_path / 'pkg' / 'notes.md').write_text('still not code')
    assert tree_digest(str(tmp_path / 'pkg')) == first
    (tmp_path / 'pkg' / 'sub' / 'b.py').write_text('y = 3\n')
    assert tree_digest(str(tmp_path / 'pkg')) != first
    (tmp_path / 'pkg' / 'sub' / 'b.py').write_text('y = 2\n')
    assert tree_digest(str(tmp_path / 'pkg')) == first
    (tmp_path / 'pkg' / 'sub' / 'b.py').rename(tmp_path / 'pkg' / 'b.py')
    assert tree_digest(str(tmp_path / 'pkg')) != first  # a move counts


def test_result_of_other_code_is_not_reused(tmp_path, monkeypatch):
    """A stored row result records the code that made it; after a change
    of the sources it is refused (run again with --overwrite), never
    silently reused."""
    from mmlesion import __version__
    from projects.study_demo.study import runner
    settings = StudySettings(str(tmp_path), seeds=(0, ))
    run_study(_rows()[:1], settings, METRIC, run_row=FakeRun(),
              log=lambda s: None)
    stored = json.loads((tmp_path / 'a' / 'seed_0' / RESULT_FILE).read_text())
    code = stored['fingerprint']['code']
    assert code['mmlesion'] == __version__
    assert len(code['sources']) == len(code['configs']) == 64
    fake = FakeRun()
    run_study(_rows()[:1], settings, METRIC, run_row=fake, log=lambda s: None)
    assert fake.calls == []  # same code: reused
    monkeypatch.setattr(runner, 'code_fingerprint',
                        lambda: dict(code, sources='0' * 64))
    with pytest.raises(ValueError, match='code'):
        run_study(_rows()[:1], settings, METRIC, run_row=FakeRun(),
                  log=lambda s: None)
    fake = FakeRun()
    run_study(_rows()[:1], StudySettings(str(tmp_path), seeds=(0, ),
                                         overwrite=True),
              METRIC, run_row=fake, log=lambda s: None)
    assert [c[0] for c in fake.calls] == ['a']
