# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/slurm_train.sh / slurm_test.sh's srun command line, and the
Slurm environment of ``--launcher slurm`` (:mod:`mmlesion.utils.distributed.slurm`),
without a cluster (a stand-in ``srun`` prints its arguments). The scripts on
a real cluster: ``test_slurm_tools.py``."""
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest
from mmengine.config import Config

from mmlesion.testing import repo_root
from mmlesion.utils.distributed.slurm import (PORT_BASE, PORT_SPAN,
                                      default_master_port, first_host,
                                      setup_slurm_distributed,
                                      slurm_task_env)

FAKE_SRUN = '#!/bin/sh\nfor a in "$@"; do echo "ARG $a"; done\n' \
    'echo "OMP $OMP_NUM_THREADS"\nexit ${FAKE_SRUN_EXIT:-0}\n'


def _script(tmp_path: Path, name: str, args: List[str],
            env: Dict[str, str], srun: bool = True, sinfo: str = None):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    for tool in ('bash', 'basename', 'dirname', 'awk', 'sort'):
        link = bin_dir / tool
        if not link.exists():
            link.symlink_to(shutil.which(tool))
    if srun:
        fake = bin_dir / 'srun'
        fake.write_text(FAKE_SRUN)
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    if sinfo is not None:  # `sinfo -h -N -p P -o '%n %c'`: node, CPUs
        fake = bin_dir / 'sinfo'
        fake.write_text(f"#!/bin/sh\nprintf '{sinfo}'\n")
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    full_env = {k: v for k, v in os.environ.items()
                if k not in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK',
                             'TASKS_PER_NODE', 'SRUN_ARGS',
                             'OMP_NUM_THREADS')}
    # only the stand-in srun (no real Slurm commands) on the PATH
    full_env['PATH'] = str(bin_dir)
    full_env.update(env)
    proc = subprocess.run(
        [str(bin_dir / 'bash'), str(repo_root() / 'tools' / name)] + args,
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, timeout=60)
    srun_args = [line[4:] for line in proc.stdout.splitlines()
                 if line.startswith('ARG ')]
    return proc, srun_args


def test_train_script_on_gpus(tmp_path):
    proc, args = _script(
        tmp_path, 'slurm_train.sh',
        ['gpu', 'job', 'cfg.py', 'work dir', '--cfg-options', 'a=1 2'],
        dict(GPUS='16', GPUS_PER_NODE='8',
             SRUN_ARGS='--time=5  --nodelist=n[1-2]'))
    assert proc.returncode == 0, proc.stderr
    assert args[:8] == [
        '-p', 'gpu', '--job-name=job', '--ntasks=16', '--cpus-per-task=5',
        '--kill-on-bad-exit=1', '--gres=gpu:8', '--ntasks-per-node=8'
    ]
    assert args[8:10] == ['--time=5', '--nodelist=n[1-2]']
    assert args[10:13] == ['python', '-u',
                           str(repo_root() / 'tools' / 'train.py')]
    # arguments with spaces reach train.py unchanged
    assert args[13:] == ['cfg.py', '--work-dir=work dir', '--launcher=slurm',
                         '--cfg-options', 'a=1 2']
    assert 'OMP 5' in proc.stdout


def test_gpus_per_node_defaults_to_gpus(tmp_path):
    _, args = _script(tmp_path, 'slurm_train.sh', ['p', 'j', 'c', 'w'],
                      dict(GPUS='2'))
    assert '--gres=gpu:2' in args and '--ntasks-per-node=2' in args


def test_test_script_on_cpus(tmp_path):
    proc, args = _script(
        tmp_path, 'slurm_test.sh', ['cpu', 'job', 'cfg.py', 'ckpt.pth'],
        dict(GPUS='4', GPUS_PER_NODE='0', CPUS_PER_TASK='3',
             TASKS_PER_NODE='2'))
    assert proc.returncode == 0, proc.stderr
    assert not any(a.startswith('--gres') for a in args)
    assert '--ntasks=4' in args and '--ntasks-per-node=2' in args
    assert args[-4:] == [str(repo_root() / 'tools' / 'test.py'), 'cfg.py',
                         'ckpt.pth', '--launcher=slurm']
    assert 'OMP 3' in proc.stdout


def test_failed_job_is_reported(tmp_path):
    proc, _ = _script(tmp_path, 'slurm_train.sh', ['p', 'jobx', 'c', 'w'],
                      dict(GPUS='2', GPUS_PER_NODE='0', FAKE_SRUN_EXIT='137'))
    assert proc.returncode == 137
    assert "the job 'jobx' failed (srun exit status 137)" in proc.stderr
    assert "'task N' is rank N" in proc.stderr


@pytest.mark.parametrize('env,args,code,words', [
    ({}, ['p', 'j', 'c'], 2, 'usage:'),
    ({'GPUS': 'two'}, ['p', 'j', 'c', 'w'], 2, 'GPUS=two'),
    ({'GPUS': '0'}, ['p', 'j', 'c', 'w'], 2, 'must be >= 1'),
])
def test_bad_arguments_refused(tmp_path, env, args, code, words):
    proc, srun_args = _script(tmp_path, 'slurm_train.sh', args, env)
    assert proc.returncode == code
    assert words in proc.stderr
    assert srun_args == []  # srun never ran


@pytest.mark.parametrize('env,fits', [
    (dict(GPUS='2', GPUS_PER_NODE='0'), False),  # 2 x 5 CPUs
    (dict(GPUS='2', GPUS_PER_NODE='0', CPUS_PER_TASK='2'), True),
    (dict(GPUS='3', GPUS_PER_NODE='0', CPUS_PER_TASK='2'), False),
    (dict(GPUS='2', GPUS_PER_NODE='0', CPUS_PER_TASK='2',
          TASKS_PER_NODE='2'), False),  # 4 CPUs on one node
    (dict(GPUS='2', GPUS_PER_NODE='1', CPUS_PER_TASK='2'), True),
])
def test_request_the_partition_cannot_fit_is_refused(tmp_path, env, fits):
    """Two nodes of 2 CPUs: a request beyond them would wait forever."""
    proc, srun_args = _script(tmp_path, 'slurm_train.sh',
                              ['cpu', 'j', 'c', 'w'], env,
                              sinfo='n1 2\\nn2 2\\nn1 2\\n')
    if fits:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 2 and srun_args == []
        assert "do not fit partition 'cpu': 4 CPUs, at most 2 per node" \
            in proc.stderr


def test_no_srun(tmp_path):
    proc, _ = _script(tmp_path, 'slurm_test.sh', ['p', 'j', 'c', 'k'], {},
                      srun=False)
    assert proc.returncode == 127
    assert 'srun not found' in proc.stderr


def test_first_host():
    assert first_host('vm') == 'vm'
    assert first_host('a1,b2') == 'a1'


def test_first_host_parser_without_scontrol(monkeypatch):
    monkeypatch.setenv('PATH', '/nonexistent')
    assert first_host('node[03-05,9],gpu1') == 'node03'
    assert first_host('gpu[7]-ib') == 'gpu7-ib'
    assert first_host('x[1-2],y[3-4]') == 'x1'


def test_default_master_port():
    ports = {default_master_port(job, step)
             for job in range(1000, 1100) for step in range(4)}
    assert len(ports) == 400
    assert all(PORT_BASE <= p < PORT_BASE + PORT_SPAN for p in ports)
    # a requeued job (same id) rendezvouses on another port than the run
    # that was killed, whose rank 0 may still hold its own
    assert default_master_port(1234, 0, restart=1) != default_master_port(
        1234, 0)
    assert default_master_port(1234, 0, restart=0) == default_master_port(
        1234, 0)


def _slurm(**extra) -> Dict[str, str]:
    env = dict(SLURM_PROCID='3', SLURM_LOCALID='1', SLURM_NTASKS='8',
               SLURM_STEP_NUM_TASKS='4', SLURM_STEP_NODELIST='vm',
               SLURM_JOB_ID='1234', SLURM_STEP_ID='2')
    env.update(extra)
    return env


def test_slurm_task_env():
    env = slurm_task_env(_slurm())
    assert env == dict(RANK='3', WORLD_SIZE='4', LOCAL_RANK='1',
                       MASTER_ADDR='vm',
                       MASTER_PORT=str(default_master_port(1234, 2)))
    requeued = slurm_task_env(_slurm(SLURM_RESTART_COUNT='1'))
    assert requeued['MASTER_PORT'] == str(default_master_port(1234, 2, 1))
    assert requeued['MASTER_PORT'] != env['MASTER_PORT']
    kept = slurm_task_env(_slurm(MASTER_ADDR='10.0.0.1', MASTER_PORT='999'))
    assert kept['MASTER_ADDR'] == '10.0.0.1' and kept['MASTER_PORT'] == '999'
    with pytest.raises(RuntimeError, match='not a Slurm task'):
        slurm_task_env({'SLURM_NTASKS': '2'})


def test_setup_slurm_distributed(monkeypatch, capsys):
    assert not setup_slurm_distributed(Config(dict(launcher='pytorch')))
    for var in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                'MASTER_PORT'):  # restored (or removed) after the test
        monkeypatch.setenv(var, 'x')
        monkeypatch.delenv(var)
    for key, value in _slurm().items():
        monkeypatch.setenv(key, value)
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict(launcher='slurm'))
    assert setup_slurm_distributed(cfg)
    assert cfg.launcher == 'pytorch'  # gloo through setup_cpu_distributed
    assert os.environ['RANK'] == '3' and os.environ['WORLD_SIZE'] == '4'
    assert 'rank 3 of 4 (local rank 1)' in capsys.readouterr().out


def test_cluster_unavailable_reasons(monkeypatch):
    from tests.helpers import slurm_cluster
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)
    assert 'needs root' in slurm_cluster.unavailable_reason()
    monkeypatch.setattr(os, 'geteuid', lambda: 0)
    monkeypatch.setattr(slurm_cluster, '_which', lambda name: None)
    reason = slurm_cluster.unavailable_reason()
    assert 'slurmctld' in reason and 'apt-get install slurm-wlm' in reason
    with pytest.raises(slurm_cluster.SlurmUnavailable, match='slurmd'):
        slurm_cluster.LocalSlurmCluster('/nonexistent/x').start()
