# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/infer_volume.py outputs under faults: a set that appears
together, provenance, a refused out-dir."""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mmlesion.utils.writing.atomic as aio
from mmlesion.apis.whole_scan import run as volume_run
from mmlesion.apis.whole_scan.run import run_volume_inference
from mmlesion.apis.whole_scan.settings import DetectionSettings, RunSettings
from mmlesion.testing import repo_root
from mmlesion.utils import OutputDirError, sha256_file
from tests.helpers.volume_demo import DEMO_CFG, scans_and_random_checkpoint

KILL_AT_REPORT = (
    'import os, runpy, signal, sys\n'
    'import mmlesion.visualization.volume_report as report\n'
    'report.write_html_report = lambda *a, **k: os.kill(os.getpid(), '
    'signal.SIGKILL)\n'
    'sys.argv = sys.argv[1:]\n'
    "runpy.run_path(sys.argv[0], run_name='__main__')\n")


@pytest.fixture(scope='module')
def scan_and_checkpoint(tmp_path_factory):
    """A small synthetic chest scan and random weights of the demo model."""
    (scan, ), ckpt = scans_and_random_checkpoint(tmp_path_factory)
    return scan, ckpt


def _cli(scan, ckpt, out) -> list:
    return [str(repo_root() / 'configs' / DEMO_CFG), str(ckpt), str(scan),
            '--out-dir', str(out), '--score-thr', '0.01']


def _run(scan, ckpt, out, overwrite=False):
    torch.set_num_threads(1)
    return run_volume_inference(
        str(repo_root() / 'configs' / DEMO_CFG), str(ckpt), str(scan),
        out_dir=str(out), run_settings=RunSettings(
            detection=DetectionSettings(score_thr=.01), overwrite=overwrite))


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob('*')) if p.is_file()}


def test_killed_run_leaves_previous_set(scan_and_checkpoint, tmp_path):
    """Killed (SIGKILL) while writing with ``--overwrite``: the folder holds
    exactly the previous run's files and the user's file; the next run
    removes the staging folder and writes a complete set with provenance."""
    scan, ckpt = scan_and_checkpoint
    out = tmp_path / 'out'
    _run(scan, ckpt, out)
    (out / 'notes.txt').write_text('my notes\n')
    before = _snapshot(out)
    assert {'findings.json', 'candidates.csv', 'overview.png',
            'report.html', 'notes.txt'} <= set(before)

    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = str(repo_root()) + os.pathsep + env.get(
        'PYTHONPATH', '')
    proc = subprocess.run(
        [sys.executable, '-c', KILL_AT_REPORT,
         str(repo_root() / 'tools' / 'infer_volume.py')] +
        _cli(scan, ckpt, out) + ['--overwrite'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=240)
    assert proc.returncode == -9, proc.stdout[-4000:]
    assert 'COCO classes' not in proc.stdout  # a checkpoint was given
    assert _snapshot(out) == before
    staging = [p for p in tmp_path.iterdir()
               if p.name.startswith(aio.TMP_PREFIX)]
    assert len(staging) == 1  # the killed run's staging folder

    _run(scan, ckpt, out, overwrite=True)
    assert not [p for p in tmp_path.iterdir()
                if p.name.startswith(aio.TMP_PREFIX)]
    assert (out / 'notes.txt').read_text() == 'my notes\n'
    record = json.loads((out / 'findings.json').read_text())
    prov = record['provenance']
    assert prov['checkpoint'] == dict(
        path=str(ckpt.resolve()), sha256=sha256_file(str(ckpt)))
    assert prov['config']['path'].endswith(DEMO_CFG)
    assert 'rpn_head' in prov['config']['text']
    assert set(prov['versions']) >= {'mmlesion', 'mmdet', 'mmcv',
                                     'mmengine', 'torch'}
    rows = (out / 'candidates.csv').read_text().splitlines()
    assert len(rows) == len(record['findings']) + 1


def _no_detection(*args, **kwargs):
    raise AssertionError('the detection ran although --out-dir is unusable')


@pytest.mark.parametrize('fault', ['no-permission', 'read-only', 'full'])
def test_unusable_out_dir_fails_before_detection(scan_and_checkpoint,
                                                 tmp_path, monkeypatch,
                                                 capsys, fault):
    """A read-only or full ``--out-dir`` is refused with a clear message
    before the detection (root ignores permission bits, so the faults are
    injected into the check: ``os.access``, the write probe, ``statvfs``)."""
    scan, ckpt = scan_and_checkpoint
    monkeypatch.setattr(volume_run, 'infer_volume', _no_detection)
    if fault == 'no-permission':
        monkeypatch.setattr(aio.os, 'access', lambda *a: False)
        expected = 'not writable'
    elif fault == 'read-only':
        real_open = open

        def open_probe(path, *args, **kwargs):
            if 'probe' in str(path):
                raise OSError(errno.EROFS, 'Read-only file system')
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(aio, 'open', open_probe, raising=False)
        expected = 'Read-only file system'
    else:
        real = os.statvfs

        def statvfs(path):
            st = real(path)
            return os.statvfs_result(
                (st.f_bsize, 4096, st.f_blocks, 10, 10) + tuple(st)[5:])

        monkeypatch.setattr(aio.os, 'statvfs', statvfs)
        expected = 'MiB free'
    out = tmp_path / 'out'
    with pytest.raises(OutputDirError, match=expected):
        _run(scan, ckpt, out)
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'infer_volume_tool', repo_root() / 'tools' / 'infer_volume.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(_cli(scan, ckpt, out)) == 1
    err = capsys.readouterr().err
    assert '--out-dir' in err and expected in err
    assert not out.exists()


def _stopped_after_two_moves(monkeypatch, run) -> list:
    """``run()`` stopped (``KeyboardInterrupt``, standing for a kill) right
    after the second file of its set is moved into place (the library
    raises it, the tool returns 130); the moved files' final paths."""
    real_replace, moved = os.replace, []

    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if f'{aio.TMP_PREFIX}set-' in str(src):
            moved.append(dst)
            if len(moved) == 2:
                raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(aio.os, 'replace', replace)
        try:  # the tool answers Ctrl-C with one line and exit code 130
            assert run() == 130
        except KeyboardInterrupt:  # the library lets it through
            pass
    assert len(moved) == 2, moved
    return moved


