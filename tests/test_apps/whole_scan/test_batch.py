# Copyright (c) mmlesion contributors. All rights reserved.
"""Many scans through one detector (tools/infer_volume.py SCAN SCAN ... /
--scan-list; mmlesion.apps.whole_scan.batch)."""
import csv
import json
import threading
from pathlib import Path

import pytest
import torch

from mmlesion.apps.whole_scan import batch as volume_batch
from mmlesion.apps.whole_scan.batch import (BatchOptions, Finishing,
                                            prefetched, run_batch_inference)
from mmlesion.apis.whole_scan.run import run_volume_inference
from mmlesion.apps.whole_scan.scan_list import scan_folder_name
from mmlesion.apis.whole_scan.settings import DetectionSettings, RunSettings
from mmlesion.testing import repo_root
from mmlesion.utils.huge_pages import (numpy_huge_pages,
                                       numpy_huge_pages_enabled)
from tests.helpers.tool_modules import load_tool
from tests.helpers.volume_demo import DEMO_CFG, scans_and_random_checkpoint

CFG_PATH = str(repo_root() / 'configs' / DEMO_CFG)
#: A low score threshold (random weights), no progress bars.
QUIET = RunSettings(detection=DetectionSettings(score_thr=.01,
                                                show_progress=False))


@pytest.fixture(scope='module')
def scans_and_checkpoint(tmp_path_factory):
    """Three small synthetic chest scans (.mhd) and random weights of the
    demo model."""
    scans, ckpt = scans_and_random_checkpoint(
        tmp_path_factory, seed=4, num_luna=3, size_range=(56, 64),
        num_slices_range=(10, 12))
    return [str(s) for s in scans], ckpt


def _findings(folder: Path) -> list:
    return json.loads((folder / 'findings.json').read_text())['findings']


def _summary(out: Path) -> list:
    with open(out / 'scans.csv', newline='') as f:
        return list(csv.DictReader(f))


def _recording_load(scans: str, broken: str):
    """A ``load`` for :func:`prefetched` that records which scans it was
    asked for (events) and fails on ``broken``."""
    loaded = {s: threading.Event() for s in scans}

    def load(scan):
        loaded[scan].set()
        if scan == broken:
            raise ValueError(f'{scan} is broken')
        return scan.upper()

    return loaded, load


@pytest.mark.parametrize('ahead', [1, 2, 3])
def test_prefetch_reads_as_many_scans_ahead_as_asked(ahead):
    """While the caller holds the first scan, the thread loads the next
    ``ahead`` scans (one after another) and no more; the scans come in
    order, a failing one in its place."""
    scans = list('abcde')
    loaded, load = _recording_load('abcde', broken='c')
    seen = []
    for scan, value in prefetched(scans, load, ahead=ahead):
        if scan == 'a':
            for later in scans[1:ahead + 1]:
                assert loaded[later].wait(timeout=30), later
            # one more would be loading now if it were allowed to
            assert not loaded[scans[ahead + 1]].wait(timeout=0.3)
        seen.append((scan, str(value)))
    assert seen == [('a', 'A'), ('b', 'B'), ('c', 'c is broken'),
                    ('d', 'D'), ('e', 'E')]
    with pytest.raises(ValueError, match='ahead must be >= 1'):
        list(prefetched(scans, load, ahead=0))


@pytest.mark.parametrize('prefetch', [True, False])
def test_next_scan_loads_while_this_one_runs_only_with_prefetch(prefetch):
    """With prefetching the second scan is loaded while the caller still
    works on the first (the caller waits for it); without, only after."""
    loaded, load = _recording_load('abc', broken='b')
    seen = []
    for scan, value in prefetched(list('abc'), load, prefetch=prefetch):
        if scan == 'a':
            # the caller is busy with 'a': is 'b' being read meanwhile?
            assert loaded['b'].wait(timeout=30 if prefetch else 0.2) is (
                prefetch)
        seen.append((scan, str(value)))
    assert seen == [('a', 'A'), ('b', 'b is broken'), ('c', 'C')]


