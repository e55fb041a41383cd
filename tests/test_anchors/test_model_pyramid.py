# Copyright (c) mmlesion contributors. All rights reserved.
"""Measured pyramid levels of detector configs (anchor tool)."""
import pytest
from mmengine.config import Config

from mmlesion.anchors.box_sources import anchor_config_from_model
from mmlesion.anchors.model_pyramid import (anchor_head_key,
                                            check_anchor_pyramid,
                                            head_feature_strides, level_name,
                                            pyramid_name)
from mmlesion.testing import get_config


def test_level_names():
    assert level_name(8) == 'P3' and level_name(12) == 'stride 12'
    assert pyramid_name([4, 8, 16, 32, 64]) == 'P2-P6'


def test_two_stage_config_uses_the_rpn_levels():
    cfg = get_config('demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py')
    assert anchor_head_key(cfg) == 'rpn_head'
    assert head_feature_strides(cfg) == [4, 8, 16, 32, 64]
    anchors = anchor_config_from_model(cfg)
    assert check_anchor_pyramid(cfg, anchors) == [4, 8, 16, 32, 64]
    cfg.model.rpn_head.anchor_generator.strides = [8, 16, 32, 64, 128]
    with pytest.raises(ValueError, match='rpn_head 5 levels'):
        check_anchor_pyramid(cfg, anchor_config_from_model(cfg), 'faster')


def test_config_without_anchors():
    with pytest.raises(ValueError, match='nothing to optimise'):
        anchor_head_key(Config(dict(model=dict(type='FCOS'))))
