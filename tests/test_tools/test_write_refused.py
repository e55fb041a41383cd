# Copyright (c) mmlesion contributors. All rights reserved.
"""A full disk, a quota, a read-only file system while ``tools/train.py``
writes a checkpoint or ``tools/infer_volume.py`` its results (issue 50,
item 14): one line naming the file, the bytes needed and free and how to
go on, exit status 1 without a traceback, nothing lost.

The tools run in-process (:func:`tests.helpers.tool_modules.load_tool`);
the training is the toy run of :mod:`tests.helpers.fault_runs` (the
checkpoint hooks of every config) built by ``tools/train.py`` in place of
its config's runner; the fault is injected into the atomic writer's
``open`` (its ``write``) or into ``os.fsync`` of the commit.
"""
import errno
import os
import sys
from pathlib import Path

import pytest
import torch
from mmengine.runner import Runner

import mmlesion.utils.writing.atomic as aio
from mmlesion.testing import repo_root
from mmlesion.utils import (find_resumable_checkpoint,
                            verify_checkpoint_checksum)
from mmlesion.utils.writing.refusals import format_bytes
from tests.helpers.fault_runs import build_runner
from tests.helpers.tool_modules import load_tool
from tests.helpers.volume_demo import DEMO_CFG, scans_and_random_checkpoint


def _refuse_writes_of(monkeypatch, name: str, code: int) -> list:
    """The atomic writer's writes of files named ``name`` fail with
    ``code``: ``EROFS`` / ``EACCES`` when the file is opened, a full disk
    or quota after half the bytes are written. Returns the list that
    receives the size of each refused write."""
    real_open = open
    sizes = []

    class Full:

        def __init__(self, f) -> None:
            self.f = f

        def write(self, data) -> int:
            sizes.append(len(data))
            self.f.write(data[:len(data) // 2])
            self.f.flush()
            raise OSError(code, os.strerror(code))

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.f.close()

    def fake_open(path, mode='r', *args, **kwargs):
        if not (str(path).endswith(name) and 'w' in mode):
            return real_open(path, mode, *args, **kwargs)
        if code in (errno.EROFS, errno.EACCES):
            raise OSError(code, os.strerror(code), str(path))
        return Full(real_open(path, mode, *args, **kwargs))

    monkeypatch.setattr(aio, 'open', fake_open, raising=False)
    return sizes


def _one_error_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith('error:')]
    assert len(lines) == 1, text
    assert 'Traceback' not in text, text
    return lines[0]


@pytest.mark.parametrize('code', [errno.ENOSPC, errno.EDQUOT, errno.EROFS])
def test_train_full_disk_at_a_checkpoint(tmp_path, monkeypatch, code):
    """Epoch 2's checkpoint cannot be written: ``tools/train.py`` exits
    with one line (the file, its size, the free space, ``--resume``);
    epoch 1's checkpoint, its sidecar, the best file and
    ``last_checkpoint`` are intact (the outdated checkpoint is removed only
    after the new one is in place: ``max_keep_ckpts=1``), no temporary is
    left, and ``--resume`` would go on from epoch 1."""
    train = load_tool('train.py')
    work = tmp_path / 'work'
    config = tmp_path / 'toy.py'
    config.write_text('# the runner is built by the test\n')
    monkeypatch.setattr(Runner, 'from_cfg', classmethod(
        lambda cls, cfg: build_runner(str(work), epochs=2)))
    sizes = _refuse_writes_of(monkeypatch, 'epoch_2.pth', code)
    monkeypatch.setattr(sys, 'argv', [
        'train.py', str(config), '--work-dir', str(work)])
    monkeypatch.setenv('LOCAL_RANK', '0')
    torch.set_num_threads(1)
    with pytest.raises(SystemExit) as done:  # not the OSError: no traceback
        train.main()
    line = str(done.value.code)  # printed by Python, exit status 1
    assert '\n' not in line, line
    assert line.startswith(
        f'error: cannot write {work / "epoch_2.pth"}: {os.strerror(code)}')
    assert ' needed, ' in line and 'size unknown' not in line
    if sizes:  # the whole checkpoint's size, not the half written
        assert f': {format_bytes(sizes[0])} needed' in line \
            or f'); {format_bytes(sizes[0])} needed' in line
    assert ' free there' in line
    assert line.endswith('run the same command with --resume (without a '
                         'value: it goes on from the newest intact '
                         'checkpoint of the work dir, last saved '
                         'epoch_1.pth)')

    names = sorted(p.name for p in work.iterdir() if p.is_file())
    assert 'epoch_2.pth' not in names
    assert {'epoch_1.pth', 'epoch_1.pth.sha256', 'best_score_epoch_1.pth',
            'best_score_epoch_1.pth.sha256', 'last_checkpoint'} <= set(names)
    assert not [n for n in names if n.startswith(aio.TMP_PREFIX)]
    assert verify_checkpoint_checksum(str(work / 'epoch_1.pth'))
    assert (work / 'last_checkpoint').read_text() == str(
        work / 'epoch_1.pth')
    assert find_resumable_checkpoint(str(work)) == str(work / 'epoch_1.pth')


@pytest.fixture(scope='module')
def scan_and_checkpoint(tmp_path_factory):
    """A small synthetic chest scan and random weights of the demo model
    (saved by hand: no checksum sidecar)."""
    (scan, ), ckpt = scans_and_random_checkpoint(tmp_path_factory)
    return scan, ckpt


def test_infer_volume_full_disk_at_findings(scan_and_checkpoint, tmp_path,
                                            monkeypatch, capsys):
    """The disk fills up while ``findings.json`` is committed (its
    ``fsync``) in a run with ``--overwrite``: ``tools/infer_volume.py``
    prints one line (the file, at least the bytes staged, the free space,
    run the same command again) and returns 1; ``--out-dir`` holds exactly
    the earlier files, no staging folder is left. The checkpoint, saved
    without its sidecar, is named as unverified (item 15)."""
    scan, ckpt = scan_and_checkpoint
    out = tmp_path / 'out'
    out.mkdir()
    before = {'findings.json': '{"earlier": true}\n',
              'candidates.csv': 'earlier\n', 'notes.txt': 'my notes\n'}
    for name, text in before.items():
        (out / name).write_text(text)
    real_fsync = os.fsync

    def fsync(fd):
        path = os.readlink(f'/proc/self/fd/{fd}')
        if path.endswith('findings.json') and aio.TMP_PREFIX in path:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, 'fsync', fsync)
    torch.set_num_threads(1)
    code = load_tool('infer_volume.py').main([
        str(repo_root() / 'configs' / DEMO_CFG), str(ckpt), str(scan),
        '--out-dir', str(out), '--overwrite', '--max-pictures', '1'])
    captured = capsys.readouterr()
    assert code == 1
    line = _one_error_line(captured.err)
    assert line.startswith(f'error: cannot write {out / "findings.json"}: '
                           'No space left on device (ENOSPC); at least ')
    assert ' free there' in line
    assert 'Nothing written before is lost' in line
    assert line.endswith('run the same command again (--out-dir keeps its '
                         'earlier files until a complete new set replaces '
                         'them)')
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir()
                if p.name.startswith(aio.TMP_PREFIX)]
    assert f'{ckpt}: no checksum file' in captured.out + captured.err
    assert 'UNVERIFIED' in captured.out + captured.err


