# Copyright (c) mmlesion contributors. All rights reserved.
from unittest.mock import MagicMock

import pytest
import torch.nn as nn

from mmdet.registry import HOOKS
from mmlesion.engine.hooks import CheckpointCheckHook
from mmlesion.utils import CheckpointMismatchError


def _runner(model):
    runner = MagicMock()
    runner.model = model
    runner._load_from = 'work_dirs/x/epoch_1.pth'
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
