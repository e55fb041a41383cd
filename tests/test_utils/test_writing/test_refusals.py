# Copyright (c) mmlesion contributors. All rights reserved.
"""A full disk, a quota, a read-only file system under the atomic writers:
one line naming the file, the bytes needed and free; nothing lost.

The faults are injected into the writers' low-level calls (``open``'s
``write``, ``os.replace``, ``os.fsync``), in-process.
"""
import errno
import os
import shutil
from pathlib import Path

import pytest

import mmlesion.utils.writing.atomic as aio
from mmlesion.utils.writing.atomic import (TMP_PREFIX, AtomicOutputSet,
                                           atomic_write_bytes,
                                           atomic_write_text)
from mmlesion.utils.writing.refusals import (WriteFailure, WriteRefusedError,
                                             format_bytes,
                                             output_write_refusal)


class _FullFile:
    """A file whose ``write`` puts half the bytes down, then fails with
    ``code`` (``f.write`` raises without a file name, as the kernel's
    ``ENOSPC`` does)."""

    def __init__(self, f, code: int) -> None:
        self._f, self._code = f, code

    def write(self, data) -> int:
        self._f.write(data[:len(data) // 2])
        self._f.flush()
        raise OSError(self._code, os.strerror(self._code))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def _fill_disk_at(monkeypatch, name: str, code: int) -> None:
    """Writes of a file ending with ``name`` fail with ``code``."""
    real_open = open

    def fake_open(path, mode='r', *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        if str(path).endswith(name) and 'w' in mode:
            return _FullFile(f, code)
        return f

    monkeypatch.setattr(aio, 'open', fake_open, raising=False)


def _temporaries(folder: Path) -> list:
    return [p.name for p in folder.iterdir() if p.name.startswith(TMP_PREFIX)]


@pytest.mark.parametrize('code', [errno.ENOSPC, errno.EDQUOT])
def test_full_disk_names_file_needed_and_free(tmp_path, monkeypatch, code):
    """The write of ``epoch_2.pth`` fails half-way: the error names its
    final path, the bytes of the whole file and the bytes free there; the
    old file under that name and the folder are as before."""
    target = tmp_path / 'epoch_2.pth'
    target.write_bytes(b'old checkpoint')
    data = b'x' * 300_000
    _fill_disk_at(monkeypatch, 'epoch_2.pth', code)
    with pytest.raises(WriteRefusedError) as info:
        atomic_write_bytes(str(target), data)
    err = info.value
    assert err.errno == code and isinstance(err, OSError)
    text = str(err)
    assert '\n' not in text
    assert text.startswith(f'cannot write {target}: {os.strerror(code)}')
    assert f'{format_bytes(len(data))} needed' in text  # 293.0 KiB
    assert err.failure.needed == len(data)
    assert err.failure.free == pytest.approx(
        shutil.disk_usage(tmp_path).free, rel=0.05)
    assert ' free there' in text
    assert 'Nothing written before is lost' in text
    assert target.read_bytes() == b'old checkpoint'
    assert _temporaries(tmp_path) == []


def test_read_only_at_rename(tmp_path, monkeypatch):
    """``os.replace`` refused (a file system remounted read-only): the
    text file keeps its old content, the temporary is removed."""
    target = tmp_path / 'last_checkpoint'
    target.write_text('epoch_1.pth')

    def replace(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), src, None, dst)

    monkeypatch.setattr(aio.os, 'replace', replace)
    with pytest.raises(WriteRefusedError,
                       match=r'cannot write .*last_checkpoint: Read-only '
                       r'file system \(EROFS\); 11 bytes needed') as info:
        atomic_write_text(str(target), 'epoch_2.pth')
    assert 'remount it read-write' in str(info.value)
    assert target.read_text() == 'epoch_1.pth'
    assert _temporaries(tmp_path) == []


def test_output_set_commit_on_full_disk(tmp_path, monkeypatch):
    """``fsync`` of the staged ``findings.json`` fails (the disk filled
    up): the error names its final path and at least the staged bytes;
    ``out_dir`` holds the previous set, the staging folder is gone."""
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'findings.json').write_text('old')
    real_fsync = os.fsync

    def fsync(fd):
        if os.readlink(f'/proc/self/fd/{fd}').endswith('findings.json'):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(aio.os, 'fsync', fsync)
    with pytest.raises(WriteRefusedError) as info:
        with AtomicOutputSet(str(out)) as outputs:
            with outputs.open('candidates.csv') as f:
                f.write('c' * 5000)
            with outputs.open('findings.json') as f:
                f.write('new')
            outputs.commit(last='findings.json')
    failure = info.value.failure
    assert failure.path == str(out / 'findings.json')
    assert failure.needed == 5003 and failure.needed_at_least
    assert 'at least 4.9 KiB needed' in str(info.value)
    assert sorted(p.name for p in out.iterdir()) == ['findings.json']
    assert (out / 'findings.json').read_text() == 'old'
    assert _temporaries(tmp_path) == []


def test_raw_errors_of_a_tool(tmp_path):
    """A raw ``OSError`` of a write that bypassed the atomic writers: a
    full disk without a file name names the output folder (and does not
    claim that nothing is lost); a permission error outside the output
    folder (an input) is not a refused write; other errors neither."""
    refused = output_write_refusal(
        OSError(errno.ENOSPC, 'No space left on device'), str(tmp_path))
    assert refused.failure.path == str(tmp_path)
    assert refused.failure.needed is None
    assert 'size unknown' in str(refused)
    assert 'Nothing written before is lost' not in str(refused)
    inside = tmp_path / 'vis_data' / 'scalars.json'
    assert output_write_refusal(
        PermissionError(errno.EACCES, 'Permission denied', str(inside)),
        str(tmp_path)).failure.path == str(inside)
    assert output_write_refusal(
        PermissionError(errno.EACCES, 'Permission denied', '/data/a.png'),
        str(tmp_path)) is None
    assert output_write_refusal(
        FileNotFoundError(errno.ENOENT, 'No such file'), str(tmp_path)) \
        is None


def test_refusal_survives_pickling(tmp_path):
    """A refused write crosses process boundaries (worker pools) whole."""
    import pickle
    refused = output_write_refusal(
        OSError(errno.EROFS, 'Read-only file system'), str(tmp_path))
    again = pickle.loads(pickle.dumps(refused))
    assert str(again) == str(refused) and again.errno == errno.EROFS


def test_a_lower_bound_of_nothing_is_no_size(tmp_path):
    """A write refused before its first byte knows no size: the line says
    so, never "at least 0 bytes needed" (issue 64 item 5)."""
    failure = WriteFailure(path=str(tmp_path / 'a.png'), errno=errno.ENOSPC,
                           needed=0, needed_at_least=True, free=0,
                           folder=str(tmp_path))
    assert '; size unknown, 0 bytes free there.' in failure.message()
    assert 'at least 0' not in failure.message()


def test_a_tool_names_a_read_only_work_dir_in_one_line(tmp_path):
    """``tools/test.py`` on a read-only file system: mmengine's runner
    creating the work dir raises a raw ``OSError`` (EROFS); the tool's
    handler exits with one line naming the folder and the read-only file
    system, not a traceback (issue 64 item 5); another error is left to
    the caller."""
    from mmengine.utils import mkdir_or_exist

    from mmlesion.utils.writing.refusals import exit_on_refused_write
    work = tmp_path / 'work'
    real = os.makedirs

    def makedirs(path, *args, **kwargs):
        if str(path).startswith(str(work)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, 'makedirs', makedirs)
        with pytest.raises(OSError) as raised:
            mkdir_or_exist(str(work))
    with pytest.raises(SystemExit) as done:
        exit_on_refused_write(raised.value, str(work))
    line = str(done.value.code)
    assert line.startswith(f'error: cannot write {work}: Read-only file '
                           'system (EROFS); ')
    assert line.endswith('To go on: remount it read-write or write to '
                         'another file system, then run it again')
    assert '\n' not in line
    assert exit_on_refused_write(
        FileNotFoundError(errno.ENOENT, 'No such file', 'x.pth'),
        str(work)) is None
