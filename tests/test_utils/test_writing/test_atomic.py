# Copyright (c) mmlesion contributors. All rights reserved.
"""Atomic files and output sets."""
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
