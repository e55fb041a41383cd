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

import pytest

from mmlesion.utils.distributed.forked_call import fork_available
from tests.helpers.processes import pid_alive

#: The run: two local jobs whose work writes its PID and that of a child
#: it started into OUT, then works on (sleeps).
_RUN = textwrap.dedent('''
    import os, subprocess, sys, time
    from mmlesion.apis.whole_scan.shards import (
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


@pytest.mark.skipif(not sys.platform.startswith('linux')
                    or not fork_available(), reason='Linux jobs')
def test_jobs_end_when_the_run_is_killed(tmp_path):
    run = subprocess.Popen([sys.executable, '-c', _RUN, str(tmp_path)])
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
        run.send_signal(signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(map(pid_alive, pids)):
            time.sleep(0.1)
        left = [p for p in pids if pid_alive(p)]
        assert not left, f'processes {left} outlived the killed run'
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in pids:  # this test's own processes, by PID
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
