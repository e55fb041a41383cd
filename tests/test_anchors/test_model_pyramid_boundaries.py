# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :mod:`mmlesion.anchors.model_pyramid`.

Pinned: which head is tuned (``bbox_head`` first, empty or missing heads
and generators skipped, no model at all) and the message without one, the
level names of powers of two and of other strides, and the full message
of a stride mismatch (``head_feature_strides`` replaced by a stand-in: the
real model build is covered by ``test_model_pyramid.py``)
(docs/mutation_testing.md).
"""
import pytest
from mmengine.config import Config

from mmlesion.anchors import model_pyramid as mp
from mmlesion.anchors.anchor_config import AnchorConfig
from mmlesion.anchors.model_pyramid import (ANCHOR_HEADS, anchor_head_key,
                                            check_anchor_pyramid, level_name,
                                            pyramid_name)

GEN = dict(type='AnchorGenerator', strides=[8])


@pytest.mark.parametrize('model,head', [
    (dict(bbox_head=dict(anchor_generator=GEN)), 'bbox_head'),
    (dict(rpn_head=dict(anchor_generator=GEN)), 'rpn_head'),
    (dict(bbox_head=dict(anchor_generator=GEN),
          rpn_head=dict(anchor_generator=GEN)), 'bbox_head'),
    (dict(bbox_head=dict(type='X'), rpn_head=dict(anchor_generator=GEN)),
     'rpn_head'),
    (dict(bbox_head=None, rpn_head=dict(anchor_generator=GEN)), 'rpn_head'),
    (dict(bbox_head=dict(anchor_generator={}),
          rpn_head=dict(anchor_generator=GEN)), 'rpn_head'),
])
def test_anchor_head_key(model, head):
    assert anchor_head_key(Config(dict(model=model))) == head


@pytest.mark.parametrize('cfg', [dict(), dict(model=None),
                                 dict(model=dict(bbox_head=dict()))])
def test_no_anchor_head(cfg):
    with pytest.raises(ValueError) as err:
        anchor_head_key(Config(cfg))
    assert str(err.value) == (
        'The config has no model.bbox_head.anchor_generator nor '
        'model.rpn_head.anchor_generator: nothing to optimise')
    assert ANCHOR_HEADS == ('bbox_head', 'rpn_head')


def test_level_names():
    assert level_name(1) == 'P0' and level_name(2) == 'P1'
    assert level_name(128) == 'P7' and level_name(6) == 'stride 6'
    assert pyramid_name([8, 16, 32, 64, 128]) == 'P3-P7'
    assert pyramid_name([4, 12]) == 'P2-stride 12'
    assert pyramid_name([16]) == 'P4-P4'


def test_mismatch_message(monkeypatch):
    cfg = Config(dict(model=dict(rpn_head=dict(anchor_generator=GEN))))
    anchors = AnchorConfig((8, 16), (32., 64.), (1., ), (1., ))
    sizes = []

    def measured(c, input_size):
        sizes.append(input_size)
        return [4, 8, 16]

    monkeypatch.setattr(mp, 'head_feature_strides', measured)
    with pytest.raises(ValueError) as err:
        check_anchor_pyramid(cfg, anchors, 'my.py', input_size=256)
    assert str(err.value) == (
        'my.py: model.rpn_head.anchor_generator.strides = [8, 16] (P3-P4, '
        '2 levels) but the model gives its rpn_head 3 levels with strides '
        '[4, 8, 16] (P2-P4); with these anchors the anchor centres would '
        'lie on the wrong grid (beyond the image for too large strides). '
        'Make anchor_generator.strides match the levels (neck start_level '
        '/ num_outs) first.')
    assert sizes == [256]
    with pytest.raises(ValueError, match=r'^the config: model\.rpn_head'):
        check_anchor_pyramid(cfg, anchors)
    assert sizes == [256, 512]
    monkeypatch.setattr(mp, 'head_feature_strides', lambda c, s: [8, 16])
    assert check_anchor_pyramid(cfg, anchors) == [8, 16]


def _register_fake_detector():
    import torch
    import torch.nn as nn
    from mmdet.registry import MODELS

    class WtFakeDetector(nn.Module):
        """Levels of strides 4 and 8; checks the input channels."""

        def __init__(self, backbone=None, bbox_head=None, rpn_head=None):
            super().__init__()
            self.in_channels = (backbone or {}).get('in_channels', 3)
            self.rpn_head = lambda feats: (feats, )

        def _check(self, x):
            assert x.shape[0] == 1 and x.shape[1] == self.in_channels
            n = x.shape[-1]
            return [torch.empty(1, 2, n // 4, n // 4),
                    torch.empty(1, 2, n // 8, n // 8)]

        def _forward(self, x):
            levels = self._check(x)
            return levels, [torch.empty(1, 4, 1, 1)] * 2

        def extract_feat(self, x):
            return [f[:, :, :f.shape[-1] // 2] for f in self._check(x)]

    MODELS.register_module(name='WtFakeDetector', module=WtFakeDetector,
                           force=True)


@pytest.mark.parametrize('head,in_channels', [('bbox_head', 9),
                                              ('rpn_head', None)])
def test_head_feature_strides_of_a_stand_in_model(head, in_channels):
    from mmengine.registry import DefaultScope
    _register_fake_detector()
    model = dict(type='WtFakeDetector', **{head: dict(anchor_generator=GEN)})
    if in_channels:
        model['backbone'] = dict(in_channels=in_channels)
    cfg = Config(dict(model=model))
    assert mp.head_feature_strides(cfg, input_size=64) == [4, 8]
    assert DefaultScope.get_current_instance().scope_name == 'mmdet'
    assert mp.head_feature_strides(cfg) == [4, 8]
    # the config is not changed by the build
    assert cfg.model.type == 'WtFakeDetector'
    cfg.custom_imports = dict(imports=['wt40c_no_such_module'],
                              allow_failed_imports=False)
    with pytest.raises(ImportError):
        mp.head_feature_strides(cfg)


def test_head_feature_strides_uses_the_config_scope(monkeypatch):
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope, init_default_scope
    _register_fake_detector()
    fake = MODELS.get('WtFakeDetector')
    monkeypatch.setattr(
        MODELS, 'build',
        lambda cfg: fake(**{k: v for k, v in cfg.items() if k != 'type'}))
    cfg = Config(dict(default_scope='mmengine', model=dict(
        type='WtFakeDetector', bbox_head=dict(anchor_generator=GEN))))
    try:
        assert mp.head_feature_strides(cfg, input_size=64) == [4, 8]
        assert DefaultScope.get_current_instance().scope_name == 'mmengine'
    finally:
        init_default_scope('mmdet')
