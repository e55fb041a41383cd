# Copyright (c) mmlesion contributors. All rights reserved.
"""Atomic files and output sets."""
import errno
import os

import pytest

import mmlesion.utils.writing.atomic as aio
from mmlesion.utils import (AtomicOutputSet, atomic_save_with, atomic_write,
                            atomic_write_text)


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / 'candidates.csv'
    atomic_write_text(str(path), 'old\n')
    with pytest.raises(RuntimeError):
        with atomic_write(str(path)) as f:
            f.write('half a line')
            raise RuntimeError('killed')
    assert path.read_text() == 'old\n'
    assert _names(tmp_path) == ['candidates.csv']  # temporary removed


def test_save_with_path_writers(tmp_path):
    path = tmp_path / 'sub' / 'a.png'
    seen = []
    atomic_save_with(str(path), lambda p: seen.append(p) or open(
        p, 'wb').write(b'png'))
    assert path.read_bytes() == b'png'
    assert seen[0].endswith('.png') and aio.TMP_PREFIX in seen[0]
    with pytest.raises(OSError, match='reported a failure'):
        atomic_save_with(str(tmp_path / 'b.png'), lambda p: False)
    assert not (tmp_path / 'b.png').exists()
    assert _names(tmp_path) == ['sub']


def test_output_set_appears_together_and_keeps_user_files(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    (out / 'old.png').write_text('old run')
    outputs = AtomicOutputSet(str(out))
    with outputs.open('findings.json') as f:
        f.write('{}')
    with open(outputs.path('key_slices/a.png'), 'w') as f:
        f.write('png')
    assert _names(out) == ['notes.txt', 'old.png']  # nothing yet
    outputs.commit(last='findings.json', stale=['old.png'])
    assert _names(out) == ['findings.json', 'key_slices', 'notes.txt']
    assert (out / 'key_slices' / 'a.png').read_text() == 'png'
    assert not [p for p in os.listdir(tmp_path)
                if p.startswith(aio.TMP_PREFIX)]
    with pytest.raises(ValueError, match='inside'):
        outputs.path('../escape.txt')


def test_output_set_discarded_on_error(tmp_path):
    out = tmp_path / 'out'
    with pytest.raises(KeyError):
        with AtomicOutputSet(str(out)) as outputs:
            with outputs.open('findings.json') as f:
                f.write('{}')
            raise KeyError('killed')
    assert not out.exists()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('fault', ['mounted-read-only', 'read-only-probe',
                                   'read-only-folder', 'full'])
def test_unwritable_folder_says_why_in_one_line(tmp_path, monkeypatch,
                                                fault):
    """Issue 64 item 5: a folder on a file system mounted read-only is
    named as such (not blamed on permissions, although ``os.access`` says
    no there too), a folder read-only for this user as read-only, a full
    one with its free space; one line each, before the work starts."""
    real_statvfs = os.statvfs

    def statvfs(path, flag=0, free=None):
        st = real_statvfs(path)
        values = list(st)
        values[4] = st.f_bavail if free is None else free
        values[8] = st.f_flag | flag
        return os.statvfs_result(values)

    if fault == 'mounted-read-only':
        monkeypatch.setattr(aio.os, 'statvfs',
                            lambda p: statvfs(p, flag=os.ST_RDONLY))
        monkeypatch.setattr(aio.os, 'access', lambda *a: False)
        expected = 'Read-only file system (mounted read-only); remount it'
    elif fault == 'read-only-probe':  # a remount the flags do not show yet
        real_open = open

        def open_probe(path, *args, **kwargs):
            if 'probe' in str(path):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(aio, 'open', open_probe, raising=False)
        expected = 'Read-only file system (mounted read-only); remount it'
    elif fault == 'read-only-folder':
        monkeypatch.setattr(aio.os, 'access', lambda *a: False)
        expected = 'read-only for this user (not writable: its permissions)'
    else:
        monkeypatch.setattr(aio.os, 'statvfs', lambda p: statvfs(p, free=1))
        expected = 'only 0.0 MiB free on its file system, 16.0 MiB needed'
    out = tmp_path / 'out' / 'case1'
    with pytest.raises(aio.OutputDirError) as err:
        aio.check_writable_dir(str(out), what='--out-dir')
    message = str(err.value)
    assert message.startswith(
        f'--out-dir {out}: cannot write to {tmp_path}: {expected}')
    assert '\n' not in message
    assert ('permissions' in message) == (fault == 'read-only-folder')
    assert os.listdir(tmp_path) == []  # the probe is gone
