# Copyright (c) mmlesion contributors. All rights reserved.
"""Distributed faults: a frozen rank, a killed launcher."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch.distributed as dist
from mmengine.config import Config

from mmlesion.testing import repo_root
from tests.helpers.dist_faults import frozen_rank_worker
from tests.helpers.dist_spawn import spawn_workers
from tests.helpers.processes import pid_alive
from mmlesion.utils.distributed.guard import (DEFAULT_TIMEOUT_S, ENV_TIMEOUT,
                                       apply_dist_timeout,
                                       dist_timeout_seconds)

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason='torch.distributed with the gloo backend is not available')

# A torchrun worker that ends with its launcher; guard.py is loaded by
# path (importing mmlesion would take most of the test's time).
SLEEPING_WORKER = '''
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location('dist_guard', sys.argv[2])
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)
if sys.argv[3] == 'guard':
    guard.exit_with_parent()
with open(os.path.join(sys.argv[1], os.environ['RANK'] + '.pid'), 'w') as f:
    f.write(str(os.getpid()))
time.sleep(120)
'''


def test_timeout_setting(monkeypatch):
    monkeypatch.delenv(ENV_TIMEOUT, raising=False)
    assert dist_timeout_seconds(Config()) == DEFAULT_TIMEOUT_S
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(timeout=60))))
    assert dist_timeout_seconds(cfg) == 60
    monkeypatch.setenv(ENV_TIMEOUT, '5')
    assert apply_dist_timeout(cfg) == 5
    assert cfg.env_cfg.dist_cfg.timeout == 5  # what mmengine's init_dist takes
    monkeypatch.setenv(ENV_TIMEOUT, 'soon')
    with pytest.raises(ValueError, match=ENV_TIMEOUT):
        dist_timeout_seconds(cfg)


def test_frozen_rank_ends_with_error_naming_rank(tmp_path):
    """Rank 1 of 3 freezes: the all-reduces of ranks 0 and 2 end after the
    3 s timeout with an error that names rank 1 first (the live ranks
    check in to the process group's store; the one missing froze), then
    the rank that gave up, the timeout and the setting."""
    spawn_workers(frozen_rank_worker,
                  (3, str(tmp_path / 'rendezvous'), str(tmp_path), 3.),
                  3, timeout_s=120)
    for rank in (0, 2):
        record = json.loads((tmp_path / f'rank{rank}.json').read_text())
        assert record['message'].startswith(
            'rank 1 of 3 froze (stopped, hung on I/O or dead?): '
            f'rank {rank} of 3: all_reduce got no answer from rank 1 '
            'within 3 s'), record['message']
        assert ENV_TIMEOUT in record['message']
        # the launcher kills the frozen rank after its grace period
        assert "after the launcher's grace period, up to 30 s more" in \
            record['message']
        assert 2. < record['waited'] < 30.


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _launch_and_kill(tmp_path, mode: str, wait_s: float) -> list:
    """Start 2 workers under torchrun, SIGKILL torchrun, return the
    workers' pids still alive ``wait_s`` later (sooner once none is)."""
    script = tmp_path / 'worker.py'
    script.write_text(SLEEPING_WORKER)
    guard = repo_root() / 'mmlesion' / 'utils' / 'distributed' / 'guard.py'
    launcher = subprocess.Popen(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node',
         '2', '--master_port', str(_free_port()), str(script),
         str(tmp_path), str(guard), mode],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid_files = [tmp_path / f'{r}.pid' for r in range(2)]
    deadline = time.monotonic() + 120
    while not all(p.is_file() and p.read_text() for p in pid_files):
        assert time.monotonic() < deadline and launcher.poll() is None
        time.sleep(.2)
    pids = [int(p.read_text()) for p in pid_files]
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + wait_s
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(.2)
    alive = [p for p in pids if pid_alive(p)]
    for pid in alive:  # clean up what this test started
        os.kill(pid, signal.SIGKILL)
    return alive


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='PR_SET_PDEATHSIG is Linux only')
def test_workers_end_with_killed_launcher(tmp_path):
    """SIGKILL of torchrun: guarded workers end within 10 s; unguarded
    ones (torch's own behaviour) are still running 3 s later (the guarded
    ones get their signal as the launcher dies, within a second)."""
    (tmp_path / 'guarded').mkdir()
    (tmp_path / 'bare').mkdir()
    assert _launch_and_kill(tmp_path / 'guarded', 'guard', 10.) == []
    assert len(_launch_and_kill(tmp_path / 'bare', 'bare', 3.)) == 2


