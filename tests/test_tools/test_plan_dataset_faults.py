# Copyright (c) mmlesion contributors. All rights reserved.
"""``tools/plan_dataset.py`` killed (SIGKILL) at every write, before and
after the file is in place: the fingerprint's records, its picture, its
JSON, the config's check file and the config. The same command resumes
and ends with the files of an uninterrupted run, byte for byte (the
picture drawn), and no temporary file; killed after the config is in
place, the run is complete and the same command refuses to replace it.

The kills are those of :mod:`tests.helpers.fault_runs` (a forked child of
this process runs the tool's ``main``). The clock of the config's header
is fixed, and the picture is a stand-in written through the same atomic
writer from the whole fingerprint, its crops included (the montage's
crops are not in the JSON: a picture drawn from a fingerprint read back
would differ); matplotlib's drawing takes seconds and is tested with the
tool in ``test_plan_dataset.py``."""
import datetime
import json
import os
import os.path as osp
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmlesion.utils.writing.atomic import TMP_PREFIX, atomic_save_with
from tests.helpers.config_cache import memoize_metafile_lookup
from tests.helpers.fault_runs import recorded_commits, run_killed
from tests.helpers.masked_scans import write_masked_scans
from tests.helpers.tool_modules import load_tool


class _FixedClock(datetime.datetime):

    @classmethod
    def now(cls, tz=None):
        return datetime.datetime(2026, 1, 2, 3, 4, tzinfo=tz)


def _picture(fp, path):
    """The stand-in picture: the fingerprint and its crops' voxels."""
    data = json.dumps(fp.to_json(), sort_keys=True).encode() + b''.join(
        np.asarray(c.hu, np.float32).tobytes() for c in fp.crops)
    assert fp.crops  # computed, not read back from the JSON
    atomic_save_with(path, lambda p: Path(p).write_bytes(data))


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    """Three scans with two lesions each, converted with a 2D export."""
    root = tmp_path_factory.mktemp('plan')
    write_masked_scans(root, 3)
    assert load_tool('dataset_converters/convert_dataset.py').main([
        str(root / 'img'), str(root / 'lab'), '--out',
        str(root / 'volumes.json'), '--export-2d', str(root / 'x2d'),
        '--val-fraction', '0.34', '--test-fraction', '0.34']) == 0
    return root


def _files(folder):
    """The planner's outputs under ``folder`` (relative path -> bytes)."""
    out = {}
    for sub, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in ('img', 'lab', 'x2d')]
        for name in names:
            path = osp.join(sub, name)
            out[osp.relpath(path, folder)] = Path(path).read_bytes()
    return out


def test_plan_killed_at_every_write_resumes(dataset, tmp_path, monkeypatch,
                                            capsys):
    import mmlesion.apps.own_data.fingerprint_figure as figure
    memoize_metafile_lookup(parse_now=True)  # the forked runs inherit it
    monkeypatch.setattr(figure, 'draw_fingerprint', _picture)
    tool = load_tool('plan_dataset.py')
    monkeypatch.setattr(tool.datetime, 'datetime', _FixedClock)

    def plan(run):
        """Plan into a copy of the converted dataset in ``run``."""
        return lambda: tool.main([
            str(run / 'volumes.json'), '--export-2d', str(dataset / 'x2d'),
            '--gpu-mem-gb', '16', '--out', str(run / 'cfg' / 'mine.py')])

    def copy():
        """A fresh copy of the converted dataset, always at the same path
        (the fingerprint and the config name the annotation file)."""
        run = tmp_path / 'run'
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(dataset, run, ignore=shutil.ignore_patterns('x2d'))
        return run

    clean = copy()
    with recorded_commits() as commits:
        assert plan(clean)() == 0
    expected = _files(clean)
    assert {'volumes.fingerprint.png', 'volumes.fingerprint.json',
            osp.join('cfg', 'mine.py')} <= set(expected)
    names = [osp.basename(p) for p in commits]
    # the first scan's record, the picture, the JSON, the check, the config
    points = [(names[0], 1)] + [(n, 1) for n in names if not n.endswith(
        '.json') or n.startswith('volumes.')]
    assert [n for n, _ in points[1:]] == [
        'volumes.fingerprint.png', 'volumes.fingerprint.json',
        '.mine.py.check.py', 'mine.py']
    for name, n in points:
        for mode in ('before-rename', 'after-rename'):
            run = copy()
            assert run_killed(f'{name}:{n}:{mode}', plan(run)) == -9
            capsys.readouterr()
            code = plan(run)()
            err = capsys.readouterr().err
            if (name, mode) == ('mine.py', 'after-rename'):  # complete
                assert code == 1 and 'exists; use --overwrite' in err
            else:
                assert code == 0, (name, mode, err)
            got = _files(run)
            assert sorted(got) == sorted(expected), (name, mode)
            assert got == expected, (name, mode)
            assert not [p for p in got if TMP_PREFIX in p
                        or p.endswith('.check.py') or '.parts' in p]


def test_plan_refuses_an_unfinished_conversion(dataset, tmp_path, capsys):
    """The converter was killed (its records folder with ``run.json`` is
    there): the planner says so in one line and writes nothing."""
    run = tmp_path / 'run'
    shutil.copytree(dataset, run, ignore=shutil.ignore_patterns('x2d'))
    parts = run / 'volumes.json.parts'
    parts.mkdir()
    (parts / 'run.json').write_text('{}\n')
    before = _files(run)
    assert load_tool('plan_dataset.py').main([
        str(run / 'volumes.json'), '--export-2d', str(dataset / 'x2d'),
        '--gpu-mem-gb', '16', '--out', str(run / 'mine.py')]) == 2
    assert capsys.readouterr().err == (
        f'error: {run / "volumes.json"}: its conversion did not finish '
        f'({parts} holds its records; its outputs may be partial): run the '
        "converter's command again (it resumes), then plan\n")
    assert _files(run) == before
