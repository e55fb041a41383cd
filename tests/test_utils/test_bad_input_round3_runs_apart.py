# Copyright (c) mmlesion contributors. All rights reserved.
"""Runs that clobber each other: two trainings in one work dir, and a
rank whose peer died told as a timeout."""
import argparse
import datetime
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch.distributed as dist

from mmlesion.testing import repo_root
from tests.helpers.lock_holder import lock_holder
from mmlesion.utils.writing.work_dir_lock import (LOCK_NAME, WorkDirBusyError,
                                                  WorkDirLock, lock_work_dir)

CONFIG = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


@pytest.fixture
def holder(tmp_path):
    """A second process holding the lock of ``tmp_path / 'work'``."""
    work = tmp_path / 'work'
    with lock_holder(str(work)) as proc:
        yield work, proc


def test_second_run_refused_naming_the_first(holder):
    work, proc = holder
    with pytest.raises(WorkDirBusyError) as info:
        WorkDirLock(str(work), what='--work-dir').acquire()
    message = str(info.value)
    assert f'PID {proc.pid} on host {socket.gethostname()}' in message
    assert 'started ' + datetime.date.today().isoformat() in message
    assert message.startswith(f'{work}: --work-dir in use')
    assert '\n' not in message


def test_killed_holder_leaves_no_stale_lock(holder):
    work, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (work / LOCK_NAME).is_file()  # the file stays, the lock not
    lock = WorkDirLock(str(work)).acquire()
    info = json.loads((work / LOCK_NAME).read_text())
    assert info['pid'] == os.getpid()
    lock.release()


def test_same_run_may_lock_twice_other_ranks_do_not(tmp_path, monkeypatch):
    first = lock_work_dir(str(tmp_path / 'w'))
    assert lock_work_dir(str(tmp_path / 'w')) is first  # one run, one lock
    first.release()
    monkeypatch.setenv('RANK', '1')
    assert lock_work_dir(str(tmp_path / 'w2')) is None
    assert not (tmp_path / 'w2').exists()


def _train_tool():
    spec = importlib.util.spec_from_file_location(
        'mmlesion_train_tool', repo_root() / 'tools' / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('resume', [None, 'auto'])
def test_train_tool_refuses_busy_work_dir(holder, monkeypatch, resume):
    """``tools/train.py`` into a work dir a running training uses: refused
    before the runner (and before ``--resume`` picks the other run's
    checkpoint)."""
    work, proc = holder
    monkeypatch.delenv('RANK', raising=False)
    args = argparse.Namespace(
        config=str(repo_root() / CONFIG), work_dir=str(work), amp=False,
        auto_scale_lr=False, resume=resume, allow_partial_load=False,
        fold=None, cfg_options=None, launcher='none')
    tool = _train_tool()
    monkeypatch.setattr(
        'mmlesion.utils.find_resumable_checkpoint',
        lambda *a: pytest.fail('--resume looked at a busy work dir'))
    with pytest.raises(WorkDirBusyError, match=f'PID {proc.pid} on host'):
        tool.build_cfg(args)
    monkeypatch.setattr(sys, 'argv', ['tools/train.py', args.config,
                                      '--work-dir', str(work)])
    with pytest.raises(SystemExit) as info:
        tool.main()
    assert str(info.value.code).startswith(f'error: {work}: --work-dir in use')


# Two ranks: rank 0's process ends while rank 1 waits in an all-reduce.
DYING_PEER = '''
import datetime, importlib.util, json, os, sys, time
import torch, torch.distributed as dist
rank, rendezvous, out, guard_path = int(sys.argv[1]), *sys.argv[2:5]
spec = importlib.util.spec_from_file_location('dist_guard', guard_path)
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)
os.environ.update(RANK=str(rank), WORLD_SIZE='2')
dist.init_process_group('gloo', init_method='file://' + rendezvous,
                        rank=rank, world_size=2,
                        timeout=datetime.timedelta(seconds=1800))
dist.barrier()
if rank == 0:
    time.sleep(.3)
    os._exit(3)  # killed, crashed: the process ends
start = time.monotonic()
try:
    with guard.collective_timeout_errors(1800):
        dist.all_reduce(torch.ones(1))
except guard.DistributedTimeoutError as err:
    with open(os.path.join(out, 'rank1.json'), 'w') as f:
        json.dump(dict(message=str(err), waited=time.monotonic() - start), f)
os._exit(0)
'''


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason='torch.distributed with gloo is not available')
def test_dead_peer_is_not_reported_as_timeout(tmp_path):
    """Rank 0 ends: rank 1's message says that its peer closed the
    connection after a short wait, not that 1800 s passed."""
    guard = repo_root() / 'mmlesion' / 'utils' / 'distributed' / 'guard.py'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    procs = [subprocess.Popen(
        [sys.executable, '-c', DYING_PEER, str(rank),
         str(tmp_path / 'rendezvous'), str(tmp_path), str(guard)], env=env)
        for rank in range(2)]
    deadline = time.monotonic() + 120
    try:
        for proc in procs:
            proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    record = json.loads((tmp_path / 'rank1.json').read_text())
    message = record['message']
    assert message.startswith('rank 1 of 2: rank 0 (')
    assert 'closed the connection (its process ended' in message
    assert 'in all_reduce; not a timeout (that is 1800 s)' in message
    assert 'within 1800 s' not in message
    waited = float(message.split('had waited ')[1].split(' s')[0])
    assert waited < 60 and record['waited'] < 60
