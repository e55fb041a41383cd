# Copyright (c) mmlesion contributors. All rights reserved.
"""A run's files belong to its work dir: resuming a copied or moved work
dir leaves the original byte for byte as it was and creates nothing
outside the resumed folder.

The toy run of :mod:`tests.helpers.fault_runs` saves a new best checkpoint
every epoch, so a resumed run removes the previous best (mmengine removes
the one recorded, by absolute path, in the checkpoint's message hub).
The original is made read-only (``chmod -R a-w``); as root that stops
nothing, so every file of the original is hashed before and after.
"""
import hashlib
import logging
import os
import shutil
import stat
from pathlib import Path
from typing import Dict

import pytest

from mmlesion.utils import find_resumable_checkpoint, load_local_checkpoint
from tests.helpers.fault_runs import build_runner


def _hashes(folder: Path) -> Dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob('*')) if p.is_file()
    }


def _set_writable(folder: Path, writable: bool) -> None:
    for path in [folder, *folder.rglob('*')]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode
                   & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture
def original(tmp_path):
    """A 2-epoch run (best file: epoch 2), made read-only; writable again
    at teardown so that pytest can remove it."""
    work = tmp_path / 'original'
    runner = build_runner(str(work), 2)
    runner.train()
    # the run is over: in a process of its own its log would be closed (in
    # this one, its logger stays the current one until the next Runner)
    for handler in list(runner.logger.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            runner.logger.removeHandler(handler)
    yield work
    if work.exists():
        _set_writable(work, True)


def _train_log(work: Path, since: set) -> str:
    """The log of the run(s) whose log folders are not in ``since``."""
    return '\n'.join(p.read_text() for p in sorted(work.glob('*/*.log'))
                     if p.parent.name not in since)


def _resume(work: Path, epochs: int = 3) -> str:
    """Resume ``work`` as ``tools/train.py --resume`` does; its log."""
    since = {p.name for p in work.iterdir()}
    checkpoint = find_resumable_checkpoint(str(work))
    assert checkpoint == str(work / 'epoch_2.pth')
    build_runner(str(work), epochs, checkpoint).train()
    return _train_log(work, since)


def _assert_resumed(work: Path) -> None:
    """The resume trained epoch 3 and kept its files in ``work``."""
    assert (work / 'last_checkpoint').read_text() == str(
        work / 'epoch_3.pth')
    assert (work / 'best_score_epoch_3.pth').is_file()
    assert not (work / 'best_score_epoch_2.pth').exists()  # replaced
    hub = load_local_checkpoint(str(work / 'epoch_3.pth'))['message_hub']
    info = hub['runtime_info']
    assert info['best_ckpt'] == str(work / 'best_score_epoch_3.pth')
    assert info['last_ckpt'] == str(work / 'epoch_3.pth')


def test_resume_of_a_copy_leaves_the_original_unchanged(original, tmp_path):
    copy = tmp_path / 'copy'
    shutil.copytree(original, copy)
    _set_writable(original, False)
    before = _hashes(original)
    log = _resume(copy)
    assert _hashes(original) == before
    _assert_resumed(copy)
    assert str(original) not in log.replace(str(copy), '<copy>')


def test_resume_of_a_moved_dir_does_not_recreate_the_old_one(
        original, tmp_path):
    moved = tmp_path / 'moved'
    shutil.move(str(original), str(moved))
    _resume(moved)
    assert not original.exists()
    _assert_resumed(moved)


def test_a_record_outside_the_work_dir_is_ignored(original, tmp_path):
    """A checkpoint of another run resumed into a new work dir: the other
    run's best file is not touched, and one line says it is ignored."""
    other = tmp_path / 'other'
    _set_writable(original, False)
    before = _hashes(original)
    build_runner(str(other), 3, str(original / 'epoch_2.pth')).train()
    assert _hashes(original) == before
    ignored = [line for line in _train_log(other, set()).splitlines()
               if 'outside this work dir' in line]
    # one line per record: the best checkpoint and the last one
    assert len(ignored) == 2, ignored
    assert str(original / 'best_score_epoch_2.pth') in ignored[0]
    assert str(original / 'epoch_2.pth records') in ignored[1]
    assert sorted(os.listdir(tmp_path)) == ['original', 'other']
    assert (other / 'best_score_epoch_3.pth').is_file()


def test_a_copy_without_best_checkpoints_resumes(tmp_path):
    """A run that keeps no best file (``save_best=None``) resumed from a
    copy: its last checkpoint record is taken in the copy."""
    work, copy = tmp_path / 'work', tmp_path / 'copy'
    build_runner(str(work), 1, save_best=None).train()
    copy.mkdir()
    shutil.copy(work / 'epoch_1.pth', copy / 'epoch_1.pth')
    build_runner(str(copy), 2, str(copy / 'epoch_1.pth'),
                 save_best=None).train()
    info = load_local_checkpoint(str(copy / 'epoch_2.pth'))['message_hub'][
        'runtime_info']
    assert info['last_ckpt'] == str(copy / 'epoch_2.pth')
    assert 'best_ckpt' not in info
