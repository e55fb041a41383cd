# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/slurm_train.sh and tools/slurm_test.sh on a real Slurm cluster.

A one-node cluster on this machine (:mod:`tests.helpers.slurm_cluster`:
private munged, slurmctld and slurmd under a temporary folder) runs the
scripts as a login node would: 2 CPU tasks (``GPUS=2 GPUS_PER_NODE=0``,
gloo) of the demo config on the tiny generated demo set. The tests skip,
saying why, where no cluster can be started (not root, ``slurm-wlm`` not
installed, munge failing). Select them with ``-m slurm``. All of them
took 101 s and 196 s in two runs on a 2-core machine shared with other
work (``python -m pytest tests/test_tools/test_slurm_tools.py``).
"""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest
import torch

from mmlesion.testing import repo_root
from tests.helpers.slurm_cluster import (PARTITION, LocalSlurmCluster,
                                            task_pids)

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        not torch.distributed.is_gloo_available(),
        reason='torch.distributed with the gloo backend is not available'),
]

# the states a job ends in (Slurm's JOB_STATE_BASE past JOB_SUSPENDED)
FINAL_JOB_STATES = ('COMPLETED', 'CANCELLED', 'FAILED', 'TIMEOUT',
                    'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE',
                    'OUT_OF_MEMORY')
CONFIG = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
#: Every job of these tests: 2 CPU tasks, 1 CPU each.
TASKS = dict(GPUS='2', GPUS_PER_NODE='0', CPUS_PER_TASK='1',
             SRUN_ARGS='--label')


def _options(data_root: Path, num_train: int = 4, epochs: int = 1,
             interval: int = 1) -> List[str]:
    root = str(data_root) + os.sep
    opts = [f'{split}_dataloader.{key}'
            for split in ('train', 'val', 'test')
            for key in (f'dataset.data_root={root}', 'num_workers=0',
                        'persistent_workers=False')]
    return opts + [
        f'train_dataloader.dataset.indices={num_train}',
        'train_dataloader.batch_size=2',
        f'train_cfg.max_epochs={epochs}',
        'train_cfg.val_interval=1000',
        f'default_hooks.checkpoint.interval={interval}',
        'default_hooks.checkpoint.max_keep_ckpts=5',
        'default_hooks.checkpoint.save_best=None',
        'default_hooks.logger.interval=1',
        'randomness.seed=0',
    ]


def _env(cluster: LocalSlurmCluster, **extra: str) -> Dict[str, str]:
    env = cluster.env()
    env['PATH'] = str(Path(sys.executable).parent) + os.pathsep + env['PATH']
    env.update(TASKS)
    env.update(extra)
    return env


def _job_name(tmp_path: Path, what: str) -> str:
    return f'mml-{what}-{os.getpid()}-{abs(hash(str(tmp_path))) % 10**6}'


def _script(name: str, job: str, config: str, target: str,
            args: List[str]) -> List[str]:
    return ['bash', str(repo_root() / 'tools' / name), PARTITION, job,
            config, target] + args


def _run(cluster: LocalSlurmCluster, cmd: List[str], timeout: float = 240,
         **env: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            cmd, cwd=repo_root(), env=_env(cluster, **env),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=timeout)
    finally:
        cluster.cancel_all()  # nothing left running after a timeout


def _ranks_started(output: str) -> List[int]:
    return sorted(int(r) for r in re.findall(
        r'^\d+: --launcher slurm: rank (\d+) of 2 ', output, re.M))


def _load(path: Path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=False)


def _wait_for(predicate, timeout: float, what: str,
              interval: float = 0.05,
              diagnose: Optional[Callable[[], str]] = None) -> None:
    """Wait until ``predicate()``; on timeout the error names ``what`` and
    adds what ``diagnose()`` says (the job's state, its log)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            said = f'\n{diagnose()}' if diagnose is not None else ''
            raise AssertionError(
                f'timed out after {timeout:g} s: {what}{said}')
        time.sleep(interval)


def _proc_state(pid: int) -> str:
    """A process's state letter from ``/proc`` (``T``: stopped), or
    ``'gone'``."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return 'gone'


def _train_options(data_root: Path) -> List[str]:
    """3 epochs of 2 iterations (8 images, 2 tasks x batch 2), a
    checkpoint after each."""
    return ['--cfg-options'] + _options(data_root, num_train=8, epochs=3)


@pytest.fixture(scope='module')
def slurm_trained(slurm_cluster, tiny_demo_root, tmp_path_factory):
    """The demo config trained by the train script as 2 CPU tasks (also
    the uninterrupted reference of the requeue test)."""
    work = tmp_path_factory.mktemp('slurm_train') / 'work'
    proc = _run(slurm_cluster, _script(
        'slurm_train.sh', 'mml-train', CONFIG, str(work),
        _train_options(tiny_demo_root)))
    return work, proc


def test_slurm_train_two_cpu_tasks(slurm_trained):
    """GPUS=2 GPUS_PER_NODE=0: two gloo tasks train together."""
    work, proc = slurm_trained
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert '--gres' not in proc.stdout.splitlines()[0]  # the srun line
    assert _ranks_started(proc.stdout) == [0, 1], proc.stdout[-3000:]
    assert 'no GPU: gloo backend' in proc.stdout
    assert (work / 'epoch_1.pth').is_file()
    ckpt = _load(work / 'epoch_3.pth')
    # 8 images, 2 tasks x batch 2: 2 iterations per epoch (one process
    # would need 4).
    assert ckpt['meta']['iter'] == 3 * 2


def test_slurm_test_on_the_checkpoint(slurm_cluster, slurm_trained,
                                      tiny_demo_root, tmp_path):
    """slurm_test.sh evaluates the trained checkpoint with 2 tasks."""
    work, train = slurm_trained
    assert train.returncode == 0, 'training failed (see the test above)'
    proc = _run(slurm_cluster, _script(
        'slurm_test.sh', 'mml-test', CONFIG, str(work / 'epoch_3.pth'),
        ['--work-dir', str(tmp_path / 'test'), '--cfg-options'] +
        _options(tiny_demo_root)))
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert _ranks_started(proc.stdout) == [0, 1]
    assert 'froc/sens@4' in proc.stdout


def test_slurm_request_beyond_the_partition_is_refused(slurm_cluster,
                                                       tmp_path):
    """2 tasks of all the node's CPUs each (mmdet's CPUS_PER_TASK=5 on a
    small node): srun would queue the job forever; the script refuses it
    at once, naming the partition's CPUs."""
    start = time.monotonic()
    proc = _run(slurm_cluster, _script(
        'slurm_train.sh', 'mml-toobig', CONFIG, str(tmp_path / 'work'), []),
        timeout=60, CPUS_PER_TASK=str(slurm_cluster.cpus))
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert f"do not fit partition '{PARTITION}': {slurm_cluster.cpus} CPUs" \
        in proc.stdout
    assert '+ srun' not in proc.stdout
    assert time.monotonic() - start < 30


