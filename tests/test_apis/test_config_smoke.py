# Copyright (c) mmlesion contributors. All rights reserved.
"""The config smoke runner (mmlesion/apis/config_smoke.py) and its tool
(tools/analysis_tools/smoke_configs.py), on the CPU with small inputs."""
import importlib.util
import json

import numpy as np
import pytest

from mmlesion.apis.config_smoke import (batch_2d, batch_3d, batch_fpr,
                                        full_size_configs, smoke_config)
from mmlesion.testing import repo_root

CONFIGS = repo_root() / 'configs'
IMPROVED_TINY = ('retinanet_lesion/'
                 'improved-retinanet_r18-tiny_densefpn-ag_1x_demo_deeplesion'
                 '.py')
LENS_TINY = ('lens/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_'
             'demo-2sets.py')
AGG3D_TINY = 'aggregated3d/aggregated3d_denseunet3d-tiny_demo_luna16vol.py'
FPR_FULL = 'lens/lens-fpr_resnet18-3d_radam-6e_deeplesion.py'
SEARCH = ('elixirnet/alb_search/'
          'elixirnet-alb-search_r50_fpn_15e_deeplesion_3slice.py')


def _tool():
    spec = importlib.util.spec_from_file_location(
        'smoke_configs',
        repo_root() / 'tools' / 'analysis_tools' / 'smoke_configs.py')
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
    for folder in ('aggregated3d', 'elixirnet', 'lens', 'retinanet_lesion'):
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
