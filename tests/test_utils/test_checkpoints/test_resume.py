# Copyright (c) mmlesion contributors. All rights reserved.
"""``--resume``: the newest intact checkpoint, loud when there is none."""
import argparse
import importlib.util

import torch
import torch.nn as nn

from mmlesion.testing import repo_root
from mmlesion.utils import find_resumable_checkpoint, resume_candidates

CONFIG = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


def _save(path, epoch):
    torch.save(
        dict(
            meta=dict(epoch=epoch, iter=10 * epoch),
            state_dict=nn.Linear(2, 2).state_dict()), str(path))


def _work_dir(tmp_path, corrupt_latest=True):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    for epoch in (1, 2, 3):
        _save(work_dir / f'epoch_{epoch}.pth', epoch)
    if corrupt_latest:  # killed while saving epoch 3
        data = (work_dir / 'epoch_3.pth').read_bytes()
        (work_dir / 'epoch_3.pth').write_bytes(data[:len(data) // 3])
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_3.pth'))
    return work_dir


def _train_tool():
    spec = importlib.util.spec_from_file_location(
        'mmlesion_train_tool', repo_root() / 'tools' / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(work_dir, **kwargs):
    args = dict(
        config=str(repo_root() / CONFIG),
        work_dir=str(work_dir),
        amp=False,
        auto_scale_lr=False,
        resume='auto',
        allow_partial_load=False,
        fold=None,
        cfg_options=None,
        launcher='none')
    args.update(kwargs)
    return argparse.Namespace(**args)


def test_candidates_newest_first(tmp_path):
    work_dir = _work_dir(tmp_path, corrupt_latest=False)
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_2.pth'))
    (work_dir / 'best_froc_mean.pth').write_bytes(b'')
    assert resume_candidates(str(work_dir)) == [
        str(work_dir / f'epoch_{e}.pth') for e in (2, 3, 1)
    ]


def test_corrupt_latest_falls_back_to_intact(tmp_path, log_messages):
    work_dir = _work_dir(tmp_path)
    found = find_resumable_checkpoint(str(work_dir))
    assert found == str(work_dir / 'epoch_2.pth')
    text = '\n'.join(log_messages)
    assert f'cannot resume from {work_dir / "epoch_3.pth"}' in text
    assert 'falling back to' in text


def test_train_tool_resumes_from_intact(tmp_path):
    """``tools/train.py --resume`` resolves the checkpoint it resumes."""
    work_dir = _work_dir(tmp_path)
    cfg = _train_tool().build_cfg(_args(work_dir))
    assert cfg.resume is True
    assert cfg.load_from == str(work_dir / 'epoch_2.pth')


def test_no_checkpoint_warns_loudly(tmp_path, monkeypatch):
    # Record the warnings where they are emitted: the 'current' MMLogger
    # depends on which loggers earlier tests of the session created.
    import mmlesion.utils.checkpoints.resume as resume_module
    log_messages = []
    real_print_log = resume_module.print_log

    def recording_print_log(msg, *args, **kwargs):
        log_messages.append(str(msg))
        return real_print_log(msg, *args, **kwargs)

    monkeypatch.setattr(resume_module, 'print_log', recording_print_log)
    work_dir = tmp_path / 'empty'
    work_dir.mkdir()
    cfg = _train_tool().build_cfg(_args(work_dir))
    assert not cfg.resume and cfg.load_from is None
    assert any('NO intact checkpoint' in m and 'FROM SCRATCH' in m
               for m in log_messages)


def test_train_tool_strictness(tmp_path):
    """load_from is strict unless the config or the flag allows a partial
    load (fine-tuning); a resumed checkpoint always is."""
    tool = _train_tool()
    args = _args(tmp_path / 'w', resume=None)
    cfg = tool.build_cfg(args)
    assert tool.checkpoint_check_hook(cfg, args).strict
    cfg.allow_partial_load = True  # what the *_ft-6e_* configs set
    assert not tool.checkpoint_check_hook(cfg, args).strict
    cfg.resume = True
    assert tool.checkpoint_check_hook(cfg, args).strict
    cfg = tool.build_cfg(args)
    args.allow_partial_load = True
    assert not tool.checkpoint_check_hook(cfg, args).strict


def test_train_tool_lists_unknown_keys(tmp_path, log_messages):
    args = _args(tmp_path / 'w', resume=None,
                 cfg_options={'trian_cfg': dict(max_epochs=3)})
    _train_tool().build_cfg(args)
    assert any('trian_cfg (did you mean train_cfg?)' in m
               for m in log_messages)
