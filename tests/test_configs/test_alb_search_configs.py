# Copyright (c) mmlesion contributors. All rights reserved.
"""The ALB search configs build a search-mode detector and the two
optimizers with the paper's settings ("Auto-Lesion Block Search")."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.optim import OptimWrapperDict, build_optim_wrapper
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401  (registers)
from mmlesion.testing import get_config, repo_root

SEARCH_DIR = repo_root() / 'configs' / 'elixirnet' / 'alb_search'
CONFIGS = sorted(
    str(p.relative_to(SEARCH_DIR.parent))
    for p in SEARCH_DIR.parent.rglob('*.py') if 'alb-search' in p.name)
FULL = 'elixirnet-alb-search_r50_fpn_4xb4-15e_deeplesion-3slice.py'


def _load(name):
    return get_config(f'elixirnet/{name}')


def test_both_configs_exist():
    assert f'alb_search/{FULL}' in CONFIGS
    assert any('demo' in name for name in CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_search_config_builds(name):
    cfg = _load(name)
    assert cfg.default_scope == 'mmdet'
    assert 'mmlesion' in cfg.custom_imports['imports']
    assert cfg.train_cfg.type == 'ALBSearchLoop'
    assert tuple(cfg.train_cfg.frozen_modules) == ('backbone', 'neck',
                                                   'rpn_head')
    assert cfg.val_cfg is None and cfg.val_dataloader is None
    assert cfg.load_from and cfg.load_from.endswith('.pth')
    assert cfg.find_unused_parameters is True
    if 'demo' in name:
        assert cfg.model.backbone.init_cfg is None
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(copy.deepcopy(cfg.model))
        head = model.roi_head.bbox_head
        assert head.search and len(head.arch_parameters()) == 2
        assert type(model.rpn_head).__name__ == 'RPNHead'
        wrappers = build_optim_wrapper(model, cfg.optim_wrapper)
    assert isinstance(wrappers, OptimWrapperDict)
    sgd = wrappers['weight'].optimizer
    adam = wrappers['arch'].optimizer
    assert isinstance(sgd, torch.optim.SGD)
    assert (sgd.defaults['lr'], sgd.defaults['momentum'],
            sgd.defaults['weight_decay']) == (0.02, 0.9, 3e-4)
    assert isinstance(adam, torch.optim.Adam)
    # the demo raises alpha's lr x10 for its ~100 steps
    arch_lr = 3e-3 if 'demo' in name else 3e-4
    assert adam.defaults['lr'] == arch_lr
    assert adam.defaults['weight_decay'] == 1e-3
    assert adam.defaults['betas'][1] == 0.999
    sched = cfg.param_scheduler
    assert sched.arch == []
    assert [s['type'] for s in sched.weight] == ['CosineAnnealingLR']
    assert sched.weight[0]['eta_min'] == 0.


def test_paper_settings_of_full_search():
    cfg = _load(f'alb_search/{FULL}')
    assert cfg.train_cfg.max_epochs == 15
    assert cfg.train_cfg.split_ratio == 0.5
    assert cfg.train_dataloader.batch_size * 4 == 16  # 4 GPUs
    head = cfg.model.roi_head.bbox_head
    assert head.conv_out_channels == 4 * 16  # B = 4 branches, D = 16
    assert head.num_branches == 4 and head.num_reduction_cells == 2
    assert cfg.load_from.startswith(
        'work_dirs/faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice/')
    assert (repo_root() / 'configs' / 'elixirnet' /
            'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py').is_file()