def _start_long_training(cluster: LocalSlurmCluster, data_root: Path,
                         tmp_path: Path, job: str,
                         **env: str) -> Tuple[subprocess.Popen, Path]:
    log = tmp_path / 'job.log'
    cmd = _script('slurm_train.sh', job, CONFIG, str(tmp_path / 'work'),
                  ['--cfg-options'] + _options(data_root, epochs=500,
                                               interval=1000))
    with open(log, 'w') as out:
        proc = subprocess.Popen(cmd, cwd=repo_root(),
                                env=_env(cluster, **env), stdout=out,
                                stderr=subprocess.STDOUT, text=True)
    return proc, log


def _kill_left(job: str, pids: List[int]) -> None:
    """SIGKILL those of ``pids`` that are still tasks of ``job`` (a pid
    freed since then may belong to another process)."""
    still = set(task_pids(job, 0) + task_pids(job, 1))
    for pid in set(pids) & still:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _end_job(proc: subprocess.Popen, cluster: LocalSlurmCluster, job: str,
             pids: List[int], timeout: float) -> Optional[float]:
    """Seconds until the job's script ended by itself (None: it had to be
    ended here); whatever is left is ended."""
    start = time.monotonic()
    try:
        proc.wait(timeout=timeout)
        return time.monotonic() - start
    except subprocess.TimeoutExpired:
        return None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cluster.cancel_all()
        _kill_left(job, pids)  # the tasks this test started and stopped


