# Copyright (c) mmlesion contributors. All rights reserved.
"""A later training stage loads an earlier stage's checkpoint: the 3D
Aggregated Faster R-CNN starts from its RPN stage (Sec. III-E). The FPRN
keys may be missing (``load_from_allowed_missing``); any other mismatch is
still refused."""
import argparse

import pytest
import torch
from mmengine.runner import Runner

from mmdet.registry import MODELS
from mmlesion.engine.hooks import (CheckpointCheckHook,
                                   set_checkpoint_check_hook)
from mmlesion.testing import get_config, repo_root
from tests.helpers.aggregated3d import tiny_aggregated3d_cfg
from tests.helpers.tool_modules import load_tool
from mmlesion.utils import CheckpointMismatchError

FULL = 'configs/aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-demo.py'
RPN = 'aggregated3d/demo/rpn3d-focal_denseunet3d-tiny_luna16-demo.py'


class _Runner:

    def __init__(self, model):
        self.model = model
        self._load_from = 'rpn_stage.pth'


def _models():
    cfg = tiny_aggregated3d_cfg()
    torch.manual_seed(0)
    full = MODELS.build(cfg)
    cfg.fprn_head = None
    torch.manual_seed(1)
    rpn = MODELS.build(cfg)
    return full, rpn


def test_fprn_keys_may_be_missing_nothing_else():
    full, rpn = _models()
    state = dict(state_dict=rpn.state_dict())
    # without the allowance the RPN checkpoint is refused (missing FPRN)
    with pytest.raises(CheckpointMismatchError,
                       match=r'(?s)rpn_stage.pth: .*fprn_head\.'):
        CheckpointCheckHook().after_load_checkpoint(_Runner(full), state)
    hook = CheckpointCheckHook(allowed_missing=['fprn_head.'])
    hook.after_load_checkpoint(_Runner(full), state)
    # a missing backbone key, an unexpected key, a shape mismatch: refused
    for bad, pattern in [
        (lambda s: s.pop('backbone.preblock.0.conv.weight'),
         'backbone.preblock'),
        (lambda s: s.update(extra=torch.zeros(1)), 'extra'),
        (lambda s: s.update({'rpn_head.heads.0.4.bias': torch.zeros(3)}),
         'size mismatch'),
    ]:
        broken = dict(rpn.state_dict())
        bad(broken)
        with pytest.raises(CheckpointMismatchError, match=pattern):
            hook.after_load_checkpoint(_Runner(full),
                                       dict(state_dict=broken))


def test_second_stage_starts_from_the_rpn_weights(tmp_path):
    """tools/train.py's runner loads the RPN stage into the full model: the
    backbone and RPN weights are the stage's, the FPRN keeps its init."""
    torch.manual_seed(0)
    rpn = MODELS.build(get_config(RPN).model)
    ckpt = tmp_path / 'rpn_fold0' / 'epoch_6.pth'
    ckpt.parent.mkdir()
    torch.save(dict(meta=dict(epoch=6, iter=60), state_dict=rpn.state_dict()),
               str(ckpt))
    tool = load_tool('train.py')
    args = argparse.Namespace(
        config=str(repo_root() / FULL), work_dir=str(tmp_path / 'stage2'),
        amp=False, auto_scale_lr=False, resume='auto',
        allow_partial_load=False, fold=None, launcher='none',
        cfg_options={'load_from': str(ckpt),
                     'load_from_allowed_missing': ['fprn_head.']})
    # --resume with nothing to resume keeps the stage checkpoint
    cfg = tool.build_cfg(args)
    assert cfg.load_from == str(ckpt) and not cfg.resume
    runner = Runner.from_cfg(cfg)
    # as tools/train.py: its hook replaces the configs' own
    set_checkpoint_check_hook(runner, tool.checkpoint_check_hook(cfg, args))
    fprn_before = {k: v.clone() for k, v in
                   runner.model.fprn_head.state_dict().items()}
    runner.load_or_resume()
    loaded = runner.model.state_dict()
    for key, value in rpn.state_dict().items():
        assert torch.equal(loaded[key], value), key
    for key, value in fprn_before.items():
        assert torch.equal(loaded['fprn_head.' + key], value), key
    # the same checkpoint without the allowance: refused by the tool's hook
    args.cfg_options = {'load_from': str(ckpt)}
    cfg = tool.build_cfg(args)
    cfg.load_from_allowed_missing = []
    runner = Runner.from_cfg(cfg)
    # as tools/train.py: its hook replaces the configs' own
    set_checkpoint_check_hook(runner, tool.checkpoint_check_hook(cfg, args))
    with pytest.raises(CheckpointMismatchError, match='fprn_head'):
        runner.load_or_resume()
