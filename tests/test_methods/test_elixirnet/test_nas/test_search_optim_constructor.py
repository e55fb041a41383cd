# Copyright (c) mmlesion contributors. All rights reserved.
"""ALBSearchOptimWrapperConstructor: weights and alpha in separate
optimizers, frozen parts in neither."""
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.optim import OptimWrapperDict, build_optim_wrapper
from mmengine.registry import init_default_scope

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.elixirnet.nas import split_arch_params
from tests.helpers.alb_search import tiny_detector_cfg

WEIGHT = dict(type='OptimWrapper',
              optimizer=dict(type='SGD',
                             lr=0.02,
                             momentum=0.9,
                             weight_decay=3e-4))
ARCH = dict(type='OptimWrapper',
            optimizer=dict(type='Adam',
                           lr=3e-4,
                           betas=(0.5, 0.999),
                           weight_decay=1e-3))


@pytest.fixture(scope='module')
def model():
    init_default_scope('mmdet')
    detector = MODELS.build(ConfigDict(tiny_detector_cfg()))
    for name in ('backbone', 'neck', 'rpn_head'):
        getattr(detector, name).requires_grad_(False)
    return detector


def _ids(wrapper):
    return {
        id(p)
        for group in wrapper.optimizer.param_groups
        for p in group['params']
    }


def test_split(model):
    wrappers = build_optim_wrapper(
        model,
        ConfigDict(constructor='ALBSearchOptimWrapperConstructor',
                   weight=WEIGHT,
                   arch=ARCH))
    assert isinstance(wrappers, OptimWrapperDict)
    assert set(wrappers.keys()) == {'weight', 'arch'}
    names = {id(p): n for n, p in model.named_parameters()}
    weight_names = {names[i] for i in _ids(wrappers['weight'])}
    arch_names = {names[i] for i in _ids(wrappers['arch'])}

    assert arch_names == {
        'roi_head.bbox_head.arch_alpha_normal',
        'roi_head.bbox_head.arch_alpha_reduce'
    }
    assert not any('arch_alpha' in n for n in weight_names)
    expected = {
        n
        for n, p in model.named_parameters()
        if n.startswith('roi_head.') and 'arch_alpha' not in n
    }
    assert weight_names == expected  # every trainable weight, no frozen one
    assert not any(
        n.split('.')[0] in ('backbone', 'neck', 'rpn_head')
        for n in weight_names | arch_names)

    sgd = wrappers['weight'].optimizer
    adam = wrappers['arch'].optimizer
    assert isinstance(sgd, torch.optim.SGD)
    assert isinstance(adam, torch.optim.Adam)
    assert sgd.defaults['lr'] == 0.02 and sgd.defaults['momentum'] == 0.9
    assert sgd.defaults['weight_decay'] == 3e-4
    assert adam.defaults['lr'] == 3e-4
    assert adam.defaults['weight_decay'] == 1e-3

    weights, arch = split_arch_params(model)
    assert set(arch) == arch_names and set(weights) == weight_names


def test_paramwise_cfg_per_part(model):
    weight = dict(
        WEIGHT,
        paramwise_cfg=dict(
            custom_keys={'roi_head.bbox_head.fc_cls': dict(lr_mult=0.1)}))
    wrappers = build_optim_wrapper(
        model,
        ConfigDict(constructor='ALBSearchOptimWrapperConstructor',
                   weight=weight,
                   arch=ARCH))
    names = {id(p): n for n, p in model.named_parameters()}
    lrs = {}
    for group in wrappers['weight'].optimizer.param_groups:
        for p in group['params']:
            lrs[names[id(p)]] = group['lr']
    assert lrs['roi_head.bbox_head.fc_cls.weight'] == pytest.approx(0.002)
    assert lrs['roi_head.bbox_head.fc_reg.weight'] == pytest.approx(0.02)
    assert not any('arch_alpha' in n for n in lrs)
    assert not any(n.startswith('backbone') for n in lrs)


def test_errors(model):
    with pytest.raises(ValueError, match='missing'):
        build_optim_wrapper(
            model,
            ConfigDict(constructor='ALBSearchOptimWrapperConstructor',
                       weight=WEIGHT))
    with pytest.raises(ValueError, match='paramwise_cfg inside'):
        build_optim_wrapper(
            model,
            ConfigDict(constructor='ALBSearchOptimWrapperConstructor',
                       weight=WEIGHT,
                       arch=ARCH,
                       paramwise_cfg=dict(norm_decay_mult=0.)))
    discrete = MODELS.build(
        ConfigDict(tiny_detector_cfg(dict(type='ALBBBoxHead'))))
    with pytest.raises(ValueError, match='search=True'):
        build_optim_wrapper(
            discrete,
            ConfigDict(constructor='ALBSearchOptimWrapperConstructor',
                       weight=WEIGHT,
                       arch=ARCH))