def test_infer_volume_batch_full_disk_then_same_command(
        scan_and_checkpoint, tmp_path, monkeypatch, capsys):
    """A batch (``--scan-list``) whose disk fills up when ``scans.csv`` is
    rewritten after the scan's set was committed: one line naming
    ``scans.csv`` and its size, status 1; the same command again skips
    the scan (its results are complete) and ends with status 0."""
    scan, ckpt = scan_and_checkpoint
    scan_list = tmp_path / 'today.txt'
    scan_list.write_text(f'{scan}\n')
    out = tmp_path / 'out'
    argv = [str(repo_root() / 'configs' / DEMO_CFG), str(ckpt),
            '--scan-list', str(scan_list), '--out-dir', str(out),
            '--max-pictures', '1']
    real_open = open
    calls = []

    def fake_open(path, mode='r', *args, **kwargs):
        if str(path).endswith('scans.csv') and 'w' in mode:
            calls.append(path)
            if len(calls) >= 2:  # from the rewrite after the scan on
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(aio, 'open', fake_open, raising=False)
    torch.set_num_threads(1)
    infer = load_tool('infer_volume.py')
    assert infer.main(argv) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f'error: cannot write {out / "scans.csv"}: No '
                           'space left on device (ENOSPC); ')
    assert ' bytes needed, ' in line
    assert line.endswith('run the same command again: scans with results '
                         'in --out-dir are skipped, the others run')
    assert (out / Path(scan).name[:-len('.mhd')] / 'findings.json').is_file()
    monkeypatch.undo()
    assert infer.main(argv) == 0
    assert 'skipped' in capsys.readouterr().out
