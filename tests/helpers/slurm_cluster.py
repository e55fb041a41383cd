# Copyright (c) mmlesion contributors. All rights reserved.
"""A one-node Slurm cluster on this machine, for the tests of
``tools/slurm_train.sh`` / ``tools/slurm_test.sh``.

:class:`LocalSlurmCluster` starts a private ``munged`` (its own key and
socket), ``slurmctld`` and ``slurmd`` with every file (``slurm.conf``,
state, spool, logs, pid files) under one folder, on two free TCP ports, so
that it touches neither ``/etc/slurm`` nor ``/run/munge`` nor another
cluster on the machine. Slurm's commands reach it through the environment
of :meth:`LocalSlurmCluster.env` (``SLURM_CONF``). :meth:`stop` cancels
its jobs and ends the three daemons by the pids in their pid files (never
by name).

Needs root (``slurmd`` starts the tasks; ``SlurmUser=root``) and the Debian
/ Ubuntu package ``slurm-wlm`` (``slurmctld``, ``slurmd``, ``srun`` ...,
with ``munge``). :func:`unavailable_reason` says what is missing.
"""
import os
import os.path as osp
import re
import shutil
import signal
import socket
import subprocess
import time
from typing import Dict, List, Optional

#: Commands the cluster needs (package slurm-wlm, with munge).
REQUIRED = ('munged', 'munge', 'unmunge', 'slurmctld', 'slurmd', 'srun',
            'sbatch', 'sinfo', 'squeue', 'scancel', 'scontrol')
PARTITION = 'debug'


class SlurmUnavailable(RuntimeError):
    """The cluster cannot be started here (the reason is the message)."""


def _which(name: str) -> Optional[str]:
    path = os.environ.get('PATH', '') + os.pathsep + '/usr/sbin:/sbin'
    return shutil.which(name, path=path)


def unavailable_reason() -> Optional[str]:
    """Why a cluster cannot be started here, or None."""
    if not hasattr(os, 'geteuid') or os.geteuid() != 0:
        return ('a local Slurm cluster needs root (slurmd starts the tasks '
                'as the submitting user)')
    missing = [name for name in REQUIRED if _which(name) is None]
    if missing:
        return (f'Slurm / munge commands not found: {", ".join(missing)} '
                '(apt-get install slurm-wlm)')
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has ended
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def _comm(pid: int) -> str:
    try:
        with open(f'/proc/{pid}/comm') as f:
            return f.read().strip()
    except OSError:
        return ''


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return f'(no {path})'


