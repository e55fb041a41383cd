# Copyright (c) mmlesion contributors. All rights reserved.
"""Training faults injected into a tiny run: checkpoints, best file, resume.

The toy run of :mod:`tests.helpers.fault_runs` trains with the hooks of
``configs/_base_/default_runtime.py`` (``AtomicCheckpointHook``,
``RandomStateHook``); a run that must die is a subprocess that SIGKILLs
itself at a chosen write, the others run in-process. The exact resume of
the demo Faster R-CNN config is checked in
``tests/test_tools/test_train_test.py``.
"""
import glob
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from mmlesion.testing import repo_root
from tests.helpers.fault_runs import build_runner
from mmlesion.utils import (ChecksumMismatchError, find_resumable_checkpoint,
                            load_local_checkpoint, verify_checkpoint_checksum)
from mmlesion.utils.writing.atomic import TMP_PREFIX
from mmlesion.utils.writing.refusals import WriteRefusedError, format_bytes


def _killed_run(work_dir: Path, kill_at: str, *args: str) -> None:
    """Run the toy training in a subprocess that must die by SIGKILL."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = str(repo_root()) + os.pathsep + env.get(
        'PYTHONPATH', '')
    proc = subprocess.run(
        [sys.executable, '-m', 'tests.helpers.fault_runs',
         str(work_dir), '--kill-at', kill_at, *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=240)
    assert proc.returncode == -9, proc.stdout[-4000:]


def _train(work_dir: Path, epochs: int = 3, resume=None, **kwargs):
    if resume == 'auto':
        resume = find_resumable_checkpoint(str(work_dir))
    runner = build_runner(str(work_dir), epochs, resume, **kwargs)
    runner.train()
    return runner


def _log(work_dir: Path) -> str:
    return '\n'.join(
        Path(p).read_text() for p in sorted(glob.glob(
            str(work_dir / '*' / '*.log'))))


def _weights(path: Path) -> dict:
    return load_local_checkpoint(str(path), map_location='cpu')['state_dict']


def _assert_equal_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _temporaries(work_dir: Path) -> list:
    return sorted(p.name for p in work_dir.iterdir()
                  if p.name.startswith(TMP_PREFIX))


def test_kill_mid_checkpoint_then_exact_resume(tmp_path):
    """Issue 22 items 2 and 4.

    Killed while ``epoch_3.pth`` is being written: no file carries the
    final name, ``last_checkpoint`` still names epoch 2, the resume takes
    epoch 2, removes the temporary, and ends with bitwise the weights of an
    uninterrupted run; resumed without the random state it does not.
    """
    ref = tmp_path / 'reference'
    _train(ref)

    work = tmp_path / 'killed'
    _killed_run(work, 'epoch_3.pth:1:mid-write')
    assert not (work / 'epoch_3.pth').exists()
    assert len(_temporaries(work)) == 1  # the half-written temporary
    assert (work / 'last_checkpoint').read_text().endswith('epoch_2.pth')
    assert verify_checkpoint_checksum(str(work / 'epoch_2.pth'))
    no_rng = tmp_path / 'no_rng'
    no_rng.mkdir()
    for name in ('epoch_2.pth', 'epoch_2.pth.sha256'):
        (no_rng / name).write_bytes((work / name).read_bytes())

    _train(work, resume='auto')
    assert _temporaries(work) == []
    assert 'resumed epoch: 2' in _log(work)
    _assert_equal_weights(
        _weights(ref / 'epoch_3.pth'), _weights(work / 'epoch_3.pth'))
    assert verify_checkpoint_checksum(str(work / 'epoch_3.pth'))

    _train(no_rng, resume='auto', random_state=False)
    ref_w, got = _weights(ref / 'epoch_3.pth'), _weights(no_rng /
                                                         'epoch_3.pth')
    assert any(not torch.equal(ref_w[k], got[k]) for k in ref_w)


def test_kill_while_writing_best_keeps_old_best(tmp_path):
    """Issue 22 item 1: killed while the new best file is written.

    The previous best stays (intact, checksum verified) until the new one
    is in place; nothing carries the new best's name; the resumed run
    validates epoch 2 again, writes the next best and removes the old one
    (bitwise checks: ``test_unfinished_validation.py``).
    """
    work = tmp_path / 'work'
    _killed_run(work, 'best_score_*.pth:2:mid-write')
    old_best = work / 'best_score_epoch_1.pth'
    assert old_best.is_file()
    assert verify_checkpoint_checksum(str(old_best))
    assert not (work / 'best_score_epoch_2.pth').exists()

    _train(work, resume='auto')
    assert _temporaries(work) == []
    assert 'validating epoch 2 now' in _log(work)
    assert not old_best.exists() and not Path(
        str(old_best) + '.sha256').exists()
    assert verify_checkpoint_checksum(str(work / 'best_score_epoch_3.pth'))


def test_kill_before_last_checkpoint_rename(tmp_path):
    """``last_checkpoint`` is replaced atomically: a kill before its rename
    leaves the old one (naming an intact checkpoint), never an empty file;
    the outdated ``epoch_1.pth`` is removed only after the new pointer.

    Writes of ``last_checkpoint``: epoch 1, epoch 1 again (after its best
    file), epoch 2 (killed).
    """
    work = tmp_path / 'work'
    _killed_run(work, 'last_checkpoint:3:before-rename')
    assert (work / 'last_checkpoint').read_text() == str(
        work / 'epoch_1.pth')
    assert verify_checkpoint_checksum(str(work / 'epoch_1.pth'))
    assert verify_checkpoint_checksum(str(work / 'epoch_2.pth'))


def test_corrupted_checkpoint_refused(tmp_path):
    """Issue 22 item 3: 4 KiB of random bytes in the middle of the newest
    checkpoint (same size) is refused by every load, naming the file; the
    resume falls back to the previous checkpoint."""
    work = tmp_path / 'work'
    _train(work, epochs=2, max_keep_ckpts=2)
    ckpt = work / 'epoch_2.pth'
    data = bytearray(ckpt.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 4096] = os.urandom(4096)
    ckpt.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match='epoch_2.pth'):
        load_local_checkpoint(str(ckpt))
    # mmengine's loader (tools/test.py, init_detector in infer_volume)
    with pytest.raises(ChecksumMismatchError, match='epoch_2.pth'):
        CheckpointLoader.load_checkpoint(str(ckpt), map_location='cpu')
    assert find_resumable_checkpoint(str(work)) == str(work / 'epoch_1.pth')


def test_corrupted_checkpoint_without_sidecar_refused(tmp_path):
    """Issue 64 item 5: the same damage, with no checksum file beside the
    checkpoint, is found by its zip CRCs before anything is unpickled:
    refused as corrupt, naming the file and the member (never as a
    diverged training); the resume falls back to the previous one."""
    from mmlesion.utils.checkpoints.loader import CorruptCheckpointError
    work = tmp_path / 'work'
    _train(work, epochs=2, max_keep_ckpts=2)
    ckpt = work / 'epoch_2.pth'
    Path(str(ckpt) + '.sha256').unlink()
    with zipfile.ZipFile(ckpt) as archive:  # the largest tensor
        member = max((i for i in archive.infolist() if '/data/' in
                      i.filename), key=lambda i: i.file_size)
    data = bytearray(ckpt.read_bytes())
    start = member.header_offset + 30 + sum(struct.unpack(
        '<HH', data[member.header_offset + 26:member.header_offset + 30]))
    data[start:start + 16] = bytes(16)  # zeros: finite weights, same size
    ckpt.write_bytes(bytes(data))
    for load in (load_local_checkpoint, CheckpointLoader.load_checkpoint):
        with pytest.raises(CorruptCheckpointError) as err:
            load(str(ckpt), map_location='cpu')
        assert str(err.value).startswith(
            f'{ckpt}: corrupt checkpoint, member {member.filename} ')
        assert 'diverged' not in str(err.value)
    assert find_resumable_checkpoint(str(work)) == str(work / 'epoch_1.pth')


def test_resume_on_a_full_disk_is_refused_before_training(
        tmp_path, monkeypatch):
    """Issue 64 item 5: a resume checks the space it will need before
    training (not after another epoch), and names that size: the resumed
    checkpoint (one more is written before the kept one is removed), a
    best file and the logs (at least 1 MiB)."""
    import mmlesion.engine.hooks.atomic_checkpoint_hook as hook
    work = tmp_path / 'work'
    _train(work, epochs=1)
    size = (work / 'epoch_1.pth').stat().st_size
    best = (work / 'best_score_epoch_1.pth').stat().st_size
    monkeypatch.setattr(hook, 'free_bytes', lambda path: 5000)
    with pytest.raises(WriteRefusedError) as err:
        _train(work, epochs=3, resume='auto')
    assert not (work / 'epoch_2.pth').exists()  # no epoch was trained
    assert str(err.value) == (
        f'cannot write {work}: No space left on device (ENOSPC); '
        f'{format_bytes(size + best + (1 << 20))} needed (1 checkpoint(s) '
        f'of {format_bytes(size)}, the size of epoch_1.pth, a best '
        f'checkpoint of {format_bytes(best)} and 1.0 MiB of logs; checked '
        'before training), 4.9 KiB free there. Nothing written before is '
        'lost (each file appears only when complete). To go on: free some '
        'space on that file system, then run it again')
    monkeypatch.undo()
    _train(work, epochs=2, resume='auto')
    assert (work / 'epoch_2.pth').is_file()


@pytest.mark.parametrize('damage', ['missing', 'truncated'])
def test_resume_rebuilds_broken_best(tmp_path, damage):
    """A best file lost or truncated after the run is rebuilt on resume
    from the kept checkpoint of the same epoch (the same weights)."""
    work = tmp_path / 'work'
    _train(work, epochs=2)
    best = work / 'best_score_epoch_2.pth'
    if damage == 'missing':
        best.unlink()
    else:
        best.write_bytes(best.read_bytes()[:1000])
        Path(str(best) + '.sha256').unlink()
    _train(work, epochs=2, resume='auto')
    assert 'rebuilt it from' in _log(work)
    assert verify_checkpoint_checksum(str(best))
    _assert_equal_weights(_weights(best), _weights(work / 'epoch_2.pth'))


def test_resume_reports_lost_best(tmp_path):
    """The best epoch's checkpoint is gone too: the resume says the best
    weights are lost, and what happens next."""
    work = tmp_path / 'work'
    _train(work, epochs=2, score_sign=-1.)  # the best stays epoch 1
    (work / 'best_score_epoch_1.pth').unlink()
    assert not (work / 'epoch_1.pth').exists()  # max_keep_ckpts=1
    _train(work, epochs=2, resume='auto', score_sign=-1.)
    log = _log(work)
    assert 'best_score_epoch_1.pth' in log
    assert 'the best weights are LOST' in log


def test_resume_restores_sampler_seed(tmp_path):
    """Without a configured seed each run draws its own; the sampler of a
    resumed run must shuffle with the seed of the interrupted one."""
    work = tmp_path / 'work'
    _train(work, epochs=1, seed=None)
    saved = load_local_checkpoint(str(work / 'epoch_1.pth'))[
        'mmlesion_random_state']['sampler_seeds']['sampler']
    runner = _train(work, epochs=1, resume='auto', seed=None)
    assert runner.train_loop.dataloader.sampler.seed == saved
