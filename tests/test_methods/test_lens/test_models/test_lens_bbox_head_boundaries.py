# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :class:`LENSBBoxHead` (LENS, Yan et al., TMI 2020,
Sec. IV-C, Fig. 2): two shared FC layers, then one classification and one
box layer per dataset.

The number of experts (``num_datasets``, at least 1, 1 by default), the
valid expert indices (``0 <= index < num_datasets``), which expert a
forward pass uses and trains, heads without a classification or a box
layer, and each expert's initialisation (mmdet's normal std 0.01 and
0.001, zero bias, also when ``init_cfg`` says otherwise): the cases a
small change of the code would get wrong (docs/mutation_testing.md).
"""
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.lens.models.lens_bbox_head import (ExpertSwitch,
                                                         LENSBBoxHead)

#: a Constant init of every Linear layer: far from mmdet's normal init
CONSTANT_INIT = dict(type='Constant', val=0.5, bias=0.25, layer='Linear')


def _head(**kwargs) -> LENSBBoxHead:
    cfg = dict(type='LENSBBoxHead', in_channels=4, roi_feat_size=3,
               fc_out_channels=16, num_classes=1)
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _rois(n: int = 5) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(n, 4, 3, 3)


def _shared(head: LENSBBoxHead, x: torch.Tensor) -> torch.Tensor:
    """The two shared FC layers (with ReLU) of mmdet's head."""
    x = x.flatten(1)
    for fc in head.shared_fcs:
        x = F.relu(fc(x))
    return x


def _experts(head: LENSBBoxHead, name: str) -> list:
    switch = getattr(head, name)
    assert isinstance(switch, ExpertSwitch)
    return list(switch.experts)


# ---------------------------------------------------------------------- #
# the experts
# ---------------------------------------------------------------------- #
@pytest.mark.parametrize('num_datasets', [1, 2, 3])
def test_one_cls_and_one_reg_layer_per_dataset(num_datasets):
    """Sec. IV-C: ``d`` dataset-specific classification and box layers,
    each shaped as mmdet's (lesion vs background: 2 scores; 4 deltas per
    class), each with its own parameters."""
    head = _head(num_datasets=num_datasets, num_classes=2)
    assert head.num_datasets == num_datasets
    cls, reg = _experts(head, 'fc_cls'), _experts(head, 'fc_reg')
    assert len(cls) == len(reg) == num_datasets
    for layer in cls:
        assert type(layer) is nn.Linear
        assert (layer.in_features, layer.out_features) == (16, 3)
    for layer in reg:
        assert type(layer) is nn.Linear
        assert (layer.in_features, layer.out_features) == (16, 8)
    params = [id(p) for m in cls + reg for p in m.parameters()]
    assert len(set(params)) == 4 * num_datasets


def test_one_dataset_by_default():
    """``num_datasets`` defaults to 1 (a single-dataset head, mmdet's),
    expert 0 active."""
    head = _head()
    assert head.num_datasets == 1
    assert len(_experts(head, 'fc_cls')) == len(_experts(head, 'fc_reg')) == 1
    assert head.active_expert == 0
    head.set_expert(0)
    with pytest.raises(IndexError):
        head.set_expert(1)


@pytest.mark.parametrize('num_datasets', [0, -1])
def test_at_least_one_dataset(num_datasets):
    """No expert at all is refused."""
    msg = re.escape('LENSBBoxHead: num_datasets must be >= 1, got '
                    f'{num_datasets}')
    with pytest.raises(ValueError, match=f'^{msg}$'):
        _head(num_datasets=num_datasets)


def test_expert_switch_starts_on_expert_0():
    """A new switch runs its first layer."""
    layers = nn.ModuleList([nn.Linear(2, 1), nn.Linear(2, 1)])
    switch = ExpertSwitch(layers)
    assert switch.active == 0 and switch.experts is layers
    x = torch.randn(3, 2)
    torch.testing.assert_close(switch(x), layers[0](x))
    switch.active = 1
    torch.testing.assert_close(switch(x), layers[1](x))


# ---------------------------------------------------------------------- #
# set_expert / active_expert
# ---------------------------------------------------------------------- #
@pytest.mark.parametrize('index', [0, 1, 2])
def test_forward_uses_the_selected_expert(index):
    """After ``set_expert(i)`` the scores and deltas are expert ``i``'s
    layers on the shared features (Fig. 2)."""
    head = _head(num_datasets=3)
    head.init_weights()
    head.set_expert(index)
    assert head.active_expert == index
    assert head.fc_cls.active == head.fc_reg.active == index
    x = _rois()
    cls_score, bbox_pred = head(x)
    feats = _shared(head, x)
    torch.testing.assert_close(cls_score, head.fc_cls.experts[index](feats))
    torch.testing.assert_close(bbox_pred, head.fc_reg.experts[index](feats))
    for other in set(range(3)) - {index}:
        assert not torch.allclose(cls_score,
                                  head.fc_cls.experts[other](feats))


