# Copyright (c) mmlesion contributors. All rights reserved.
"""The trust boundary (issue 17): every bad input of the issue, one case each.

A file never runs code, a scan is never silently wrong, an annotation or
result file is never taken half-read. Each case is a named parameter (the
``id`` says what it is), built from tiny synthetic files in ``tmp_path``;
the cases that need the real TotalSegmentator CT of ``../shared/data`` skip
cleanly without it.

Cases:

* checkpoints (``ckpt-*``): payloads of ``builtins.exec``,
  ``subprocess.Popen``, ``importlib.import_module``, ``os.system``,
  ``builtins.eval`` and a ``getattr`` that is not a HistoryBuffer statistic
  are refused naming file and global, without running; a checkpoint written
  by plain mmengine's Runner loads safely; ``--trust-checkpoint`` /
  ``MMLESION_TRUST_CHECKPOINTS=1`` is the only way to unpickle more; a
  checkpoint of another model is refused by every loader
  (``load_model_checkpoint``, ``tools/infer_volume.py``) unless partial
  loading is allowed.
"""
import argparse
import builtins
import datetime
import importlib
import os
import pickletools
import subprocess
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel

import mmlesion  # noqa: F401  (registers the loader)
from mmlesion.utils import (CheckpointMismatchError, UntrustedCheckpointError,
                            add_trust_checkpoint_argument,
                            load_local_checkpoint, load_model_checkpoint)
from mmlesion.utils.checkpoint_loader import (
    MMENGINE_HISTORY_BUFFER_GETSTATE, TRUST_ENV)

# --------------------------------------------------------------------------
# 1. checkpoints never run code
# --------------------------------------------------------------------------


class _Payload:
    """Unpickling this calls ``func(*args)``."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker):
    code = f'open({str(marker)!r}, "w").close()'
    return {
        'ckpt-builtins-exec': (builtins.exec, (code, ), 'builtins.exec'),
        'ckpt-builtins-eval': (builtins.eval, (code, ), 'builtins.eval'),
        'ckpt-subprocess-popen':
        (subprocess.Popen, (['touch', str(marker)], ), 'subprocess.Popen'),
        'ckpt-importlib': (importlib.import_module, ('this', ),
                           'importlib.import_module'),
        'ckpt-os-system': (os.system, (f'touch {marker}', ), 'system'),
        'ckpt-getattr-escape': (getattr, (HistoryBuffer, '__init__'),
                                'getattr'),
    }


@pytest.fixture
def untrusted(monkeypatch):
    """No trust switch set, whatever the environment of the test run."""
    monkeypatch.setenv(TRUST_ENV, '0')


@pytest.mark.parametrize('case', list(_payloads('x')))
def test_checkpoint_payload_is_refused_and_not_run(case, tmp_path,
                                                   untrusted):
    marker = tmp_path / 'payload_ran'
    func, args, name = _payloads(marker)[case]
    path = tmp_path / f'{case}.pth'
    torch.save(dict(state_dict={}, meta=_Payload(func, args)), str(path))
    with pytest.raises(UntrustedCheckpointError) as info:
        load_local_checkpoint(str(path))
    msg = str(info.value)
    assert str(path) in msg and name in msg and '--trust-checkpoint' in msg
    assert TRUST_ENV in msg
    assert not marker.exists(), 'the payload ran'


def _pickle_globals(path) -> set:
    """``module name`` of every GLOBAL / STACK_GLOBAL in a checkpoint."""
    with zipfile.ZipFile(path) as zf:
        data = zf.read(next(n for n in zf.namelist()
                            if n.endswith('data.pkl')))
    ops = list(pickletools.genops(data))
    found = set()
    for i, (op, arg, _) in enumerate(ops):
        if op.name == 'GLOBAL':
            found.add(arg)
        elif op.name == 'STACK_GLOBAL':
            found.add(f'{ops[i - 2][1]} {ops[i - 1][1]}')
    return found


class _TinyDetector(nn.Module):
    """A stock mmdet neck with a loss, for mmengine's Runner."""

    def __init__(self):
        super().__init__()
        from mmdet.models.necks import ChannelMapper
        self.neck = ChannelMapper([3], 4, kernel_size=1,
                                  norm_cfg=dict(type='BN'))


class _RunnerModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.det = _TinyDetector()

    def forward(self, inputs, data_samples=None, mode='loss'):
        out = self.det.neck([torch.stack(inputs)])[0]
        return dict(loss=out.pow(2).mean())


