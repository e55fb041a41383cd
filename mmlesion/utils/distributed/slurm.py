# Copyright (c) mmlesion contributors. All rights reserved.
"""``--launcher slurm`` on GPU and CPU partitions: mmengine's launcher
fails without a GPU, puts every job on port 29500 and starts a torch
thread per core, so :func:`setup_slurm_distributed` exports what
``torchrun`` would, a port per job step and ``SLURM_CPUS_PER_TASK``
threads, and runs the ``pytorch`` launcher (gloo) without a GPU.
"""
import os
import re
import shutil
import socket
import subprocess
from typing import Dict, Mapping, Optional

from mmengine.config import Config

#: Ports :func:`default_master_port` chooses from: [BASE, BASE + SPAN),
#: below Linux's default ephemeral range (32768-60999).
PORT_BASE = 10000
PORT_SPAN = 20000
_TASK_VARS = ('SLURM_PROCID', 'SLURM_LOCALID')


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list (``node[03-05,9],gpu1`` ->
    ``node03``), by ``scontrol show hostnames`` where it is on the PATH,
    else parsed here (the usual ``prefix[range,...]`` forms)."""
    nodelist = nodelist.strip()
    if not nodelist:
        raise ValueError('empty Slurm node list')
    if shutil.which('scontrol'):
        try:
            out = subprocess.run(
                ['scontrol', 'show', 'hostnames', nodelist],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, timeout=30, check=True).stdout.split()
            if out:
                return out[0]
        except (OSError, subprocess.SubprocessError):
            pass
    # prefix, the first number of a [range,...], suffix
    found = re.match(r'([^,\[]*)(?:\[([^\],-]+)[^\]]*\])?([^,]*)', nodelist)
    return ''.join(part or '' for part in found.groups())


def default_master_port(job_id: int, step_id: int = 0,
                        restart: int = 0) -> int:
    """A port for the job step's rendezvous: ``PORT_BASE + (16 * job_id +
    (step_id + restart) % 16) % PORT_SPAN`` (a requeued job moves to the
    next port, away from the killed run's socket).

    Args:
        job_id (int): ``SLURM_JOB_ID``.
        step_id (int): ``SLURM_STEP_ID``.
        restart (int): ``SLURM_RESTART_COUNT`` (0 for a first run).

    Returns:
        int: a port in ``[PORT_BASE, PORT_BASE + PORT_SPAN)``.
    """
    offset = (int(step_id) + int(restart)) % 16
    return PORT_BASE + (16 * int(job_id) + offset) % PORT_SPAN


def slurm_task_env(environ: Optional[Mapping[str, str]] = None
                   ) -> Dict[str, str]:
    """torch.distributed's variables for this Slurm task.

    Args:
        environ (Mapping, optional): the environment; ``os.environ`` if
            omitted.

    Returns:
        dict: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
        ``MASTER_PORT`` (the last two kept from ``environ`` where set).

    Raises:
        RuntimeError: not inside a Slurm task (no ``SLURM_PROCID``...).
    """
    env = os.environ if environ is None else environ
    missing = [var for var in _TASK_VARS if var not in env]
    if missing:
        raise RuntimeError(
            f'--launcher slurm: {", ".join(missing)} not set: this process '
            'is not a Slurm task. Start the job with tools/slurm_train.sh '
            '/ tools/slurm_test.sh (or `srun ... python tools/train.py '
            '... --launcher slurm`).')
    world = env.get('SLURM_STEP_NUM_TASKS') or env.get('SLURM_NTASKS')
    if world is None:
        raise RuntimeError('--launcher slurm: neither SLURM_STEP_NUM_TASKS '
                           'nor SLURM_NTASKS is set')
    result = dict(
        RANK=str(int(env['SLURM_PROCID'])),
        WORLD_SIZE=str(int(world)),
        LOCAL_RANK=str(int(env['SLURM_LOCALID'])))
    if env.get('MASTER_ADDR'):
        result['MASTER_ADDR'] = env['MASTER_ADDR']
    else:
        nodelist = (env.get('SLURM_STEP_NODELIST')
                    or env.get('SLURM_JOB_NODELIST')
                    or env.get('SLURM_NODELIST'))
        if not nodelist:
            raise RuntimeError('--launcher slurm: no SLURM_STEP_NODELIST / '
                               'SLURM_JOB_NODELIST to find rank 0 on')
        result['MASTER_ADDR'] = first_host(nodelist)
    if env.get('MASTER_PORT'):
        result['MASTER_PORT'] = env['MASTER_PORT']
    else:
        job = env.get('SLURM_JOB_ID') or env.get('SLURM_JOBID') or '0'
        step = env.get('SLURM_STEP_ID') or env.get('SLURM_STEPID') or '0'
        try:
            step_id = int(step)
        except ValueError:  # 'batch', 'extern'
            step_id = 0
        restart = env.get('SLURM_RESTART_COUNT') or '0'
        result['MASTER_PORT'] = str(default_master_port(
            int(job), step_id, int(restart) if restart.isdigit() else 0))
    return result


def setup_slurm_distributed(cfg: Config) -> bool:
    """Prepare ``--launcher slurm``; call it before
    ``setup_cpu_distributed(cfg)``.

    Args:
        cfg (Config): the run's config; ``cfg.launcher`` is read and, on a
            machine without a GPU, set to ``'pytorch'``.

    Returns:
        bool: True if the launcher is ``slurm`` (the environment was set).

    Raises:
        RuntimeError: ``--launcher slurm`` outside a Slurm task.
    """
    if cfg.get('launcher', 'none') != 'slurm':
        return False
    import torch
    from mmengine.logging import print_log
    task_env = slurm_task_env()
    os.environ.update(task_env)
    cpus = os.environ.get('SLURM_CPUS_PER_TASK')
    if 'OMP_NUM_THREADS' not in os.environ and cpus and cpus.isdigit():
        torch.set_num_threads(max(1, int(cpus)))
    gpu = torch.cuda.is_available()
    if not gpu:
        cfg.launcher = 'pytorch'  # gloo: setup_cpu_distributed
    # one line per task (non-zero ranks log nothing else)
    print(f'--launcher slurm: rank {task_env["RANK"]} of '
          f'{task_env["WORLD_SIZE"]} (local rank {task_env["LOCAL_RANK"]}) '
          f'on {socket.gethostname()}, Slurm job '
          f'{os.environ.get("SLURM_JOB_ID", "?")}', flush=True)
    if task_env['RANK'] == '0':
        print_log(
            f'--launcher slurm: rendezvous at {task_env["MASTER_ADDR"]}:'
            f'{task_env["MASTER_PORT"]}, {torch.get_num_threads()} torch '
            'threads per task, '
            + ('GPU (nccl unless env_cfg.dist_cfg.backend says otherwise)'
               if gpu else 'no GPU: gloo backend'),
            logger='current')
    return True
