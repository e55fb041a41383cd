# Copyright (c) mmlesion contributors. All rights reserved.
"""The dataset converter under faults: killed (SIGKILL) at every write of
its annotation file, records and 2D export, before and after the file is
in place, the same command resumes and ends with the files of an
uninterrupted run, byte for byte, and no temporary file; a full disk while
the PNGs are written is one line naming the export folder and the space
needed, and the same command then finishes the run; a semicolon-separated
box CSV is refused naming the semicolons.

The kills are those of :mod:`tests.helpers.fault_runs` (a forked child of
this process runs the tool's ``main``)."""
import errno
import os
import os.path as osp
import shutil

import cv2
import pytest

from mmlesion.apps.own_data.scan_records import records_dir
from mmlesion.utils.writing.atomic import TMP_PREFIX
from tests.helpers.fault_runs import recorded_commits, run_killed
from tests.helpers.masked_scans import write_masked_scans
from tests.helpers.tool_modules import load_tool


@pytest.fixture(autouse=True)
def _own_logger(log_messages):
    """A current logger of this test: the converter logs its patients and
    split before a refused write, and a logger an earlier test made under
    capsys writes to a closed stream (a 'Logging error' on stderr)."""
    yield


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    """Two scans with two lesions each, their masks, and the tool."""
    root = tmp_path_factory.mktemp('own')
    write_masked_scans(root, 2)
    return root, load_tool('dataset_converters/convert_dataset.py')


def _argv(root, run):
    """The command: outputs in ``run/`` (each run at the same depth, so
    that the relative scan paths are the same)."""
    return [str(root / 'img'), str(root / 'lab'), '--out',
            str(run / 'out' / 'volumes.json'), '--export-2d',
            str(run / 'out2d')]


def _files(run):
    """Every file under ``run`` (relative path -> bytes)."""
    out = {}
    for folder, _, names in os.walk(run):
        for name in names:
            path = osp.join(folder, name)
            out[osp.relpath(path, run)] = open(path, 'rb').read()
    return out


def _kill_points(commits, run):
    """Every file but the PNGs, and the first and last PNG of each series
    folder: ``(pattern, n)`` of :func:`~tests.helpers.fault_runs.
    install_kill` (the n-th commit of a file of that name)."""
    points, seen, series = [], {}, {}
    for path in commits:
        name = osp.basename(path)
        seen[name] = seen.get(name, 0) + 1
        if name.endswith('.png'):
            series.setdefault(osp.dirname(path), []).append(
                (name, seen[name]))
        else:
            points.append((name, seen[name], osp.relpath(path, run)))
    for folder, pngs in series.items():
        for name, n in {pngs[0], pngs[-1]}:
            points.append((name, n, osp.relpath(osp.join(folder, name),
                                                run)))
    return points


def test_killed_at_every_write_resumes_to_the_same_files(inputs, tmp_path,
                                                         capsys):
    root, tool = inputs
    clean = tmp_path / 'clean'
    with recorded_commits() as commits:
        assert tool.main(_argv(root, clean)) == 0
    expected = _files(clean)
    points = _kill_points(commits, str(clean))
    kinds = {osp.basename(p[2]) if not p[2].endswith('.png') else 'png'
             for p in points}
    assert {'volumes.json', 'DL_info.csv', 'series_map.json',
            'lens_extra_slices.json', 'run.json', 'png'} <= kinds
    for name, n, where in points:
        for mode in ('before-rename', 'after-rename'):
            run = tmp_path / f'{mode}-{where.replace("/", "_")}-{n}'
            code = run_killed(f'{name}:{n}:{mode}',
                              lambda: tool.main(_argv(root, run)))
            assert code == -9, (where, mode, capsys.readouterr().err)
            if mode == 'after-rename' and name == 'volumes.json':
                # the plan says the same command would go on
                assert tool.main(_argv(root, run) + ['--check-only']) == 0
            assert tool.main(_argv(root, run)) == 0, (
                where, mode, capsys.readouterr().err)
            got = _files(run)
            assert sorted(got) == sorted(expected), (where, mode)
            assert got == expected, (where, mode)
    assert not [p for p in _files(tmp_path) if TMP_PREFIX in p]


def test_killed_while_the_records_are_removed(inputs, tmp_path):
    """Killed after the last output, while the records are removed (one
    record removed by hand, as a kill inside the removal leaves them):
    the same command converts that scan again and ends with the same
    files; with only the empty folder left the run was complete."""
    root, tool = inputs
    assert tool.main(_argv(root, tmp_path / 'clean')) == 0
    expected = _files(tmp_path / 'clean')
    run = tmp_path / 'run'
    out = str(run / 'out' / 'volumes.json')
    assert run_killed('lens_extra_slices.json:1:after-rename',
                      lambda: tool.main(_argv(root, run))) == -9
    records = sorted(os.listdir(records_dir(out)))
    assert len(records) == 3 and 'run.json' in records
    os.remove(osp.join(records_dir(out), next(
        r for r in records if r != 'run.json')))
    assert tool.main(_argv(root, run)) == 0
    assert _files(run) == expected
    os.mkdir(records_dir(out))  # emptied, not yet removed
    assert tool.main(_argv(root, run)) == 1  # complete: refused as such
    assert _files(run) == expected and not osp.exists(records_dir(out))


