# Copyright (c) mmlesion contributors. All rights reserved.
"""Safe loading of local checkpoints and strict checks against the model."""
import collections

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer, MessageHub

import mmlesion  # noqa: F401  (registers the loader, patches HistoryBuffer)
from mmlesion.utils import (CheckpointMismatchError, CorruptCheckpointError,
                            check_state_dict_matches, load_local_checkpoint)


def _model():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def _training_checkpoint(model: nn.Module) -> dict:
    """What mmengine's Runner.save_checkpoint writes, in small."""
    hub = MessageHub.get_instance(f'ckpt_test_{id(model)}')
    for step in range(3):
        hub.update_scalar('train/loss', 1.0 / (step + 1))
        hub.update_scalar('val/froc/sens@4', np.float64(0.5))
    hub.update_info('epoch', 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model(torch.zeros(1, 3, 5, 5)).sum().backward()
    optimizer.step()
    return dict(
        meta=dict(epoch=3, iter=30, cfg='model = dict()', seed=1,
                  dataset_meta=dict(classes=('lesion', ))),
        state_dict=model.state_dict(),
        message_hub=hub.state_dict(),
        optimizer=optimizer.state_dict(),
        param_schedulers=[
            dict(milestones=collections.Counter({30: 1}), gamma=0.1,
                 base_values=[0.01], last_step=3, _last_value=[0.01])
        ])


def test_own_checkpoint_loads_without_full_unpickling(tmp_path, monkeypatch):
    """HistoryBuffer, numpy scalars and Counter need no full unpickling."""
    path = str(tmp_path / 'epoch_3.pth')
    torch.save(_training_checkpoint(_model()), path)
    monkeypatch.delenv('MMLESION_TRUST_CHECKPOINTS', raising=False)
    ckpt = load_local_checkpoint(path, map_location='cpu')
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert buf.current() == pytest.approx(1 / 3)
    assert ckpt['param_schedulers'][0]['milestones'] == {30: 1}
    assert ckpt['meta']['epoch'] == 3



def test_only_a_checkpoint_without_sidecar_is_warned_about(
        tmp_path, monkeypatch):
    """The unverified warning goes to the file without a ``.sha256``
    sidecar, never to the one the sidecar verified."""
    from mmlesion.utils import write_checksum
    from mmlesion.utils.checkpoints import loader
    warned = []
    monkeypatch.setattr(loader, 'warn_unverified_checkpoint', warned.append)
    bare, verified = str(tmp_path / 'bare.pth'), str(tmp_path / 'ok.pth')
    for path in (bare, verified):
        torch.save(_training_checkpoint(_model()), path)
    write_checksum(verified)
    load_local_checkpoint(verified, map_location='cpu')
    load_local_checkpoint(bare, map_location='cpu')
    assert warned == [bare]

def test_bad_files_name_the_file(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save(_training_checkpoint(_model()), str(good))
    data = good.read_bytes()
    cases = {
        'empty.pth': b'',
        'truncated.pth': data[:len(data) // 2],
        'text.pth': b'this is a config, not a checkpoint\n',
        'garbage.pth': bytes(range(256)) * 8,
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CorruptCheckpointError) as info:
            load_local_checkpoint(str(path))
        assert str(path) in str(info.value), name
    # a pickled tensor (or a whole module) is not a checkpoint dict
    torch.save(torch.zeros(3), str(tmp_path / 'tensor.pth'))
    with pytest.raises(CorruptCheckpointError, match='holds a Tensor'):
        load_local_checkpoint(str(tmp_path / 'tensor.pth'))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_local_checkpoint(str(tmp_path / 'missing.pth'))


def test_state_dict_must_match_the_model():
    model = _model()
    state = collections.OrderedDict(model.state_dict())
    # identical, with DDP's module. prefix, without num_batches_tracked
    check_state_dict_matches(_model(), dict(state_dict=state), 'a.pth')
    check_state_dict_matches(
        _model(), {f'module.{k}': v for k, v in state.items()}, 'a.pth')
    check_state_dict_matches(
        _model(), {k: v for k, v in state.items()
                   if 'num_batches_tracked' not in k}, 'a.pth')

    other = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    with pytest.raises(CheckpointMismatchError,
                       match=r'(?s)other\.pth.*size mismatch.*0\.weight'):
        check_state_dict_matches(model, dict(state_dict=other.state_dict()),
                                 'other.pth')
    missing = {k: v for k, v in state.items() if not k.startswith('1.')}
    with pytest.raises(CheckpointMismatchError,
                       match=r'(?s)b\.pth.*missing keys.*1\.weight'):
        check_state_dict_matches(model, missing, 'b.pth')
    extra = dict(state, **{'head.fc.weight': torch.zeros(2, 2)})
    with pytest.raises(CheckpointMismatchError,
                       match=r'(?s)c\.pth.*unexpected key.*head\.fc\.weight'):
        check_state_dict_matches(model, extra, 'c.pth')


@pytest.mark.parametrize('config', [
    'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py',
    'elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py',
    'retinanet_lesion/retinanet_r50_fpn_1xb4-adam-plateau-50e_deeplesion.py',
])
def test_shipped_schedules_load_safely(config, tmp_path, monkeypatch):
    """Optimizer and scheduler states of the shipped schedules need no
    full unpickling either."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS, init_default_scope

    from mmlesion.testing import get_config
    init_default_scope('mmdet')
    cfg = get_config(config)
    model = _model()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    schedulers = [
        PARAM_SCHEDULERS.build(dict(sched, optimizer=wrapper))
        for sched in cfg.param_scheduler
    ]
    ckpt = _training_checkpoint(model)
    ckpt['optimizer'] = wrapper.state_dict()
    ckpt['param_schedulers'] = [s.state_dict() for s in schedulers]
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(ckpt, path)
    monkeypatch.delenv('MMLESION_TRUST_CHECKPOINTS', raising=False)
    loaded = load_local_checkpoint(path)
    assert len(loaded['param_schedulers']) == len(schedulers)