def test_batch_gives_each_scan_its_single_run_findings(
        scans_and_checkpoint, tmp_path):
    """One model over three scans, with and without overlapping: each
    scan's findings.json holds the findings of infer_volume on that scan
    alone; scans.csv lists them."""
    scans, ckpt = scans_and_checkpoint
    torch.set_num_threads(1)
    single = {}
    for scan in scans:
        out = tmp_path / 'single' / scan_folder_name(scan)
        run_volume_inference(CFG_PATH, str(ckpt), scan, out_dir=str(out),
                             run_settings=QUIET)
        single[scan_folder_name(scan)] = _findings(out)
    assert sum(len(f) for f in single.values()) > 0  # something to compare
    for overlap in (True, False):
        out = tmp_path / f'batch_{overlap}'
        rows = run_batch_inference(CFG_PATH,
                                   str(ckpt),
                                   scans,
                                   str(out),
                                   QUIET,
                                   options=BatchOptions(overlap=overlap))
        assert [r.status for r in rows] == ['done'] * 3
        for name, findings in single.items():
            assert _findings(out / name) == findings, (overlap, name)
            assert (out / name / 'candidates.csv').read_bytes() == (
                tmp_path / 'single' / name / 'candidates.csv').read_bytes()
        table = _summary(out)
        assert [r['folder'] for r in table] == list(single)
        assert [int(r['findings']) for r in table] == [
            len(f) for f in single.values()]
        assert all(float(r['total_seconds']) > 0 for r in table)


def test_a_failing_scan_is_named_and_the_batch_goes_on_and_resumes(
        scans_and_checkpoint, tmp_path, capsys):
    """A broken file in the middle: the other scans are done, scans.csv and
    the console name the file, the exit code is 1. The same command again
    skips what is done; a scan whose results are gone runs again."""
    scans, ckpt = scans_and_checkpoint
    bad = tmp_path / 'broken.nii.gz'
    bad.write_bytes(b'not a nifti file')
    listing = tmp_path / 'today.txt'
    listing.write_text(f'{scans[0]}\n{bad}\n{scans[1]}\n')
    out = tmp_path / 'out'
    args = [CFG_PATH, str(ckpt), '--scan-list', str(listing), '--out-dir',
            str(out), '--score-thr', '0.01']
    torch.set_num_threads(1)
    tool = load_tool('infer_volume.py')
    assert tool.main(args) == 1
    stdout = capsys.readouterr().out
    rows = _summary(out)
    assert [r['status'] for r in rows] == ['done', 'failed', 'done']
    assert str(bad) in rows[1]['error']
    assert f'failed   {bad}: ' in stdout
    assert '3 scans: 2 done, 0 skipped, 1 failed' in stdout
    first = (out / rows[0]['folder'] / 'findings.json').read_bytes()

    bad.unlink()  # the broken file removed from the list, results lost
    listing.write_text(f'{scans[0]}\n{scans[1]}\n')
    (out / rows[2]['folder'] / 'findings.json').unlink()
    assert tool.main(args) == 0
    assert [r['status'] for r in _summary(out)] == ['skipped', 'done']
    assert (out / rows[0]['folder'] / 'findings.json').read_bytes() == first
    assert (out / rows[2]['folder'] / 'findings.json').is_file()
    assert tool.main(args + ['--overwrite']) == 0
    assert [r['status'] for r in _summary(out)] == ['done', 'done']


def test_batch_is_refused_before_the_model_loads(scans_and_checkpoint,
                                                  tmp_path, capsys,
                                                  monkeypatch):
    scans, ckpt = scans_and_checkpoint

    def fail(*args, **kwargs):
        raise AssertionError('the model was loaded')

    monkeypatch.setattr(volume_batch, 'load_volume_run', fail)
    tool = load_tool('infer_volume.py')
    twin = tmp_path / 'other' / Path(scans[0]).name
    twin.parent.mkdir()
    twin.write_bytes(b'x')
    assert tool.main([CFG_PATH, str(ckpt), scans[0], str(twin),
                      '--out-dir', str(tmp_path / 'o')]) == 1
    assert 'would both write their results' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main([CFG_PATH, str(ckpt), scans[0], scans[1], '--series-uid',
                   '1.2', '--out-dir', str(tmp_path / 'o')])
    assert '--series-uid' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main([CFG_PATH, str(ckpt), '--out-dir', str(tmp_path / 'o')])
    assert 'give a SCAN, --scan-list, --scan-tree or --dicomweb' in \
        capsys.readouterr().err
    assert not (tmp_path / 'o').exists()
    blocked = tmp_path / 'a_file'
    blocked.write_text('not a folder')
    assert tool.main([CFG_PATH, str(ckpt), scans[0], scans[1], '--out-dir',
                      str(blocked / 'out')]) == 1
    assert 'is a file, not a folder' in capsys.readouterr().err