@pytest.mark.parametrize('fault', ['killed', 'frozen'])
def test_slurm_job_with_a_failed_task_ends_naming_the_rank(
        slurm_cluster, tiny_demo_root, tmp_path, fault):
    """Rank 1 killed (SIGKILL, as the OOM killer would) or frozen
    (SIGSTOP) mid-training: the job ends with an error, not a hang.

    Killed: srun's ``--kill-on-bad-exit`` ends the job at once and names
    ``task 1``; rank 0 says that rank 1 closed the connection. Frozen:
    rank 0's collective gives up after ``MMLESION_DIST_TIMEOUT`` (10 s
    here) and says so, and that the frozen rank is killed after the
    launcher's grace period (``KillWait``); its exit ends the job.
    """
    job = _job_name(tmp_path, fault)
    proc, log = _start_long_training(
        slurm_cluster, tiny_demo_root, tmp_path, job,
        MMLESION_DIST_TIMEOUT='10')
    pids: List[int] = []
    try:
        _wait_for(lambda: re.search(r'Epoch\(train\) +\[2\]',
                                    log.read_text()) or
                  proc.poll() is not None, 240, 'training started')
        assert proc.poll() is None, log.read_text()[-6000:]
        pids = task_pids(job, 1)
        assert pids, 'no process of rank 1 found'
        for pid in pids:
            os.kill(pid, signal.SIGKILL if fault == 'killed' else
                    signal.SIGSTOP)
    finally:
        seconds = _end_job(proc, slurm_cluster, job, pids, timeout=90)
    output = log.read_text()
    assert seconds is not None, f'the job hung: {output[-4000:]}'
    assert proc.returncode != 0
    assert f"slurm_train.sh: the job '{job}' failed" in output
    if fault == 'killed':
        assert re.search(r'task 1: Killed', output), output[-4000:]
        assert seconds < 30, seconds
    else:
        assert 'rank 0 of 2:' in output, output[-4000:]
        assert 'within 10 s' in output, output[-4000:]
        assert 'no answer from rank 1' in output, output[-4000:]
        # the message says how much later the job may end (issue 50):
        # Slurm kills the frozen task after KillWait (5 s on this cluster)
        assert "killed after the launcher's grace period" in output, \
            output[-4000:]
        assert seconds < 60, seconds


