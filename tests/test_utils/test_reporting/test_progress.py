# Copyright (c) mmlesion contributors. All rights reserved.
import io

import pytest

from mmlesion.utils.reporting.progress import (LineProgress, TerminalProgress,
                                               progress_bar, track_progress)


class _Tty(io.StringIO):

    def isatty(self):
        return True


def test_plain_lines_off_a_terminal():
    out = io.StringIO()
    bar = progress_bar(2000, file=out, label='slices')
    assert isinstance(bar, LineProgress)
    for _ in range(2000):
        bar.update()
    bar.finish()
    text = out.getvalue()
    # one whole line per tenth of the work, never a carriage return
    assert '\r' not in text
    lines = text.splitlines()
    assert len(lines) == 10
    assert lines[0].startswith('slices: 200/2000 (10 %)')
    assert lines[-1].startswith('slices: 2000/2000 (100 %)')


def test_fewer_steps_than_lines():
    out = io.StringIO()
    bar = LineProgress(3, file=out)
    for _ in range(3):
        bar.update()
    assert [ln.split(' (')[0] for ln in out.getvalue().splitlines()] == [
        'progress: 1/3', 'progress: 2/3', 'progress: 3/3'
    ]


def test_batched_updates_and_zero_tasks():
    out = io.StringIO()
    bar = LineProgress(100, file=out)
    bar.update(55)
    bar.update(45)
    assert len(out.getvalue().splitlines()) == 2
    empty = io.StringIO()
    LineProgress(0, file=empty).update()
    assert empty.getvalue() == ''
    with pytest.raises(ValueError, match='task_num'):
        LineProgress(-1)


def test_mmengine_bar_on_a_terminal():
    out = _Tty()
    bar = progress_bar(4, file=out)
    assert isinstance(bar, TerminalProgress)
    for _ in range(4):
        bar.update()
    bar.finish()
    assert '\r' in out.getvalue() and out.getvalue().endswith('\n')


def test_track_progress_yields_everything():
    out = io.StringIO()
    assert list(track_progress(range(7), file=out, label='scans')) == list(
        range(7))
    assert out.getvalue().splitlines()[-1].startswith('scans: 7/7')