def test_a_scan_is_written_while_the_next_is_detected(
        scans_and_checkpoint, tmp_path, monkeypatch):
    """The writer thread (``Finishing(processes=0)``) writes scan 1 while
    the model detects scan 2; a scan whose files cannot be written is
    failed, the others are done (the same in processes:
    test_batch_finishing.py)."""
    scans, ckpt = scans_and_checkpoint
    detecting = [threading.Event() for _ in scans]
    detect, write = volume_batch.detect_scan, volume_batch.write_scan
    overlapped = []

    def detect_scan(model, volume, *args, **kwargs):
        detecting[scans.index(str(volume.meta['path']))].set()
        return detect(model, volume, *args, **kwargs)

    def write_scan(result, *args):
        i = scans.index(result.scan)
        if i + 1 < len(scans):  # is the next scan detected meanwhile?
            overlapped.append(detecting[i + 1].wait(timeout=60))
        if i == 1:
            raise OSError(28, 'No space left on device')
        return write(result, *args)

    monkeypatch.setattr(volume_batch, 'detect_scan', detect_scan)
    monkeypatch.setattr(volume_batch, 'write_scan', write_scan)
    torch.set_num_threads(1)
    rows = run_batch_inference(
        CFG_PATH,
        str(ckpt),
        scans,
        str(tmp_path / 'out'),
        QUIET,
        options=BatchOptions(finishing=Finishing(processes=0)))
    assert overlapped == [True, True]
    assert [r.status for r in rows] == ['done', 'failed', 'done']
    assert 'No space left on device' in rows[1].error
    assert [r['status'] for r in _summary(tmp_path / 'out')] == [
        'done', 'failed', 'done']


@pytest.mark.skipif(numpy_huge_pages_enabled() is None,
                    reason="this numpy has no huge-page switch")
@pytest.mark.parametrize('huge_pages', [False, True])
def test_runs_set_numpy_huge_pages_as_asked_and_restore_them(
        scans_and_checkpoint, tmp_path, monkeypatch, huge_pages):
    """A batch and a single scan run with numpy's huge-page advice as
    ``RunSettings.huge_pages`` (``--huge-pages``) says, the caller's
    setting restored afterwards."""
    from mmlesion.apis.whole_scan import run as volume_run
    scans, ckpt = scans_and_checkpoint
    seen = []

    def record(*args, **kwargs):
        seen.append(numpy_huge_pages_enabled())

    monkeypatch.setattr(volume_batch._Batch, 'run', record)
    monkeypatch.setattr(volume_run, '_run_scan', record)
    tool = load_tool('infer_volume.py')
    flags = ['--huge-pages'] if huge_pages else []
    settings = tool._run_settings(tool.parse_args(
        [CFG_PATH, str(ckpt), scans[0], '--out-dir', 'o'] + flags))
    assert settings.huge_pages is huge_pages
    with numpy_huge_pages(not huge_pages):
        run_batch_inference(CFG_PATH, str(ckpt), scans[:2],
                            str(tmp_path / 'batch'), settings)
        run_volume_inference(CFG_PATH, str(ckpt), scans[0],
                             str(tmp_path / 'single'), settings)
        assert numpy_huge_pages_enabled() is (not huge_pages)
    assert seen == [huge_pages, huge_pages]


def test_read_ahead_option_reaches_the_batch(scans_and_checkpoint, tmp_path,
                                             monkeypatch):
    """``--read-ahead N`` is the batch's ``Finishing.read_ahead`` (2 by
    default); less than 1 is refused by the parser."""
    scans, ckpt = scans_and_checkpoint
    seen = []

    def record(*args, options=None, **kwargs):
        seen.append(options.finishing.read_ahead)
        return []

    monkeypatch.setattr(volume_batch, 'run_batch_inference', record)
    tool = load_tool('infer_volume.py')
    base = [CFG_PATH, str(ckpt)] + scans[:2] + ['--out-dir',
                                                str(tmp_path / 'o')]
    assert tool.main(base) == 0
    assert tool.main(base + ['--read-ahead', '1']) == 0
    assert seen == [2, 1]
    with pytest.raises(SystemExit):
        tool.parse_args(base + ['--read-ahead', '0'])
