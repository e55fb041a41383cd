# Copyright (c) mmlesion contributors. All rights reserved.
"""The config smoke runner (projects/study_demo/config_smoke.py) and its tool
(projects/study_demo/tools/smoke_configs.py), on the CPU with small inputs."""
import importlib.util
import json

import numpy as np
import pytest

from projects.study_demo.config_smoke import (batch_2d, batch_3d, batch_fpr,
                                        full_size_configs, smoke_config)
from mmlesion.apps.reproduce.paper_tables import PAPER_TABLES
from mmlesion.testing import repo_root

CONFIGS = repo_root() / 'configs'
IMPROVED_TINY = ('retinanet_lesion/demo/'
                 'improved-retinanet_r18-tiny_densefpn-ag_1x_deeplesion-demo'
                 '.py')
LENS_TINY = ('lens/demo/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py')
AGG3D_TINY = 'aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-demo.py'
FPR_FULL = 'lens/lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion.py'
SEARCH = ('elixirnet/alb_search/'
          'elixirnet-alb-search_r50_fpn_4xb4-15e_deeplesion-3slice.py')


def _tool():
    spec = importlib.util.spec_from_file_location(
        'smoke_configs',
        repo_root() / 'projects' / 'study_demo' / 'tools' / 'smoke_configs.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_full_size_configs_are_the_real_data_ones():
    found = [p[len(str(CONFIGS)) + 1:] for p in full_size_configs(
        str(CONFIGS))]
    assert FPR_FULL in found and SEARCH in found
    assert not [p for p in found if p.startswith('_base_')]
    assert not [p for p in found if 'tiny' in p or 'demo' in p]
    # every method is covered
    for folder in PAPER_TABLES.parts():
        assert any(p.startswith(folder + '/') for p in found), folder


def test_batches_have_what_the_heads_need():
    data = batch_2d(3, 2, 64, 9, classes=8, with_masks=True, dataset_id=0)
    assert [tuple(x.shape) for x in data['inputs']] == [(9, 64, 64)] * 2
    for s in data['data_samples']:
        gt, ign = s.gt_instances, s.ignored_instances
        assert s.metainfo['dataset_id'] == 0 and len(ign) == 1
        assert len(gt.masks) == len(gt) >= 1
        assert int(gt.labels.max()) < 8
        for box, mask in zip(gt.bboxes.tolist(), gt.masks.masks):
            ys, xs = np.nonzero(mask)
            assert box[0] <= xs.min() and xs.max() < box[2]
            assert box[1] <= ys.min() and ys.max() < box[3]
    plain = batch_2d(3, 1, 64, 3)['data_samples'][0]
    assert 'dataset_id' not in plain.metainfo
    assert 'masks' not in plain.gt_instances
    vol = batch_3d(1, 2, 32)
    assert tuple(vol['inputs'][0].shape) == (1, 32, 32, 32)
    boxes = vol['data_samples'][0].gt_instances.bboxes
    assert boxes.shape == (2, 6) and float(boxes.max()) <= 32
    fpr = batch_fpr(0, 6, (8, 32, 32))
    assert tuple(fpr['inputs'].shape) == (6, 1, 8, 32, 32)
    assert [s['label'] for s in fpr['data_samples']] == [1, 0, 0, 1, 0, 0]


@pytest.mark.parametrize('config,kwargs', [
    (IMPROVED_TINY, dict(size=64)),
    (LENS_TINY, dict(size=64)),
    (AGG3D_TINY, dict(size_3d=32)),
])  # the full-size FPR config: test_tool_table_json_and_exit_status
def test_each_family_trains_and_predicts(config, kwargs):
    row = smoke_config(str(CONFIGS / config), iters=2, batch_size=2,
                       **kwargs)
    assert row['status'] == 'ok', row['reason']
    assert row['finite'] and np.isfinite(row['first_loss'])
    assert row['s_per_iter'] > 0 and row['predictions'] >= 0
    assert row['peak_mem_mb'] is None  # measured on CUDA only


def test_skipped_and_failed_runs_say_why(tmp_path):
    amp = smoke_config(str(CONFIGS / FPR_FULL), iters=2, amp=True,
                       device='cpu')
    assert amp['status'] == 'skipped' and 'CUDA' in amp['reason']
    search = smoke_config(str(CONFIGS / SEARCH), iters=2)
    assert search['status'] == 'skipped' and 'search' in search['reason']
    broken = tmp_path / 'broken.py'
    broken.write_text(
        f"_base_ = ['{CONFIGS / FPR_FULL}']\n"
        "model = dict(backbone=dict(type='NoSuchBackbone'))\n")
    row = smoke_config(str(broken), iters=2, patch_size=(8, 32, 32))
    assert row['status'] == 'failed' and 'NoSuchBackbone' in row['reason']
    # the innermost frames say which code raised it
    assert row['where'] and all(' in ' in w for w in row['where'])
    assert any(w.startswith('mmengine/') for w in row['where'])
    with pytest.raises(ValueError, match='iters'):
        smoke_config(str(CONFIGS / FPR_FULL), iters=1)


def test_tool_table_json_and_exit_status(tmp_path, capsys):
    tool = _tool()
    out = tmp_path / 'smoke.json'
    argv = [str(CONFIGS / FPR_FULL), '--device', 'cpu', '--iters', '2',
            '--batch-size', '3', '--patch-size', '8', '32', '32', '--json',
            str(out)]
    assert tool.main(argv) == 0
    text = capsys.readouterr().out
    assert 'loss first' in text and 'skipped' in text  # AMP on a CPU
    rows = json.loads(out.read_text())['rows']
    assert [r['precision'] for r in rows] == ['fp32', 'amp']
    assert rows[0]['status'] == 'ok' and rows[0]['batch_size'] == 3
    with pytest.raises(SystemExit):  # no silent overwrite
        tool.main(argv)
    assert 'exists' in capsys.readouterr().err
    broken = tmp_path / 'broken.py'
    broken.write_text(
        f"_base_ = ['{CONFIGS / FPR_FULL}']\n"
        "model = dict(backbone=dict(type='NoSuchBackbone'))\n")
    assert tool.main([str(broken), '--device', 'cpu', '--iters', '2',
                      '--precision', 'fp32']) == 1
    assert '1 failed' in capsys.readouterr().out


def test_amp_config_problems_names_the_split_path():
    from mmengine.config import Config

    from projects.study_demo.config_smoke import amp_config_problems
    c4 = repo_root() / 'configs' / 'elixirnet' / \
        'faster-rcnn_r50_c4_4xb2-1x_deeplesion-3slice.py'
    cfg = Config.fromfile(str(c4))
    assert amp_config_problems(cfg) == []
    cfg.model.train_cfg.rpn_proposal.nms.pop('split_thr')  # mmdet's default
    problems = amp_config_problems(cfg)
    assert len(problems) == 1 and 'rpn_proposal' in problems[0]
    assert 'nms_pre=12000' in problems[0]


def test_batch_3d_takes_a_zyx_crop():
    batch = batch_3d(0, 2, (16, 32, 24))
    assert batch['inputs'][0].shape == (1, 16, 32, 24)
    for sample in batch['data_samples']:
        boxes = sample.gt_instances.bboxes  # (x1, y1, z1, x2, y2, z2)
        assert (boxes[:, 3] <= 24).all() and (boxes[:, 4] <= 32).all()
        assert (boxes[:, 5] <= 16).all()


@pytest.mark.parametrize('path, short', [
    # a clone named mmlesion with the README's .venv inside
    ('/home/u/mmlesion/.venv/lib/python3.11/site-packages/mmdet/models/a.py',
     'mmdet/models/a.py'),
    ('/home/u/mmlesion/mmlesion/models/b.py', 'mmlesion/models/b.py'),
    ('/opt/env/site-packages/mmengine/registry/build_functions.py',
     'mmengine/registry/build_functions.py'),
    ('/home/u/mmlesion/.venv/lib/site-packages/torch/nn/modules/c.py',
     'torch/nn/modules/c.py'),
    ('/home/u/other/tool.py', '/home/u/other/tool.py'),
])
def test_short_source_path_takes_the_innermost_package(path, short):
    from projects.study_demo.config_smoke import short_source_path
    assert short_source_path(path) == short
