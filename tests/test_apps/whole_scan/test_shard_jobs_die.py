# Copyright (c) mmlesion contributors. All rights reserved.
"""Local shard jobs (``tools/infer_volume.py --jobs N``) end with the run:
the run's process killed (SIGKILL, no chance to clean up), its jobs and
what they forked end within seconds instead of writing on."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from mmlesion.utils.distributed.forked_call import fork_available
from tests.helpers.processes import pid_alive

#: The run: two local jobs whose work writes its PID and that of a child
#: it started into OUT, then works on (sleeps).
_RUN = textwrap.dedent('''
    import os, subprocess, sys, time
    from mmlesion.apps.whole_scan.shards import (
        ShardedRun, ShardSettings, ShardWork, run_sharded_inference)

    class Endless(ShardWork):
        def run(self, job):
            child = subprocess.Popen(['sleep', '120'])
            name = job.work.scans[0].folder
            with open(os.path.join(sys.argv[1], name + '.pids'), 'w') as f:
                f.write(f'{os.getpid()} {child.pid}')
            time.sleep(120)
            return 0

    run_sharded_inference(Endless(['a.nii.gz', 'b.nii.gz']), ShardedRun(
        'unused', None, os.path.join(sys.argv[1], 'out'),
        shards=ShardSettings(jobs=2), log=lambda line: None))
''')


@contextmanager
def _started(tmp_path, script: str, **popen) -> Iterator[tuple]:
    """The run of ``script`` and the PIDs of its two jobs and their
    children, once all four run; at the end, any of them still running
    killed (this test's own processes, by PID)."""
    run = subprocess.Popen([sys.executable, '-c', script, str(tmp_path)],
                           **popen)
    pids = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(pids) < 4:
            time.sleep(0.2)
            assert run.poll() is None, 'the run ended by itself'
            files = [tmp_path / f'{n}.pids' for n in 'ab']
            if all(f.is_file() and f.read_text() for f in files):
                pids = [int(p) for f in files for p in f.read_text().split()]
        assert len(pids) == 4, 'the jobs did not start'
        yield run, pids
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith('linux')
                    or not fork_available(), reason='Linux jobs')
def test_jobs_end_when_the_run_is_killed(tmp_path):
    with _started(tmp_path, _RUN) as (run, pids):
        run.send_signal(signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(map(pid_alive, pids)):
            time.sleep(0.1)
        left = [p for p in pids if pid_alive(p)]
        assert not left, f'processes {left} outlived the killed run'


#: The run as the tool runs it, its jobs holding their shard folders'
#: locks; Ctrl-C answered as tools/infer_volume.py does. Its SIGINT is
#: Python's default, as in a terminal's foreground job: a child inherits an
#: ignored SIGINT (the suite's worker had one: the run then never saw the
#: Ctrl-C), and Python only installs its handler where it is not ignored.
_INTERRUPTED = 'import signal\nsignal.signal(signal.SIGINT, ' \
    'signal.default_int_handler)\n' + _RUN.replace(
    '            time.sleep(120)', '''\
            from mmlesion.apis.whole_scan.write import OutDirLock
            with OutDirLock(job.run.out_dir):
                time.sleep(120)''').replace(
    'run_sharded_inference(Endless', '''\
try:
  run_sharded_inference(Endless''').replace(
    "log=lambda line: None))", '''log=lambda line: None))
except KeyboardInterrupt as err:
  print(f'interrupted: {err}', file=sys.stderr)
  sys.exit(130)''')


@pytest.mark.skipif(not sys.platform.startswith('linux')
                    or not fork_available(), reason='Linux jobs')
def test_ctrl_c_ends_the_jobs_with_one_line(tmp_path):
    """Ctrl-C (SIGINT to the run, as a terminal sends it: the jobs are in
    process groups of their own) ends the jobs and what they forked, and
    the run, within seconds, with one line; no process is left holding a
    shard's lock: the same folders can be locked at once."""
    from mmlesion.apis.whole_scan.write import OutDirLock
    with _started(tmp_path, _INTERRUPTED, stderr=subprocess.PIPE,
                  text=True) as (run, pids):
        time.sleep(0.5)  # the jobs take their locks
        run.send_signal(signal.SIGINT)
        err = run.communicate(timeout=30)[1]
        assert run.returncode == 130, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            f'interrupted: 2 job(s) ended (shard_000 {pids[0]}, shard_001 '
            f'{pids[2]}); --out-dir keeps the finished scans: run the same '
            'command again to go on'), err
        left = [p for p in pids if pid_alive(p)]
        assert not left, f'processes {left} outlived the interrupted run'
        out = tmp_path / 'out'
        for folder in (out, out / 'shard_000', out / 'shard_001'):
            OutDirLock(folder).acquire().release()
