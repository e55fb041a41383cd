# Copyright (c) mmlesion contributors. All rights reserved.
from unittest.mock import MagicMock

import pytest
import torch.nn as nn

from mmdet.registry import HOOKS
from mmengine.config import Config
from mmengine.runner import BaseLoop
from mmlesion.engine.hooks import CheckpointCheckHook
from mmlesion.utils import CheckpointMismatchError


def _runner(model):
    runner = MagicMock()
    runner.model = model
    runner._load_from = 'work_dirs/x/epoch_1.pth'
    runner._resume = False
    runner._train_loop = dict(type='EpochBasedTrainLoop')  # not built
    runner.cfg = Config(dict(allow_partial_load=False))
    return runner


def test_strict_and_partial():
    model = nn.Linear(4, 2)
    other = dict(state_dict=nn.Linear(4, 3).state_dict())
    hook = HOOKS.build(dict(type='CheckpointCheckHook'))
    with pytest.raises(CheckpointMismatchError,
                       match=r'(?s)work_dirs/x/epoch_1.pth: .*size mismatch'):
        hook.after_load_checkpoint(_runner(model), other)
    named = CheckpointCheckHook(filename='ft.pth')
    with pytest.raises(CheckpointMismatchError, match='ft.pth: '):
        named.after_load_checkpoint(_runner(model), other)
    # fitting weights pass; strict=False leaves the problems to mmengine
    named.after_load_checkpoint(_runner(model),
                                dict(state_dict=model.state_dict()))
    CheckpointCheckHook(strict=False).after_load_checkpoint(
        _runner(model), other)


def test_partial_load_only_when_training_from_scratch_weights():
    """``allow_partial_load = True`` (the fine-tuning opt-out) relaxes the
    check only for a training run that does not resume."""
    model = nn.Linear(4, 2)
    other = dict(state_dict=nn.Linear(4, 3).state_dict())
    hook = HOOKS.build(dict(type='CheckpointCheckHook'))
    runner = _runner(model)
    runner.cfg.allow_partial_load = True
    # not training (tools/test.py, runner.test()): still refused
    with pytest.raises(CheckpointMismatchError):
        hook.after_load_checkpoint(runner, other)
    runner._train_loop = MagicMock(spec=BaseLoop)  # Runner.train() built it
    hook.after_load_checkpoint(runner, other)  # fine-tuning: allowed
    runner._resume = True
    with pytest.raises(CheckpointMismatchError):
        hook.after_load_checkpoint(runner, other)
    runner._resume = False
    runner.cfg.allow_partial_load = False
    with pytest.raises(CheckpointMismatchError):
        hook.after_load_checkpoint(runner, other)


def test_every_config_checks_checkpoints():
    """mmdet's stock tools build runners from the configs: each config has
    exactly one CheckpointCheckHook in custom_hooks."""
    from mmlesion.testing import repo_root
    configs = sorted((repo_root() / 'configs').rglob('*.py'))
    configs = [c for c in configs if '_base_' not in c.parts]
    assert len(configs) > 50
    for path in configs:
        cfg = Config.fromfile(str(path))
        types = [h['type'] for h in cfg.get('custom_hooks', [])]
        assert types.count('CheckpointCheckHook') == 1, (path, types)


def test_set_checkpoint_check_hook_replaces(tmp_path):
    """Our tools replace the configs' hook instead of adding a second."""
    from mmengine.runner import Runner

    from mmlesion.engine.hooks import set_checkpoint_check_hook
    runner = Runner(
        model=nn.Linear(2, 2),
        work_dir=str(tmp_path),
        custom_hooks=[dict(type='CheckpointCheckHook')],
        default_scope='mmdet')
    mine = CheckpointCheckHook(filename='x.pth', strict=True)
    set_checkpoint_check_hook(runner, mine)
    found = [h for h in runner.hooks if isinstance(h, CheckpointCheckHook)]
    assert found == [mine]
