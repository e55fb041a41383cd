# Copyright (c) mmlesion contributors. All rights reserved.
"""One training per work dir at a time: an exclusive :func:`fcntl.flock`
on ``<work_dir>/.mmlesion-train.lock`` (released by the kernel however the
process ends), whose file names the owner a refused second run reports.
Only stdlib imports (taken before torch is imported).
"""
import datetime
import errno
import json
import os
import os.path as osp
import socket
import sys
from typing import IO, Optional

#: Name of the lock file inside the work dir.
LOCK_NAME = '.mmlesion-train.lock'


class WorkDirBusyError(RuntimeError):
    """The work dir is used by another running training."""


class WorkDirLock:
    """An exclusive, non-blocking lock on a work dir (see the module).

    Args:
        work_dir (str): the folder (created if missing).
        what (str): how the holder is described in the refusal (the
            option the user gives, e.g. ``--work-dir``).
    """

    def __init__(self, work_dir: str, what: str = 'work dir') -> None:
        self.work_dir = osp.abspath(work_dir)
        self.path = osp.join(self.work_dir, LOCK_NAME)
        self.what = what
        self._file: Optional[IO] = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._file is not None

    def acquire(self) -> 'WorkDirLock':
        """Take the lock or raise naming its holder.

        Raises:
            WorkDirBusyError: another process holds it (naming its PID,
                host, start time and command).
            OSError: the work dir cannot be created or written.
        """
        import fcntl
        if self._file is not None:
            return self
        os.makedirs(self.work_dir, exist_ok=True)
        f = open(self.path, 'a+', encoding='utf-8')
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES,
                                 errno.EWOULDBLOCK):
                f.close()
                raise
            f.seek(0)
            holder = describe_holder(f.read())
            f.close()
            raise WorkDirBusyError(self.busy_message(holder)) from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps(dict(
            pid=os.getpid(), host=socket.gethostname(),
            started=datetime.datetime.now().astimezone().isoformat(
                timespec='seconds'),
            command=' '.join(sys.argv))) + '\n')
        f.flush()
        self._file = f
        return self

    def busy_message(self, holder: str) -> str:
        """The one-line refusal, naming the folder and ``holder``
        (:func:`describe_holder`)."""
        return (f'{self.work_dir}: {self.what} in use by another training '
                f'({holder}); two runs in one work dir overwrite each '
                "other's checkpoints. Wait for it to end, stop it, or "
                'choose another --work-dir')

    def release(self) -> None:
        """Release the lock (the process's end releases it too)."""
        if self._file is not None:
            import fcntl
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            finally:
                self._file.close()
                self._file = None

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def describe_holder(text: str) -> str:
    """The holder recorded in a lock file, in words."""
    try:
        info = json.loads(text)
        return (f"PID {info['pid']} on host {info['host']}, started "
                f"{info['started']}: {info.get('command', '?')}")
    except (ValueError, KeyError, TypeError):
        return 'its PID is not recorded'


#: Environment variables holding the global rank, by launcher.
_RANK_VARS = ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK')
#: Locks this process holds, by lock file (flock treats two open()s of
#: one file in one process as two owners: a second lock of the same work
#: dir by the same run reuses the first).
_HELD = {}


def is_rank_zero() -> bool:
    """Whether this process is the job's rank 0 (the launchers' rank
    variables: torchrun, slurm, MPI; a process without one is rank 0)."""
    for var in _RANK_VARS:
        if var in os.environ:
            try:
                return int(os.environ[var]) == 0
            except ValueError:
                return True
    return True


def lock_work_dir(work_dir: str,
                  what: str = 'work dir') -> Optional[WorkDirLock]:
    """Lock ``work_dir`` for the rest of this process's life (rank 0 only).

    Args:
        work_dir (str): the training's work dir.
        what (str): named in the refusal.

    Returns:
        WorkDirLock | None: the lock (None on other ranks).

    Raises:
        WorkDirBusyError: another running process holds the lock.
    """
    if not is_rank_zero():
        return None
    lock = WorkDirLock(work_dir, what)
    held = _HELD.get(lock.path)
    if held is not None and held.held:
        return held
    _HELD[lock.path] = lock.acquire()
    return lock
