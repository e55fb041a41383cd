# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/reproduce.py --dry-run``'s hours from training steps timed on
this machine: a config's step timed on synthetic inputs, each config timed
once, the hours scaled by the timed step, the rows labelled with their
source, ``--time-iters 0`` the shipped H100 step times."""
import math

import pytest

from mmlesion.apps.reproduce import PlanContext, build_rows
from mmlesion.apps.reproduce import timing
from mmlesion.apps.reproduce.estimate import (LUNA16_ITEMS_PER_EPOCH,
                                              PAPER_TRAINING_ITEMS,
                                              SECONDS_PER_TRAINING_ITEM,
                                              count_training_images,
                                              round_hours, shipped_step_time,
                                              step_times, training_gpu_hours)
from tests.helpers.dl_info_rows import lesion_row, write_dl_info_csv
from tests.helpers.tool_modules import load_tool

DEMO = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
#: the demo model on one 128 x 128 image per step
SMALL = ['train_dataloader.batch_size=1',
         'train_dataloader.dataset.pipeline.3.scale=(128,128)']
FPN = 'configs/elixirnet/faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py'
SECONDS = 0.5  # the stand-in step time, seconds per training item


def config_epochs(config: str) -> int:
    from mmengine.config import Config
    return int(Config.fromfile(config).train_cfg.max_epochs)


@pytest.fixture(scope='module')
def tool():
    return load_tool('reproduce.py')


@pytest.fixture
def fake_step(monkeypatch):
    """Replace the timed step by :data:`SECONDS`; returns the calls."""
    calls = []

    def fake(config, cfg_options=(), device='cpu', iters=5, warmup=2):
        calls.append((config, tuple(cfg_options), device, iters, warmup))
        return SECONDS

    monkeypatch.setattr(timing, 'time_training_step', fake)
    return calls


def test_a_tiny_config_is_timed_on_the_cpu():
    seconds = timing.time_training_step(DEMO, SMALL, 'cpu', iters=2,
                                        warmup=1)
    assert 0 < seconds < 60 and math.isfinite(seconds)
    with pytest.raises(ValueError, match='iters'):
        timing.time_training_step(DEMO, SMALL, 'cpu', iters=0)


def test_training_inputs_follow_the_configs():
    cfg = timing.load_training_config(DEMO)
    assert timing.training_input(cfg) == timing.TrainingInput(
        '2d', 2, (3, 256, 256))
    # --cfg-options reach the timed step (batch, Resize scale)
    small = timing.training_input(timing.load_training_config(DEMO, SMALL))
    assert (small.batch_size, small.shape) == (1, (3, 128, 128))
    crop = timing.training_input(timing.load_training_config(
        'configs/aggregated3d/aggregated3d_denseunet3d_anchor1_4xb2-50e_'
        'luna16-crop96.py'))
    assert (crop.kind, crop.shape, crop.unit) == ('3d', (96, ) * 3, 'crop')
    lens = timing.training_input(timing.load_training_config(
        'configs/lens/lens-afp-multi-fusion_densenet121-2.5d_fpn_1xb4-radam-'
        '8e_deeplesion-luna16-lits-nihln-9slice.py'))
    assert lens.shape[0] == 9 and lens.datasets == 4 and lens.batch_size == 4
    # synthetic batches carry what the heads need
    batch = timing.synthetic_batch(
        timing.TrainingInput('2d', 3, (9, 64, 64), classes=2, masks=True,
                             datasets=4), step=5)
    assert [tuple(i.shape) for i in batch['inputs']] == [(9, 64, 64)] * 3
    sample = batch['data_samples'][2]
    assert sample.metainfo['dataset_id'] == 1
    assert sample.gt_instances.masks.shape[1:] == (64, 64)
    batch = timing.synthetic_batch(timing.TrainingInput('3d', 2, (16, 32,
                                                                  32)), 0)
    assert tuple(batch['inputs'][0].shape) == (1, 16, 32, 32)
    assert len(batch['data_samples'][0].gt_instances) == 2
    batch = timing.synthetic_batch(timing.TrainingInput('patch', 3, (8, 16,
                                                                     16)), 0)
    assert tuple(batch['inputs'].shape) == (3, 1, 8, 16, 16)


def test_strip_pretrained_keeps_other_inits():
    cfg = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='x'),
                             pretrained='y'),
               head=[dict(init_cfg=dict(type='Normal', std=0.01))])
    timing.strip_pretrained(cfg)
    assert cfg['backbone'] == dict(init_cfg=None, pretrained=None)
    assert cfg['head'][0]['init_cfg']['type'] == 'Normal'


def test_hours_scale_with_the_timed_step_each_config_timed_once(
        tool, fake_step, tmp_path):
    ctx = PlanContext(work_dir=str(tmp_path), cfg_options=['a.b=1'])
    timer = timing.StepTimer('cpu', iters=2, warmup=1,
                             cfg_options=ctx.cfg_options, name='test CPU')
    rows, used = tool.timed_rows('elixirnet/table5', ctx, ['fpn', 'trpn'],
                                 [0, 1], timer)
    assert len(rows) == len(used) == 4
    items = PAPER_TRAINING_ITEMS['deeplesion']
    for row, times in zip(rows, used):
        config = row.stages[0].argv[2]
        assert [t.timed for t in times] == [True]
        assert row.stages[0].gpu_hours == round_hours(
            config_epochs(config) * items * SECONDS / 3600)
    # two configs, two seeds, each row built twice: timed once each, with
    # the run's --cfg-options
    assert [(c.rsplit('/', 1)[-1][:12], o, it, w)
            for c, o, _, it, w in fake_step] == [
                ('faster-rcnn_', ('a.b=1', ), 2, 1),
                ('elixirnet-tr', ('a.b=1', ), 2, 1)]
    # outside the block the shipped step times are back
    assert training_gpu_hours(FPN, 1, 3600) == pytest.approx(
        SECONDS_PER_TRAINING_ITEM['faster-rcnn'])


def test_luna16_folds_time_their_family_model(tool, fake_step, tmp_path):
    """A stage named by its step-time family (LUNA16 folds) times the
    family's model; a config an earlier stage writes keeps the shipped
    time, and its row says why."""
    ctx = PlanContext(work_dir=str(tmp_path), folds=[0, 1])
    timer = timing.StepTimer('cpu', iters=1, warmup=1, name='test CPU')
    (row, ), (times, ) = tool.timed_rows('aggregated3d/table2', ctx, ['a'],
                                         [0], timer)
    config = row.stages[0].argv[2]
    assert row.stages[0].gpu_hours == round_hours(
        2 * config_epochs(config) * LUNA16_ITEMS_PER_EPOCH * SECONDS / 3600)
    assert fake_step[0][0].endswith(timing.FAMILY_CONFIGS['rpn3d'])
    missing = timer('work/anchors/retinanet_vgg19_fpn-valanchors.py')
    assert not missing.timed and 'no config file' in missing.note
    assert missing.seconds == SECONDS_PER_TRAINING_ITEM['retinanet']


def test_dry_run_labels_the_source(tool, fake_step, tmp_path, capsys,
                                   monkeypatch):
    args = ['elixirnet/table5', '--dry-run', '--rows', 'fpn', 'trpn',
            '--work-dir', str(tmp_path)]
    assert tool.main(args + ['--time-iters', '2', '--device', 'cpu']) == 0
    out, err = capsys.readouterr()
    assert err.count('timing [') == 2 and 'ms per training item' in err
    assert out.count('    CPU-hours of this machine estimated from 2 timed '
                     'iterations on ') == 2
    hours = round_hours(config_epochs(FPN) *
                        PAPER_TRAINING_ITEMS['deeplesion'] * SECONDS / 3600)
    assert f'    - train: 1 GPU(s), ~{hours:g} CPU-h' in out
    assert 'GPU-h\n' not in out and 'CPU-hours of this machine (estimated' \
        in out.splitlines()[-1]
    # a config that cannot be timed keeps its shipped step time, labelled
    fake_step.clear()

    def failing(config, *args, **kwargs):
        if 'trpn' in config:
            raise RuntimeError('out of memory')
        return SECONDS

    monkeypatch.setattr(timing, 'time_training_step', failing)
    assert tool.main(args + ['--time-iters', '2', '--device', 'cpu']) == 0
    out, err = capsys.readouterr()
    assert 'not timed (RuntimeError: out of memory)' in err
    assert ('    GPU-hours from shipped H100 step times (elixirnet-trpn_r50_'
            'fpn_4xb2-1x_deeplesion-3slice.py: RuntimeError: out of memory)'
            ) in out
    assert 'GPU-hours from shipped H100 step times where a row says so' in \
        out.splitlines()[-1]


def test_gpu_timing_labels_gpu_hours(tool, fake_step, tmp_path):
    from mmlesion.apps.reproduce import TABLES, plan_lines
    ctx = PlanContext(work_dir=str(tmp_path))
    timer = timing.StepTimer('cuda', iters=5, warmup=2, name='Test GPU')
    rows, used = tool.timed_rows('elixirnet/table5', ctx, ['fpn'], [0],
                                 timer)
    lines = tool.label_plan(plan_lines(TABLES['elixirnet/table5'], rows),
                            rows, used, timer)
    assert lines[2] == ('    GPU-hours estimated from 5 timed iterations on '
                        'Test GPU')
    assert lines[3].endswith(' GPU-h')
    assert lines[-1].endswith('GPU-hours (estimated from 5 timed iterations '
                              'on Test GPU)')


def test_time_iters_0_is_the_shipped_estimate(tool, fake_step, tmp_path,
                                              capsys):
    args = ['elixirnet/table5', '--dry-run', '--work-dir', str(tmp_path)]
    assert tool.main(args) == 0
    shipped = capsys.readouterr().out
    assert tool.main(args + ['--time-iters', '0', '--device', 'cpu']) == 0
    assert capsys.readouterr().out == shipped
    assert fake_step == []
    assert 'H100 step times' in shipped.splitlines()[-1]
    rows = build_rows('elixirnet/table5', PlanContext(str(tmp_path)),
                      ['fpn'], [0])
    with step_times(shipped_step_time):
        again = build_rows('elixirnet/table5', PlanContext(str(tmp_path)),
                           ['fpn'], [0])
    assert rows[0].stages[0].gpu_hours == again[0].stages[0].gpu_hours
    with pytest.raises(SystemExit):
        tool.parse_args(['elixirnet/table5', '--time-iters', '2'])


def test_lens_fpr_network_is_counted_in_patches(tmp_path):
    """LENS row (e)'s FPR network trains on patches, three per annotated
    training lesion (TP : FP = 1 : 2), at its own per-patch step time: the
    published split's lesions without data, the lesions of ``DL_info.csv``
    (rows, not key slices) with it."""
    fpr = 'configs/lens/lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion.py'
    ctx = PlanContext(work_dir=str(tmp_path / 'w'))
    (row, ) = build_rows('lens/table1', ctx, ['e'], [0])
    (train, ) = [s for s in row.stages
                  if s.name == 'train' and fpr in s.argv]
    assert train.gpu_hours == round_hours(
        6 * 3 * 22919 * SECONDS_PER_TRAINING_ITEM['lens-fpr'] / 3600)
    assert train.gpu_hours != round_hours(
        6 * 22919 * SECONDS_PER_TRAINING_ITEM['lens'] / 3600)
    # a root with 2 training key slices holding 3 lesions, and a val row
    root = tmp_path / 'DeepLesion'
    write_dl_info_csv(str(root / 'DL_info.csv'), [
        lesion_row(1, 10, (100, 100), 20, 10, split=1),
        lesion_row(1, 10, (300, 300), 20, 10, split=1),
        lesion_row(2, 12, (200, 200), 20, 10, split=1),
        lesion_row(3, 14, (200, 200), 20, 10, split=2)])
    assert count_training_images(str(root)) == 2
    assert count_training_images(str(root), lesions=True) == 3
    ctx = PlanContext(work_dir=str(tmp_path / 'w'), data_root=str(root))
    (row, ) = build_rows('lens/table1', ctx, ['e'], [0])
    (train, ) = [s for s in row.stages
                  if s.name == 'train' and fpr in s.argv]
    assert train.gpu_hours == round_hours(
        6 * 3 * 3 * SECONDS_PER_TRAINING_ITEM['lens-fpr'] / 3600)
    # the 2D rows count key slices
    (row, ) = build_rows('lens/table1', ctx, ['a'], [0])
    assert row.stages[0].gpu_hours == round_hours(
        8 * 2 * SECONDS_PER_TRAINING_ITEM['lens'] / 3600)