def test_full_disk_at_the_annotation_file(inputs, tmp_path, monkeypatch,
                                          capsys):
    """The disk fills up while ``volumes.json`` is committed (its
    ``fsync``): one line naming it; then the same command finishes."""
    root, tool = inputs
    assert tool.main(_argv(root, tmp_path / 'clean')) == 0
    expected = _files(tmp_path / 'clean')
    real_fsync = os.fsync

    def fsync(fd):
        if os.readlink(f'/proc/self/fd/{fd}').endswith('-volumes.json'):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    run = tmp_path / 'run'
    with monkeypatch.context() as patch:
        patch.setattr(os, 'fsync', fsync)
        capsys.readouterr()
        assert tool.main(_argv(root, run)) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith(
        f'error: cannot write {run / "out" / "volumes.json"}: No space left '
        'on device (ENOSPC); '), err
    assert tool.main(_argv(root, run)) == 0
    assert _files(run) == expected


def test_full_disk_one_line_then_same_command(inputs, tmp_path, capsys,
                                              monkeypatch):
    """``cv2.imwrite`` returns False on a full disk (its 13th PNG, in the
    second scan): one line naming the export folder, the space needed for
    the rest and the space free, status 1; with space again the same
    command resumes and writes what an uninterrupted run writes."""
    root, tool = inputs
    assert tool.main(_argv(root, tmp_path / 'clean')) == 0
    expected = _files(tmp_path / 'clean')
    real_imwrite, real_usage, calls = cv2.imwrite, shutil.disk_usage, []

    def imwrite(path, img, *args):
        calls.append(path)
        return len(calls) < 13 and real_imwrite(path, img, *args)

    def disk_usage(path):
        usage = real_usage(path)
        return type(usage)(usage.total, usage.total - 100, 100)

    run = tmp_path / 'full'
    with monkeypatch.context() as patch:
        patch.setattr(cv2, 'imwrite', imwrite)
        patch.setattr(shutil, 'disk_usage', disk_usage)
        capsys.readouterr()
        assert tool.main(_argv(root, run)) == 1
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith('error:')]
    assert len(lines) == 1 and 'Traceback' not in err, err
    line = lines[0]
    assert line.startswith(f'error: cannot write {run / "out2d"}: No space '
                           'left on device (ENOSPC); ')
    # 8 PNGs left of the second scan (2 written), none after it
    assert 'estimated: the 8 PNGs left of 000002_01_01, ' in line
    assert '100 bytes free there' in line
    assert line.endswith('run the same command again (it resumes: the '
                         'scans converted before are not converted again)')
    assert tool.main(_argv(root, run)) == 0
    assert _files(run) == expected


def test_full_disk_estimate_counts_the_scans_left(inputs, tmp_path, capsys,
                                                  monkeypatch):
    """A full disk at the first scan's first PNG: the estimate is the
    uncompressed slice for all 20 PNGs of the two scans."""
    root, tool = inputs
    monkeypatch.setattr(cv2, 'imwrite', lambda *a: False)
    real_usage = shutil.disk_usage
    monkeypatch.setattr(shutil, 'disk_usage', lambda p: type(real_usage(p))(
        10**9, 10**9, 0))
    assert tool.main(_argv(root, tmp_path)) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    # (2 * 20 * 20 + 4096) bytes a PNG, 10 + 10 of them
    assert '; 95.6 KiB needed (estimated: the 10 PNGs left of 000001_01_01 '\
        'and 1 more volume like it, 4.8 KiB a PNG), 0 bytes free' in line


def test_semicolon_box_csv_named(inputs, tmp_path, capsys):
    root, tool = inputs
    boxes = tmp_path / 'boxes.csv'
    boxes.write_text('seriesuid;coordX;coordY;coordZ;diameter_mm\n'
                     'p0;4,5;4;5;3\n')
    argv = [str(root / 'img'), '--boxes', str(boxes), '--out',
            str(tmp_path / 'a.json')]
    assert tool.main(argv) == 1
    line = capsys.readouterr().err.strip()
    assert line == (
        f'error: {boxes} line 1: the fields are separated by semicolons '
        "(4 ';' and no ',' on that line): a world boxes CSV must be "
        'comma-separated. Save it as "CSV (comma delimited)" with the '
        'point as decimal mark, or replace the decimal commas by points '
        'and then the semicolons by commas')
    # a comma file with one row written with semicolons: that row named
    boxes.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n'
                     'p0,4,4,5,3\np1;4;4;5;3\n')
    assert tool.main(argv) == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith(f'error: {boxes} line 3: the fields are '
                           "separated by semicolons (4 ';' and no ','")
    # tabs, and a split file with semicolons
    boxes.write_text('seriesuid\tcoordX\tcoordY\tcoordZ\tdiameter_mm\n')
    assert tool.main(argv) == 1
    assert "separated by tabs (4 '\\t' and no ','" in capsys.readouterr().err
    split = tmp_path / 'split.csv'
    split.write_text('volume_id;split\np0;train\n')
    assert tool.main([str(root / 'img'), str(root / 'lab'), '--split-file',
                      str(split), '--out', str(tmp_path / 'a.json')]) == 1
    assert capsys.readouterr().err.startswith(
        f'error: {split} line 1: the fields are separated by semicolons '
        "(1 ';' and no ','")
    assert not (tmp_path / 'a.json').exists()