def test_a_set_stopped_while_moving_in_is_named_incomplete(
        scan_and_checkpoint, tmp_path, monkeypatch, capsys):
    """Stopped while its files are moved into ``--out-dir`` (after the
    second), a run leaves some files without ``findings.json``: the next
    run says the set is INCOMPLETE and what ``--overwrite`` does, which
    then writes a complete set."""
    from tests.helpers.tool_modules import load_tool
    scan, ckpt = scan_and_checkpoint
    out = tmp_path / 'out'
    tool = load_tool('infer_volume.py')
    moved = _stopped_after_two_moves(monkeypatch, lambda: tool.main(
        _cli(scan, ckpt, out)))
    assert len(moved) == 2 and not (out / 'findings.json').exists()
    capsys.readouterr()
    assert tool.main(_cli(scan, ckpt, out)) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f'error: {out} holds an INCOMPLETE set of results')
    assert ('--overwrite (overwrite=True) writes a complete new set over '
            'it') in err
    assert tool.main(_cli(scan, ckpt, out) + ['--overwrite']) == 0
    assert (out / 'findings.json').exists()


def test_an_overwrite_stopped_while_moving_in_leaves_no_finished_set(
        scan_and_checkpoint, tmp_path, monkeypatch, capsys):
    """``--overwrite`` over a complete set, stopped after two of its new
    files are in place: the old ``findings.json`` (the completion marker)
    went first, so no old marker stands beside the new files; the single
    run names the set INCOMPLETE and the batch runs the scan again (not
    skipped)."""
    from mmlesion.apps.whole_scan.batch import run_batch_inference
    from mmlesion.apps.whole_scan.scan_list import scan_folder_name
    from tests.helpers.tool_modules import load_tool
    scan, ckpt = scan_and_checkpoint
    batch = tmp_path / 'batch'
    out = batch / scan_folder_name(scan)
    settings = RunSettings(detection=DetectionSettings(
        score_thr=.01, show_progress=False))
    cfg = str(repo_root() / 'configs' / DEMO_CFG)
    torch.set_num_threads(1)
    rows = run_batch_inference(cfg, str(ckpt), [str(scan)], str(batch),
                               settings)
    assert [r.status for r in rows] == ['done']
    old = _snapshot(out)
    tool = load_tool('infer_volume.py')
    moved = [str(Path(p).relative_to(out)) for p in _stopped_after_two_moves(
        monkeypatch, lambda: tool.main(_cli(scan, ckpt, out)
                                       + ['--overwrite']))]
    mixed = _snapshot(out)
    assert len(moved) == 2 and 'findings.json' not in moved
    assert set(moved) <= set(mixed) < set(old)  # the old marker is gone
    assert 'findings.json' not in mixed
    capsys.readouterr()
    assert tool.main(_cli(scan, ckpt, out)) == 1
    assert capsys.readouterr().err.startswith(
        f'error: {out} holds an INCOMPLETE set of results')
    rows = run_batch_inference(cfg, str(ckpt), [str(scan)], str(batch),
                               settings)
    assert [r.status for r in rows] == ['done']
    assert (out / 'findings.json').is_file()