def test_a_timeout_names_the_silent_rank(monkeypatch):
    """With 2 ranks a timeout names the other rank (the frozen one); with
    more, the message says the other ranks."""
    from mmlesion.utils.distributed.guard import describe_collective_error
    err = RuntimeError('Timed out waiting 10000ms for recv operation')
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '2')
    text = describe_collective_error(err, 10, operation='all_reduce')
    assert text.startswith('rank 1 of 2 froze (stopped, hung on I/O or '
                           'dead?): rank 0 of 2: all_reduce got no answer '
                           'from rank 1 within 10 s')
    monkeypatch.setenv('WORLD_SIZE', '4')  # no process group to ask
    assert describe_collective_error(err, 10).startswith(
        'rank 0 of 4: a collective operation got no answer from the other '
        'ranks within 10 s; ending this rank')


def test_a_timeout_is_the_first_line_a_user_reads(tmp_path):
    """A distributed worker ended by a timeout prints it in one line on
    stderr, naming the frozen rank first, instead of a traceback (issue
    64 item 5); any other error keeps its traceback."""
    script = tmp_path / 'worker.py'
    script.write_text(
        'import importlib.util, sys\n'
        "spec = importlib.util.spec_from_file_location('g', sys.argv[1])\n"
        'guard = importlib.util.module_from_spec(spec)\n'
        'spec.loader.exec_module(guard)\n'
        'from mmengine.config import Config\n'
        "guard.guard_distributed(Config(dict(launcher='pytorch', "
        "env_cfg=dict(dist_cfg=dict()))))\n"
        "if sys.argv[2] == 'timeout':\n"
        "    raise guard.DistributedTimeoutError('rank 1 of 2 froze: x')\n"
        "raise ValueError('other')\n")
    guard = repo_root() / 'mmlesion' / 'utils' / 'distributed' / 'guard.py'
    for case in ('timeout', 'other'):
        proc = subprocess.run(
            [sys.executable, str(script), str(guard), case],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=120)
        assert proc.returncode == 1
        if case == 'timeout':
            assert proc.stderr == 'error: rank 1 of 2 froze: x\n'
        else:
            assert proc.stderr.startswith('Traceback')


def test_a_timeout_states_the_launchers_grace_period(monkeypatch, capsys):
    """The job ends up to the launcher's grace period (torchrun's 30 s,
    Slurm's KillWait) after the timeout: the message says so, and so do
    the scripts' and the train tool's help where the timeout is promised
    (issue 50, item 15)."""
    from mmlesion.utils.distributed.guard import (LAUNCHER_GRACE_S,
                                           describe_collective_error)
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('WORLD_SIZE', '2')
    text = describe_collective_error(
        RuntimeError('Timed out waiting 10000ms'), 10, operation='barrier')
    assert LAUNCHER_GRACE_S == 30
    assert ("ending this rank so that the launcher ends the job: a frozen "
            "rank is killed after the launcher's grace period, up to 30 s "
            'more (torchrun: 30 s; Slurm: KillWait, 30 s by default)') in text
    closed = describe_collective_error(
        RuntimeError('Connection closed by peer [127.0.0.1]:1234'), 10)
    assert 'grace' not in closed  # a dead peer: no frozen rank to wait for
    root = repo_root()
    for script in ('dist_train.sh', 'slurm_train.sh'):
        text = ' '.join((root / 'tools' / script).read_text().replace(
            '#', ' ').split())
        assert 'MMLESION_DIST_TIMEOUT seconds (default 1800' in text
        assert 'grace period' in text and '30 s' in text, script
    from tests.helpers.tool_modules import load_tool
    monkeypatch.setattr(sys, 'argv', ['train.py', '--help'])
    with pytest.raises(SystemExit):
        load_tool('train.py').parse_args()
    help_text = ' '.join(capsys.readouterr().out.split())
    assert ("MMLESION_DIST_TIMEOUT seconds (1800 unless set) plus the "
            "launcher's grace period (torchrun: 30 s; Slurm: KillWait, 30 s "
            'unless configured)') in help_text
