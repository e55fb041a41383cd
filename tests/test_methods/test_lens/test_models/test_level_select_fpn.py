# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch
from mmdet.registry import MODELS

import mmlesion  # noqa: F401
import mmlesion.methods.lens  # noqa: F401  (registers LevelSelectFPN)


def test_level_select_fpn_keeps_finest_level():
    cfg = dict(type='LevelSelectFPN', in_channels=[4, 8, 16],
               out_channels=8, num_outs=3)
    neck = MODELS.build(cfg)
    feats = (torch.rand(1, 4, 16, 16), torch.rand(1, 8, 8, 8),
             torch.rand(1, 16, 4, 4))
    outs = neck(feats)
    assert len(outs) == 1 and outs[0].shape == (1, 8, 16, 16)
    # the same numbers as mmdet's FPN's finest level
    full = MODELS.build(dict(cfg, type='FPN'))
    full.load_state_dict(neck.state_dict())
    torch.testing.assert_close(outs[0], full(feats)[0])
    neck = MODELS.build(dict(cfg, out_indices=(2, 0)))
    assert [o.shape[-1] for o in neck(feats)] == [4, 16]
    with pytest.raises(ValueError, match='out_indices'):
        MODELS.build(dict(cfg, out_indices=(3, )))
