# Copyright (c) mmlesion contributors. All rights reserved.
"""``infer_volume --jobs N --slurm`` on a real one-node Slurm cluster
(started by the test; skipped, saying why, where it cannot): one job
killed midway (its task's process SIGKILLed, as the kernel's OOM killer
does; a plain ``scancel`` lets a submitit job run on until Slurm's
KillWait), its scans retried in a new job; nothing lost,
nothing stored twice, also after the same command again (which finds
nothing to do). A failing scan's retry is tested with local processes
(test_shards.py)."""
import json
import os
import signal
import time

import pytest
import torch

from mmlesion.apis.whole_scan.shards import (ShardSettings,
                                             run_sharded_inference)
from tests.helpers.slurm_cluster import PARTITION
from .test_batch import CFG_PATH, QUIET
from .test_shards import check_every_scan_once, scans_and_checkpoint  # noqa

pytestmark = pytest.mark.slurm


def test_a_killed_job_is_redone_and_nothing_is_stored_twice(
        slurm_cluster, scans_and_checkpoint, tmp_path, monkeypatch):
    pytest.importorskip('submitit')
    for key, value in slurm_cluster.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    scans, ckpt = scans_and_checkpoint
    out = tmp_path / 'out'
    torch.set_num_threads(1)
    killed = []

    def kill_task(job_id: str) -> None:
        """SIGKILL to the Python processes of array task ``A_T``."""
        array, task = job_id.split('_')
        want = {f'SLURM_ARRAY_JOB_ID={array}'.encode(),
                f'SLURM_ARRAY_TASK_ID={task}'.encode()}
        for entry in filter(str.isdigit, os.listdir('/proc')):
            try:
                with open(f'/proc/{entry}/environ', 'rb') as f:
                    env = set(f.read().split(b'\0'))
                with open(f'/proc/{entry}/cmdline', 'rb') as f:
                    argv0 = f.read().split(b'\0')[0]
            except OSError:
                continue
            if want <= env and b'python' in argv0:
                os.kill(int(entry), signal.SIGKILL)

    def kill_job_0(progress):
        job = progress.running.get(0)
        if progress.attempt == 0 and not killed and \
                progress.by_shard[0] >= 1 and job and not job.done():
            kill_task(job.id)
            while not job.done():
                time.sleep(0.2)
            killed.append({p.parent.name for p in out.glob(
                'shard_000/*/findings.json')})

    settings = ShardSettings(jobs=2, launcher='slurm', partition=PARTITION,
                             cpus_per_task=1, timeout_min=5,
                             poll_seconds=0.2)
    # three scans in job 0, one after another (no scan finishing in a
    # forked process while the next is detected): some left when the
    # job is killed
    from mmlesion.apis.whole_scan.scan_list import scan_folder_names
    out.mkdir()
    (out / 'shards.json').write_text(json.dumps(dict(zip(
        scan_folder_names(scans), [0, 0, 0, 1]))))
    rows = run_sharded_inference(CFG_PATH, str(ckpt), scans, str(out), QUIET,
                                 settings, overlap=False,
                                 log=lambda line: None,
                                 on_progress=kill_job_0)
    assert killed, 'job 0 ended before it could be killed'
    assert [r.shard for r in rows] == [0, 0, 0, 1]
    assert killed[0] != {r.folder for r in rows if r.shard == 0}
    for row in rows:  # the killed job's unfinished scans ran again
        assert row.attempts == 1 + (row.shard == 0 and
                                    row.folder not in killed[0]), row
    times = check_every_scan_once(out, scans)
    table = (out / 'findings.csv').read_bytes()
    lines = []
    run_sharded_inference(CFG_PATH, str(ckpt), scans, str(out), QUIET,
                          settings, log=lines.append)
    assert not any('started' in line for line in lines)  # nothing to do
    assert check_every_scan_once(out, scans) == times
    assert (out / 'findings.csv').read_bytes() == table