def test_slurm_requeued_job_resumes_with_the_same_weights(
        slurm_cluster, slurm_trained, tiny_demo_root, tmp_path):
    """A batch job (``sbatch --requeue``) of ``slurm_train.sh ... --resume``
    is requeued mid-training (``scontrol requeue``, what pre-emption with
    ``PreemptMode=REQUEUE`` does); it starts again, resumes from the last
    checkpoint and ends with bitwise the weights of the uninterrupted run
    of ``slurm_trained`` (same options). Needs every rank's random
    generators in the checkpoint (RandomStateHook).
    """
    reference, ref = slurm_trained
    assert ref.returncode == 0, 'training failed (see the test above)'
    opts = _train_options(tiny_demo_root)

    job = _job_name(tmp_path, 'requeue')
    work = tmp_path / 'work'
    batch = tmp_path / 'job.sh'
    train = ' '.join(f"'{a}'" for a in _script(
        'slurm_train.sh', job, CONFIG, str(work), ['--resume'] + opts))
    batch.write_text('#!/bin/bash\n'
                     'echo "start ${SLURM_RESTART_COUNT:-0}"\n'
                     f'{train}\n')
    log = tmp_path / 'job.log'
    env = _env(slurm_cluster)
    sub = subprocess.run(
        ['sbatch', '--parsable', '--requeue', '-p', PARTITION, '-J', job,
         '-n2', '-c1', '-o', str(log), '--open-mode=append',
         f'--chdir={repo_root()}', str(batch)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=60)
    assert sub.returncode == 0, sub.stdout
    job_id = sub.stdout.strip().split(';')[0]
    pids: List[int] = []

    def scontrol(*args: str, check: bool = True) -> str:
        out = subprocess.run(['scontrol'] + list(args), env=env,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             timeout=30)
        assert out.returncode == 0 or not check, out.stdout
        return out.stdout

    try:
        _wait_for(lambda: (work / 'epoch_1.pth').exists() or
                  job_id not in slurm_cluster.job_ids(), 240,
                  'first checkpoint')
        # hold both tasks where they are, then requeue the job
        pids = task_pids(job, 0) + task_pids(job, 1)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        assert not (work / 'epoch_3.pth').exists(), 'finished too early'
        scontrol('requeue', job_id)

        final_since: List[float] = []

        def ended() -> bool:
            # Slurm holds a requeued job for about 2 minutes: not here
            if 'Reason=BeginTime' in scontrol('show', 'job', job_id,
                                              check=False):
                scontrol('update', f'JobId={job_id}', 'StartTime=now',
                         check=False)
            # a requeued job passes through states squeue may not list
            # (REQUEUED, COMPLETING): it has ended only in a final state
            state = slurm_cluster.job_state(job_id)
            over = state in FINAL_JOB_STATES or (
                state is None and job_id not in slurm_cluster.job_ids())
            # a final state read before the requeue took effect (the killed
            # first run) is not the end: the job has ended once a second
            # run has started and a final state follows
            restarted = re.search(r'start [1-9]', log.read_text()
                                  if log.exists() else '')
            if not over:
                final_since.clear()
            elif not restarted:
                # seen once in about 15 runs: the killed first run ended the
                # job (FAILED, no second run); requeued again, as a second
                # pre-emption would
                final_since.append(time.monotonic())
                if final_since[-1] - final_since[0] > 10:
                    scontrol('requeue', job_id, check=False)
                    final_since.clear()
            return over and bool(restarted)

        def diagnose() -> str:
            job_log = log.read_text()[-3000:] if log.exists() else '(none)'
            # the first run's stopped tasks: killed by the requeue?
            left = {pid: _proc_state(pid) for pid in pids}
            return '\n'.join([
                f'first run\'s tasks (pid: state): {left}',
                'tasks now: ' + str({r: task_pids(job, r) for r in (0, 1)}),
                'scontrol show job:',
                scontrol('show', 'job', job_id, check=False),
                'scontrol show node:',
                scontrol('show', 'node', check=False),
                'job log (tail):', job_log,
                'slurmctld log (tail):', slurm_cluster.log_tail('slurmctld'),
                'slurmd log (tail):', slurm_cluster.log_tail('slurmd')])

        _wait_for(ended, 240, 'the requeued job to end', interval=0.5,
                  diagnose=diagnose)
    finally:
        slurm_cluster.cancel_all()
        _kill_left(job, pids)
    output = log.read_text()
    assert 'start 0' in output and re.search(r'start [1-9]', output), \
        output[-6000:]
    assert 'DUE TO JOB REQUEUE' in output
    resumed = re.findall(r'resumed epoch: (\d+)', output)
    assert resumed and 1 <= int(resumed[-1]) < 3, output[-6000:]
    last = _load(work / 'epoch_3.pth')
    ref_last = _load(reference / 'epoch_3.pth')
    assert last['meta']['iter'] == ref_last['meta']['iter'] == 3 * 2
    for key, value in ref_last['state_dict'].items():
        assert torch.equal(last['state_dict'][key], value), key
