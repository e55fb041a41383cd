# Copyright (c) mmlesion contributors. All rights reserved.
"""Checkpoints whose errors must name the file and the field: fields of
the wrong type, NaN / Inf weights, a ``--resume`` file that is no
training checkpoint."""
import argparse
import importlib.util

import pytest
import torch
import torch.nn as nn

from mmlesion.testing import repo_root
from mmlesion.utils.checkpoints.loader import (CorruptCheckpointError,
                                               NonFiniteWeightsError,
                                               check_finite_weights,
                                               load_local_checkpoint,
                                               load_model_checkpoint)

CONFIG = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(
        f'mmlesion_{name}_tool', repo_root() / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))


@pytest.mark.parametrize('checkpoint,field', [
    (dict(state_dict=[1, 2], meta={}), "field 'state_dict' is a list"),
    (dict(state_dict={'0.weight': 'abc'}),
     "field 'state_dict' holds 1 value(s) that are not tensors: 0.weight "
     '(str)'),
    (dict(state_dict={}, meta='epoch 3'), "field 'meta' is a str"),
    (dict(state_dict={}, meta=[('epoch', 3)]), "field 'meta' is a list"),
    (dict(state_dict={}, meta=dict(dataset_meta=['lesion'])),
     "field 'meta.dataset_meta' is a list"),
    (dict(state_dict={}, meta=dict(dataset_meta=dict(classes='lesion'))),
     "field 'meta.dataset_meta.classes' is a str"),
    (dict(state_dict={}, optimizer='sgd'), "field 'optimizer' is a str"),
    (dict(state_dict={}, message_hub=3), "field 'message_hub' is a int"),
])
def test_malformed_field_is_named_with_the_file(tmp_path, checkpoint, field):
    path = tmp_path / 'bad.pth'
    torch.save(checkpoint, path)
    with pytest.raises(CorruptCheckpointError) as info:
        load_local_checkpoint(str(path))
    assert str(info.value).startswith(f'{path}: ')
    assert field in str(info.value)


def test_malformed_meta_in_inference_path(tmp_path):
    """The loader of infer_volume / mining / FPR crashed with an
    ``AttributeError`` on ``meta.get`` that named no file."""
    model = _model()
    path = tmp_path / 'bad_meta.pth'
    torch.save(dict(state_dict=model.state_dict(), meta='trained'), path)
    with pytest.raises(CorruptCheckpointError, match="field 'meta'"):
        load_model_checkpoint(model, str(path))


@pytest.mark.parametrize('poison', ['nan', 'inf', 'both'])
def test_non_finite_weights_are_refused_at_load(tmp_path, poison):
    model = _model()
    state = model.state_dict()
    if poison in ('nan', 'both'):
        state['0.weight'][0, :2] = float('nan')
    if poison in ('inf', 'both'):
        state['1.running_var'][1] = float('inf')
    path = tmp_path / f'{poison}.pth'
    torch.save(dict(state_dict=state, meta={}), path)
    with pytest.raises(NonFiniteWeightsError) as info:
        load_model_checkpoint(_model(), str(path))
    message = str(info.value)
    assert message.startswith(f'{path}: ')
    if poison in ('nan', 'both'):
        assert '0.weight: 2 NaN, 0 Inf of 12' in message
    if poison in ('inf', 'both'):
        assert '1.running_var: 0 NaN, 1 Inf of 3' in message
    assert f'{2 if poison == "both" else 1} of 8 weight tensors' in message
    assert isinstance(info.value, CorruptCheckpointError)  # tools catch it


def test_non_finite_list_is_cut(tmp_path):
    state = {f'layer{i}.weight': torch.full((2, ), float('nan'))
             for i in range(8)}
    with pytest.raises(NonFiniteWeightsError) as info:
        check_finite_weights(dict(state_dict=state), 'many.pth', max_names=3)
    assert 'layer2.weight' in str(info.value)
    assert 'layer3.weight' not in str(info.value)
    assert 'and 5 more' in str(info.value)
    check_finite_weights(dict(state_dict={'a': torch.ones(2),
                                          'n': torch.tensor(3)}), 'ok.pth')


def test_test_tool_hook_refuses_nan_weights(tmp_path):
    """``tools/test.py``'s checkpoint check refuses NaN weights before the
    evaluation (it ran and reported 0 findings with status 0)."""
    hook = _tool('test').finite_check_hook(str(tmp_path / 'diverged.pth'))
    state = _model().state_dict()
    state['2.bias'][:] = float('nan')
    with pytest.raises(NonFiniteWeightsError,
                       match=r'diverged\.pth: 1 of 8 .*2\.bias: 2 NaN'):
        hook.after_load_checkpoint(None, dict(state_dict=state))


@pytest.mark.parametrize('meta,reason', [
    ({}, "'meta' has no 'epoch'"),
    (dict(epoch=2), "'meta' has no 'iter'"),
    (dict(epoch='2', iter=10), "field 'meta.epoch' is '2' (str)"),
])
def test_explicit_resume_of_a_non_training_checkpoint(tmp_path, meta, reason):
    """``--resume FILE`` of a file without epoch / iter ended in a bare
    ``KeyError: 'epoch'`` deep in mmengine."""
    path = tmp_path / 'weights.pth'
    torch.save(dict(state_dict=_model().state_dict(), meta=meta), path)
    args = argparse.Namespace(
        config=str(repo_root() / CONFIG), work_dir=str(tmp_path / 'w'),
        amp=False, auto_scale_lr=False, resume=str(path),
        allow_partial_load=False, fold=None, cfg_options=None,
        launcher='none')
    with pytest.raises(ValueError) as info:
        _tool('train').build_cfg(args)
    assert str(info.value).startswith(f'--resume {path}: cannot resume')
    assert reason in str(info.value)