def test_a_batch_trains_the_shared_fcs_and_its_expert_only():
    """Sec. IV-C: a batch of dataset ``i`` gives gradients to the shared
    FCs and to expert ``i``, never to another dataset's expert."""
    head = _head(num_datasets=3)
    head.init_weights()
    head.set_expert(1)
    cls_score, bbox_pred = head(_rois())
    (cls_score.sum() + bbox_pred.sum()).backward()
    assert all(p.grad is not None for p in head.shared_fcs.parameters())
    for i in range(3):
        for layer in (head.fc_cls.experts[i], head.fc_reg.experts[i]):
            has = [p.grad is not None for p in layer.parameters()]
            assert has == [i == 1, i == 1]


@pytest.mark.parametrize('num_datasets', [1, 2, 4])
def test_expert_index_bounds(num_datasets):
    """Valid indices are ``0 <= index < num_datasets``; an invalid one is
    refused and leaves the active expert as it was."""
    head = _head(num_datasets=num_datasets)
    head.set_expert(num_datasets - 1)
    for bad in (-1, num_datasets, num_datasets + 1):
        msg = re.escape(f'LENSBBoxHead has {num_datasets} dataset experts, '
                        f'got expert index {bad}')
        with pytest.raises(IndexError, match=f'^{msg}$'):
            head.set_expert(bad)
        assert head.active_expert == num_datasets - 1
    head.set_expert(0)
    assert head.active_expert == 0


def test_expert_index_stored_as_int():
    """An index given as a float or a tensor (e.g. a dataset id read from
    the data) is stored as an int, so that the layer lists can be
    indexed by it."""
    head = _head(num_datasets=2)
    head.set_expert(1.0)
    assert type(head.fc_cls.active) is int and type(
        head.fc_reg.active) is int
    assert head.active_expert == 1
    x = _rois()
    cls_score, bbox_pred = head(x)
    feats = _shared(head, x)
    torch.testing.assert_close(cls_score, head.fc_cls.experts[1](feats))
    torch.testing.assert_close(bbox_pred, head.fc_reg.experts[1](feats))
    head.set_expert(torch.tensor(0))
    assert type(head.fc_cls.active) is int and head.active_expert == 0


@pytest.mark.parametrize('with_cls, with_reg', [(False, True),
                                                (True, False)])
def test_head_with_one_predictor(with_cls, with_reg):
    """A head without a classification (or a box) layer: the other one
    holds the experts and tells the active one; nothing is added for the
    missing layer."""
    head = _head(num_datasets=3, with_cls=with_cls, with_reg=with_reg)
    assert hasattr(head, 'fc_cls') == with_cls
    assert hasattr(head, 'fc_reg') == with_reg
    name = 'fc_cls' if with_cls else 'fc_reg'
    assert len(_experts(head, name)) == 3
    assert head.active_expert == 0
    head.set_expert(2)
    assert getattr(head, name).active == 2
    assert head.active_expert == 2
    with pytest.raises(IndexError):
        head.set_expert(3)
    assert head.active_expert == 2


# ---------------------------------------------------------------------- #
# init_weights
# ---------------------------------------------------------------------- #
def _assert_normal(layer: nn.Linear, std: float) -> None:
    w = layer.weight.detach()
    assert w.std().item() == pytest.approx(std, rel=0.2)
    assert abs(w.mean().item()) < 4 * std / w.numel()**0.5
    assert (layer.bias == 0).all()


@pytest.mark.parametrize('init_cfg', [None, CONSTANT_INIT])
def test_every_expert_initialised_as_mmdet_predictors(init_cfg):
    """mmdet's init of ``fc_cls`` (normal, std 0.01) and ``fc_reg``
    (normal, std 0.001), zero biases, for every expert, whatever
    ``init_cfg`` says; the shared FCs as ``init_cfg`` says (mmdet's
    Xavier, zero bias, by default)."""
    head = _head(num_datasets=3, fc_out_channels=256, init_cfg=init_cfg)
    head.init_weights()
    for layer in head.fc_cls.experts:
        _assert_normal(layer, 0.01)
    for layer in head.fc_reg.experts:
        _assert_normal(layer, 0.001)
    for fc in head.shared_fcs:
        if init_cfg is None:
            assert (fc.bias == 0).all()
        else:
            assert (fc.weight == 0.5).all() and (fc.bias == 0.25).all()


@pytest.mark.parametrize('with_cls, with_reg', [(False, True),
                                                (True, False)])
def test_init_of_a_head_with_one_predictor(with_cls, with_reg):
    """The missing layer is skipped, the other one still initialised."""
    head = _head(num_datasets=2, fc_out_channels=256, with_cls=with_cls,
                 with_reg=with_reg, init_cfg=CONSTANT_INIT)
    head.init_weights()
    name, std = ('fc_cls', 0.01) if with_cls else ('fc_reg', 0.001)
    for layer in _experts(head, name):
        _assert_normal(layer, std)
    for fc in head.shared_fcs:
        assert (fc.weight == 0.5).all()