class LocalSlurmCluster:
    """A one-node Slurm cluster (partition ``debug``) under ``root_dir``.

    Args:
        root_dir (str): folder for the config, state, logs and pid files
            (created; should be new). Its path must be short enough for a
            Unix socket (about 100 characters).
        cpus (int, optional): CPUs the node announces (default: the
            machine's, at least 2; ``SlurmdParameters=config_overrides``
            lets it exceed the hardware).

    Example::

        cluster = LocalSlurmCluster('/tmp/slurm').start()
        subprocess.run(['srun', '-n2', 'hostname'], env=cluster.env())
        cluster.stop()
    """

    def __init__(self, root_dir: str, cpus: Optional[int] = None) -> None:
        self.root = osp.abspath(root_dir)
        self.cpus = cpus or max(2, os.cpu_count() or 1)
        self.host = socket.gethostname().split('.')[0]
        self.conf = osp.join(self.root, 'slurm.conf')
        self.munge_dir = osp.join(self.root, 'munge')
        self.munge_socket = osp.join(self.munge_dir, 'munge.socket')
        self.pid_files = dict(
            slurmd=osp.join(self.root, 'slurmd.pid'),
            slurmctld=osp.join(self.root, 'slurmctld.pid'),
            munged=osp.join(self.munge_dir, 'munged.pid'))
        self.logs = dict(
            slurmd=osp.join(self.root, 'log', 'slurmd.log'),
            slurmctld=osp.join(self.root, 'log', 'slurmctld.log'),
            munged=osp.join(self.munge_dir, 'munged.log'))
        self.started = False

    # environment -----------------------------------------------------

    def env(self, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """``base`` (default ``os.environ``) with ``SLURM_CONF`` set to
        this cluster's config (and the sbin folders on the PATH)."""
        env = dict(os.environ if base is None else base)
        for var in list(env):  # nothing of an outer cluster's job
            if var.startswith('SLURM_'):
                del env[var]
        env['SLURM_CONF'] = self.conf
        env['PATH'] = env.get('PATH', '') + os.pathsep + '/usr/sbin:/sbin'
        return env

    def _run(self, args: List[str], timeout: float = 30,
             check: bool = True) -> subprocess.CompletedProcess:
        args = [_which(args[0]) or args[0]] + list(args[1:])
        proc = subprocess.run(
            args, env=self.env(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise SlurmUnavailable(
                f'{" ".join(args)} failed ({proc.returncode}): '
                f'{proc.stdout[-2000:]}')
        return proc

    # start -----------------------------------------------------------

    def _write_config(self) -> None:
        ctld_port, slurmd_port = _free_port(), _free_port()
        while slurmd_port == ctld_port:
            slurmd_port = _free_port()
        r = self.root
        lines = [
            'ClusterName=mmlesiontest',
            f'SlurmctldHost={self.host}(127.0.0.1)',
            f'SlurmctldPort={ctld_port}',
            f'SlurmdPort={slurmd_port}',
            'SlurmUser=root',
            'SlurmdUser=root',
            'AuthType=auth/munge',
            'CredType=cred/munge',
            f'AuthInfo=socket={self.munge_socket}',
            f'StateSaveLocation={r}/state',
            f'SlurmdSpoolDir={r}/spool',
            f'SlurmctldPidFile={self.pid_files["slurmctld"]}',
            f'SlurmdPidFile={self.pid_files["slurmd"]}',
            f'SlurmctldLogFile={self.logs["slurmctld"]}',
            f'SlurmdLogFile={self.logs["slurmd"]}',
            'ProctrackType=proctrack/linuxproc',
            'TaskPlugin=task/none',
            'MpiDefault=none',
            'SchedulerType=sched/backfill',
            # a job whose dependency ended starts within a second, not at
            # the next backfill pass (30 s by default) or main loop (60 s)
            'SchedulerParameters=bf_interval=1,sched_interval=1',
            'SelectType=select/cons_tres',
            'SelectTypeParameters=CR_Core',
            'SlurmdParameters=config_overrides',
            'ReturnToService=2',
            'MailProg=/bin/true',
            # a job killed by `scontrol requeue` may start again at once
            'JobRequeue=1',
            'KillWait=5',
            f'NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} '
            'State=UNKNOWN',
            f'PartitionName={PARTITION} Nodes={self.host} Default=YES '
            'MaxTime=INFINITE State=UP',
        ]
        with open(self.conf, 'w') as f:
            f.write('\n'.join(lines) + '\n')

    def _start_munge(self) -> None:
        os.makedirs(self.munge_dir, exist_ok=True)
        # munged insists: socket folder (and its parents) searchable by
        # all, key readable by its owner only.
        for path in (self.root, self.munge_dir):
            os.chmod(path, 0o755)
        key = osp.join(self.munge_dir, 'munge.key')
        with open(key, 'wb') as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o600)
        proc = self._run([
            'munged', f'--socket={self.munge_socket}', f'--key-file={key}',
            f'--log-file={self.logs["munged"]}',
            f'--pid-file={self.pid_files["munged"]}',
            f'--seed-file={osp.join(self.munge_dir, "munged.seed")}'
        ], check=False)
        if proc.returncode != 0:
            raise SlurmUnavailable(
                f'munged failed to start ({proc.returncode}): '
                f'{proc.stdout.strip()} {_tail(self.logs["munged"], 5)}')
        cred = subprocess.run(
            [_which('munge'), '-n', '-S', self.munge_socket],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check = subprocess.run(
            [_which('unmunge'), '-S', self.munge_socket], input=cred.stdout,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if b'Success' not in check.stdout:
            raise SlurmUnavailable(
                'munge -n | unmunge failed: '
                + check.stdout.decode(errors='replace')[-500:]
                + cred.stderr.decode(errors='replace')[-500:])

    def start(self, timeout: float = 60) -> 'LocalSlurmCluster':
        """Start munged, slurmctld and slurmd; wait until ``srun`` runs a
        task (at most ``timeout`` seconds).

        Raises:
            SlurmUnavailable: a daemon did not start (with its log's
                tail); what was started is stopped again.
        """
        reason = unavailable_reason()
        if reason is not None:
            raise SlurmUnavailable(reason)
        if len(self.munge_socket) > 100:
            raise SlurmUnavailable(
                f'{self.root}: path too long for a Unix socket')
        for sub in ('state', 'spool', 'log'):
            os.makedirs(osp.join(self.root, sub), exist_ok=True)
        self.started = True
        try:
            self._start_munge()
            self._write_config()
            for daemon in ('slurmctld', 'slurmd'):
                args = [daemon, '-f', self.conf]
                if daemon == 'slurmctld':
                    args.append('-i')  # no state to recover
                proc = self._run(args, check=False)
                if proc.returncode != 0:
                    raise SlurmUnavailable(
                        f'{daemon} failed to start: {proc.stdout.strip()} '
                        f'{_tail(self.logs[daemon])}')
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ''
        while time.monotonic() < deadline:
            proc = self._run(['sinfo', '-h', '-o', '%T'], check=False)
            last = proc.stdout.strip()
            if proc.returncode == 0 and last.startswith(('idle', 'mix')):
                hello = self._run(['srun', '-N1', '-n1', '-t', '1', 'true'],
                                  timeout=max(5., deadline -
                                              time.monotonic()),
                                  check=False)
                if hello.returncode == 0:
                    return
                last = hello.stdout
            time.sleep(0.5)
        raise SlurmUnavailable(
            f'the local Slurm node did not become ready in {timeout:g} s '
            f'(sinfo: {last!r}); slurmctld log: '
            f'{_tail(self.logs["slurmctld"])} slurmd log: '
            f'{_tail(self.logs["slurmd"])}')

    def log_tail(self, daemon: str, lines: int = 30) -> str:
        """The last ``lines`` lines of ``daemon``'s log (``slurmctld``,
        ``slurmd`` or ``munged``), for an error message."""
        return _tail(self.logs[daemon], lines)

    # jobs ------------------------------------------------------------

    def job_ids(self, attempts: int = 5) -> List[str]:
        """Ids of the cluster's pending or running jobs.

        ``squeue`` may fail for a moment while slurmctld is busy (a
        requeue, say); it is asked again up to ``attempts`` times before
        the answer counts as "no jobs".
        """
        for attempt in range(attempts):
            proc = self._run(['squeue', '-h', '-o', '%i'], check=False)
            if proc.returncode == 0:
                return proc.stdout.split()
            time.sleep(0.2 * (attempt + 1))
        return []

    def job_state(self, job_id: str) -> Optional[str]:
        """The job's ``JobState`` (``PENDING``, ``RUNNING``, ``REQUEUED``,
        ``COMPLETED``, ...) as slurmctld reports it, or ``None`` where it
        does not know the job (any more) or did not answer."""
        proc = self._run(['scontrol', 'show', 'job', '-o', job_id],
                         check=False)
        match = re.search(r'\bJobState=(\S+)', proc.stdout)
        return match.group(1) if proc.returncode == 0 and match else None

    def cancel_all(self, timeout: float = 30) -> None:
        """Cancel every job and wait until none is left."""
        ids = self.job_ids()
        if ids:
            self._run(['scancel'] + ids, check=False)
        deadline = time.monotonic() + timeout
        while self.job_ids() and time.monotonic() < deadline:
            time.sleep(0.5)

    # stop ------------------------------------------------------------

    def _pid(self, daemon: str) -> Optional[int]:
        try:
            with open(self.pid_files[daemon]) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, timeout: float = 15) -> None:
        """Cancel the jobs, then end slurmd, slurmctld and munged by the
        pids in their pid files (SIGTERM, SIGKILL after ``timeout``)."""
        if not self.started:
            return
        if self._pid('slurmctld') is not None:
            try:
                self.cancel_all()
            except (OSError, subprocess.SubprocessError):
                pass
        for daemon in ('slurmd', 'slurmctld', 'munged'):
            pid = self._pid(daemon)
            # the pid file may be stale: only a process of that name
            if pid is None or not _pid_alive(pid) or \
                    not _comm(pid).startswith(daemon[:15]):
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.started = False


def task_pids(job_name: str, rank: int,
              argv_contains: str = 'python') -> List[int]:
    """Pids of the processes of Slurm task ``rank`` of the job named
    ``job_name`` whose command line contains ``argv_contains`` (read from
    ``/proc``; root sees all). The batch script of an ``sbatch`` job has
    ``SLURM_PROCID=0`` too: ``argv_contains`` tells its shell (and the
    ``srun`` it runs) from the task."""
    want = {
        b'SLURM_JOB_NAME=' + job_name.encode(),
        b'SLURM_PROCID=' + str(rank).encode()
    }
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/environ', 'rb') as f:
                env = set(f.read().split(b'\0'))
            with open(f'/proc/{entry}/cmdline', 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        if want <= env and argv and \
                argv_contains.encode() in argv[0] and \
                not argv[0].endswith((b'srun', b'bash', b'sh')):
            found.append(int(entry))
    return found