def _plain_mmengine_checkpoint(work_dir, monkeypatch) -> str:
    """Train 1 epoch with plain mmengine's Runner; return epoch_1.pth."""
    from mmengine.runner import Runner

    class Data(torch.utils.data.Dataset):
        metainfo = dict(classes=('nodule', ), palette=[(220, 20, 60)])

        def __len__(self):
            return 4

        def __getitem__(self, idx):
            return dict(inputs=torch.full((3, 4, 4), float(idx)))

    # mmengine's own HistoryBuffer pickling (getattr globals), as without
    # mmlesion imported
    monkeypatch.setattr(HistoryBuffer, '__getstate__',
                        MMENGINE_HISTORY_BUFFER_GETSTATE)
    runner = Runner(
        model=_RunnerModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=Data(),
            batch_size=2,
            collate_fn=dict(type='pseudo_collate'),
            sampler=dict(type='DefaultSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                 begin=0, end=2),
            dict(type='MultiStepLR', milestones=[1], by_epoch=True)
        ],
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=1)),
        randomness=dict(seed=0),
        default_scope='mmengine')
    runner.train()
    return str(work_dir / 'epoch_1.pth')


def test_plain_mmengine_checkpoint_loads_safely(tmp_path, monkeypatch,
                                                untrusted):
    path = _plain_mmengine_checkpoint(tmp_path / 'work', monkeypatch)
    monkeypatch.undo()
    monkeypatch.setenv(TRUST_ENV, '0')
    # what plain mmengine writes besides torch's defaults, and nothing else
    assert _pickle_globals(path) - {
        'collections OrderedDict', '_codecs encode', 'torch FloatStorage',
        'torch LongStorage', 'torch._utils _rebuild_tensor_v2'
    } == {
        '__builtin__ getattr', 'collections Counter',
        'mmengine.logging.history_buffer HistoryBuffer', 'numpy dtype',
        'numpy ndarray', 'numpy._core.multiarray _reconstruct',
        'numpy._core.multiarray scalar'
    }
    ckpt = load_local_checkpoint(path)
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.statistics('mean') == pytest.approx(buf.mean())
    assert ckpt['meta']['dataset_meta']['classes'] == ('nodule', )
    model = _RunnerModel()
    ckpt = load_model_checkpoint(model, path)
    assert torch.equal(model.det.neck.convs[0].conv.weight,
                       ckpt['state_dict']['det.neck.convs.0.conv.weight'])


def test_trust_switch_is_the_only_way_to_unpickle_more(tmp_path,
                                                       monkeypatch,
                                                       untrusted):
    path = str(tmp_path / 'custom.pth')
    torch.save(dict(state_dict={}, when=datetime.date(2024, 1, 2)), path)
    with pytest.raises(UntrustedCheckpointError, match='custom.pth'):
        load_local_checkpoint(path)
    parser = argparse.ArgumentParser()
    add_trust_checkpoint_argument(parser)
    assert parser.parse_args([]).trust_checkpoint is False
    assert os.environ[TRUST_ENV] == '0'
    assert parser.parse_args(['--trust-checkpoint']).trust_checkpoint
    assert os.environ[TRUST_ENV] == '1'
    assert load_local_checkpoint(path)['when'] == datetime.date(2024, 1, 2)


def _model():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_checkpoint_of_another_model_is_refused(tmp_path, untrusted):
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=nn.Sequential(nn.Linear(2, 2)).state_dict()),
               path)
    with pytest.raises(CheckpointMismatchError, match='other.pth'):
        load_model_checkpoint(_model(), path)
    model = _model()
    before = model[0].weight.detach().clone()
    load_model_checkpoint(model, path, allow_partial=True)  # only logged
    assert torch.equal(model[0].weight, before)
    good = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=_model().state_dict()), good)
    assert 'state_dict' in load_model_checkpoint(model, good)


def test_infer_volume_refuses_a_checkpoint_of_another_model(
        tmp_path, capsys, untrusted):
    from tools.infer_volume import main
    path = str(tmp_path / 'other_model.pth')
    torch.save(dict(state_dict=_model().state_dict()), path)
    scan = tmp_path / 'scan.nii.gz'
    import SimpleITK as sitk
    sitk.WriteImage(sitk.GetImageFromArray(
        np.full((4, 8, 8), -1000, np.int16)), str(scan))
    rc = main([
        'configs/demo/faster_rcnn_r18_fpn_1x_demo_deeplesion.py', path,
        str(scan), '--out-dir', str(tmp_path / 'out')
    ])
    err = capsys.readouterr().err
    assert rc == 1 and 'other_model.pth' in err and 'does not fit' in err
    assert not (tmp_path / 'out' / 'candidates.csv').exists()
