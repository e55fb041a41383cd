# Copyright (c) mmlesion contributors. All rights reserved.
"""Two ``infer_volume`` runs into one ``--out-dir`` (issue 50 item 6): the
second is refused with one line naming the folder and the first run, the
first run's staging folder survives, and the lock of a killed run is taken
over (the lock is ``flock``: the kernel drops it with its process)."""
import datetime
import json
import os
import signal
import socket

import pytest

from mmlesion.apps.whole_scan import batch as volume_batch
from mmlesion.apis.whole_scan import run as volume_run
from mmlesion.apis.whole_scan.settings import RunSettings
from mmlesion.apis.whole_scan.write import (OutDirBusyError, OutDirLock,
                                            out_lock_path)
from mmlesion.testing import repo_root
from mmlesion.utils.writing.atomic import TMP_PREFIX
from tests.helpers.lock_holder import lock_holder
from tests.helpers.tool_modules import load_tool
from tests.helpers.volume_demo import DEMO_CFG

@pytest.fixture
def holder(tmp_path):
    """A second process writing into ``tmp_path / 'out'``."""
    out = tmp_path / 'out'
    with lock_holder(os.path.dirname(out_lock_path(out)),
                     out_lock_path(out)) as proc:
        yield out, proc


def _never(*args, **kwargs):
    raise AssertionError('a scan was read although --out-dir is busy')


def _config() -> str:
    return str(repo_root() / 'configs' / DEMO_CFG)


def _check_refusal(message: str, out, proc) -> None:
    assert message.startswith(
        f'{out}: --out-dir in use by another infer_volume run '
        f'(PID {proc.pid} on host {socket.gethostname()}, started '
        + datetime.date.today().isoformat()), message
    assert '\n' not in message


@pytest.mark.parametrize('mode', ['single', 'batch'])
def test_second_run_refused_naming_the_first(holder, tmp_path, monkeypatch,
                                             mode):
    out, proc = holder
    monkeypatch.setattr(volume_run, 'read_scan', _never)
    monkeypatch.setattr(volume_batch, 'load_volume_run', _never)
    scan = str(tmp_path / 'scan.nii.gz')
    with pytest.raises(OutDirBusyError) as info:
        if mode == 'single':
            volume_run.run_volume_inference(_config(), None, scan,
                                            out_dir=str(out))
        else:
            volume_batch.run_batch_inference(_config(), None, [scan],
                                             str(out))
    _check_refusal(str(info.value), out, proc)
    assert not out.exists()  # nothing written (the batch: no scans.csv)


def test_tool_refuses_and_keeps_the_first_runs_staging(holder, tmp_path,
                                                       monkeypatch, capsys):
    """``tools/infer_volume.py`` into a busy --out-dir: one ``error:`` line,
    status 1, and the running run's staging folder is not removed as a
    killed run's."""
    out, proc = holder
    staging = tmp_path / f'{TMP_PREFIX}set-out-abcd1234'
    staging.mkdir()
    monkeypatch.setattr(volume_run, 'read_scan', _never)
    code = load_tool('infer_volume.py').main([
        _config(), str(tmp_path / 'w.pth'), str(tmp_path / 'scan.nii.gz'),
        '--out-dir', str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert err.startswith('error: ')
    _check_refusal(err[len('error: '):], out, proc)
    assert staging.is_dir()


class _Stop(Exception):
    """Ends a run after its lock is taken."""


def test_killed_runs_lock_taken_over_and_released(holder, tmp_path,
                                                  monkeypatch):
    out, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lock_file = out_lock_path(out)
    assert json.loads(open(lock_file).read())['pid'] == proc.pid

    def read_scan(*args, **kwargs):  # the run holds the lock now
        info = json.loads(open(lock_file).read())
        assert info['pid'] == os.getpid()
        raise _Stop

    monkeypatch.setattr(volume_run, 'read_scan', read_scan)
    with pytest.raises(_Stop):
        volume_run.run_volume_inference(
            _config(), None, str(tmp_path / 'scan.nii.gz'), out_dir=str(out),
            run_settings=RunSettings())
    # released on the error: the file is gone, the next run locks at once
    assert not os.path.exists(lock_file)
    assert not out.exists()
    OutDirLock(out).acquire().release()


def test_single_scan_into_a_batch_folder_refused(tmp_path, monkeypatch,
                                                 capsys):
    """A batch writes into OUT (another process) and its staging folder of
    ``scan`` is there: a single-scan run into ``OUT/scan`` is refused in
    one line naming both folders and the batch's PID (the library and the
    tool), and the batch's staging folder survives."""
    out = tmp_path / 'out'
    with lock_holder(str(tmp_path), out_lock_path(out)) as proc:
        staging = out / f'{TMP_PREFIX}set-scan-abcd1234'
        staging.mkdir(parents=True)
        monkeypatch.setattr(volume_run, 'read_scan', _never)
        scan = str(tmp_path / 'scan.nii.gz')
        with pytest.raises(OutDirBusyError) as info:
            volume_run.run_volume_inference(_config(), None, scan,
                                            out_dir=str(out / 'scan'))
        first = (f'{out / "scan"}: inside {out}, the --out-dir of another '
                 f'infer_volume run (PID {proc.pid} on host ')
        assert str(info.value).startswith(first), str(info.value)
        assert '\n' not in str(info.value)
        code = load_tool('infer_volume.py').main([
            _config(), str(tmp_path / 'w.pth'), scan, '--out-dir',
            str(out / 'scan')])
        err = capsys.readouterr().err.strip()
        assert code == 1 and err.startswith('error: ' + first), err
        assert staging.is_dir()
        assert not os.path.exists(out_lock_path(out / 'scan'))


def test_batch_over_a_single_scan_run_refused(tmp_path, monkeypatch):
    """A single-scan run writes into ``OUT/scan`` (another process) and
    its staging folder is in OUT: a batch into OUT is refused in one line
    naming the folder and the run's PID, before anything is written."""
    out = tmp_path / 'out'
    with lock_holder(str(out), out_lock_path(out / 'scan')) as proc:
        staging = out / f'{TMP_PREFIX}set-scan-abcd1234'
        staging.mkdir()
        monkeypatch.setattr(volume_batch, 'load_volume_run', _never)
        with pytest.raises(OutDirBusyError) as info:
            volume_batch.run_batch_inference(
                _config(), None, [str(tmp_path / 'scan.nii.gz')], str(out))
        assert str(info.value).startswith(
            f'{out}: {out / "scan"} inside it is the --out-dir of another '
            f'infer_volume run (PID {proc.pid} on host '), str(info.value)
        assert '\n' not in str(info.value)
        assert staging.is_dir()
        assert not (out / 'scans.csv').exists()
        assert not os.path.exists(out_lock_path(out))
