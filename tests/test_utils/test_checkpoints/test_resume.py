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


def test_train_tool_refuses_unknown_option_keys(tmp_path):
    """A top-level option nothing reads: refused (a key of the config
    files themselves is warned about: test_known_keys.py)."""
    import pytest

    from mmlesion.utils.configs.cfg_options import ConfigOptionError
    args = _args(tmp_path / 'w', resume=None,
                 cfg_options={'trian_cfg': dict(max_epochs=3)})
    with pytest.raises(ConfigOptionError, match="nothing reads a top-level "
                       "'trian_cfg'.*did you mean train_cfg="):
        _train_tool().build_cfg(args)


def test_resumed_copy_names_its_own_checkpoints(tmp_path, log_messages):
    """A work dir copied elsewhere keeps mmengine's ``last_checkpoint``,
    which names the original folder's file: the copy resumes from, and its
    end-of-training summary reports, its own file; a record whose file the
    copy lacks is ignored (with a warning), never followed outside."""
    import shutil

    from mmlesion.utils.checkpoints.resume import recorded_last_checkpoint
    from mmlesion.utils.reporting.summary import training_summary
    original = _work_dir(tmp_path, corrupt_latest=False)
    copy = tmp_path / 'copy'
    shutil.copytree(original, copy)
    assert (copy / 'last_checkpoint').read_text() == str(
        original / 'epoch_3.pth')
    assert recorded_last_checkpoint(str(copy)) == str(copy / 'epoch_3.pth')
    assert find_resumable_checkpoint(str(copy)) == str(copy / 'epoch_3.pth')
    summary = training_summary(str(copy), str(copy / 'log'), 'ts', None)
    assert f'last checkpoint  {copy / "epoch_3.pth"}' in summary
    assert str(original) not in summary
    (copy / 'epoch_3.pth').unlink()  # the copy lacks the recorded file
    assert recorded_last_checkpoint(str(copy)) is None
    assert 'last checkpoint' not in training_summary(
        str(copy), str(copy / 'log'), 'ts', None)
    assert any('record ignored' in m for m in log_messages)
