# Copyright (c) mmlesion contributors. All rights reserved.
"""Distributed jobs that end, with a clear error, when a rank is stuck or
the launcher dies: every collective gives up after
:func:`dist_timeout_seconds`, :func:`collective_timeout_errors` names the
rank, the timeout or the peer that died, and :func:`exit_with_parent`
ends a worker whose launcher died (docs/cluster.md).
"""
import contextlib
import ctypes
import ctypes.util
import datetime
import os
import functools
import re
import signal
import sys
import time
from typing import Iterator, List, Optional

from mmengine.config import Config

#: PyTorch's (and mmengine's) default process-group timeout for gloo.
DEFAULT_TIMEOUT_S = 1800.
ENV_TIMEOUT = 'MMLESION_DIST_TIMEOUT'
_PR_SET_PDEATHSIG = 1
_TIMEOUT_RE = re.compile(r'timed? ?out|timeout|Connection closed by peer|'
                         r'Connection reset by peer|Broken pipe|'
                         r'remote process exited', re.IGNORECASE)
#: torch's words for a peer whose process ended (gloo, NCCL).
_CLOSED_RE = re.compile(r'Connection (closed|reset) by peer|Broken pipe|'
                        r'remote process exited|ncclRemoteError',
                        re.IGNORECASE)
_PEER_RE = re.compile(r'by peer \[?([0-9a-fA-F.:]+)\]?:(\d+)')
#: Seconds a launcher lets a rank it asked to stop run on before it kills
#: it: torchrun's fixed ``PContext.close(timeout=30)`` and the default of
#: Slurm's ``KillWait``.
LAUNCHER_GRACE_S = 30.
#: Store key prefix of the ranks whose collective timed out.
_CHECK_IN = 'mmlesion/timed_out/rank'
#: torch.distributed functions timed by :func:`collective_timeout_errors`.
_TIMED = ('all_reduce', 'barrier', 'broadcast', 'all_gather', 'gather',
          'scatter', 'reduce', 'all_gather_object', 'broadcast_object_list',
          'gather_object', 'all_to_all', 'reduce_scatter',
          'all_gather_into_tensor', 'reduce_scatter_tensor', 'send', 'recv',
          'monitored_barrier')


class DistributedTimeoutError(RuntimeError):
    """A collective operation waited longer than the process-group
    timeout, or a peer rank vanished."""


def dist_timeout_seconds(cfg: Optional[Config] = None) -> float:
    """The process-group timeout in seconds: ``MMLESION_DIST_TIMEOUT``,
    else ``env_cfg.dist_cfg.timeout``, else 1800.

    Raises:
        ValueError: the environment variable or the config holds no
            positive number.
    """
    value, source = os.environ.get(ENV_TIMEOUT), ENV_TIMEOUT
    if value is None and cfg is not None:
        value = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
        source = 'env_cfg.dist_cfg.timeout'
    if value is None:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.
    if not seconds > 0:
        raise ValueError(
            f'{source} = {value!r}: the distributed timeout must be a '
            'positive number of seconds')
    return seconds


def apply_dist_timeout(cfg: Config) -> float:
    """Write :func:`dist_timeout_seconds` into ``env_cfg.dist_cfg.timeout``
    (mmengine's ``init_dist`` passes it to ``init_process_group``).

    Returns:
        float: the timeout in seconds.
    """
    seconds = dist_timeout_seconds(cfg)
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg.timeout = seconds
    return seconds


def guard_distributed(cfg: Config) -> float:
    """For a distributed run: end this worker with its launcher, print a
    timeout that ends it in one line and set the process-group timeout.

    Returns:
        float: the timeout in seconds.
    """
    if cfg.get('launcher', 'none') == 'none':
        return dist_timeout_seconds(cfg)
    exit_with_parent()
    sys.excepthook = print_timeout_in_one_line
    return apply_dist_timeout(cfg)


def timeout_delta(cfg: Config) -> datetime.timedelta:
    """The timeout as ``init_process_group`` takes it."""
    return datetime.timedelta(seconds=dist_timeout_seconds(cfg))


class _CollectiveClock:
    """Start time of the collective this process is in (outermost call)."""

    def __init__(self) -> None:
        self.start: Optional[float] = None
        self.name: Optional[str] = None
        self.depth = 0

    def wrap(self, name: str, func):

        @functools.wraps(func)
        def timed(*args, **kwargs):
            if self.depth == 0:
                self.start, self.name = time.monotonic(), name
            self.depth += 1
            try:
                return func(*args, **kwargs)
            finally:
                self.depth -= 1
                if self.depth == 0 and sys.exc_info()[0] is None:
                    self.start = self.name = None

        timed._mmlesion_timed = True
        return timed


@contextlib.contextmanager
def _timed_collectives(clock: _CollectiveClock) -> Iterator[None]:
    import torch.distributed as torch_dist
    patched: List[tuple] = []
    for name in _TIMED:
        func = getattr(torch_dist, name, None)
        if func is None or getattr(func, '_mmlesion_timed', False):
            continue
        setattr(torch_dist, name, clock.wrap(name, func))
        patched.append((name, func))
    try:
        yield
    finally:
        for name, func in patched:
            setattr(torch_dist, name, func)


def describe_collective_error(err: BaseException, timeout_s: float,
                              waited: Optional[float] = None,
                              operation: Optional[str] = None) -> str:
    """One message for a failed collective: a peer that closed the
    connection (its process ended) or a real timeout.

    Args:
        err (BaseException): torch's error.
        timeout_s (float): the process group's timeout.
        waited (float, optional): seconds the collective waited, if known.
        operation (str, optional): the collective (``all_reduce``...).

    Returns:
        str: the message (naming this rank, and the peer where it can).
    """
    rank = os.environ.get('RANK', '?')
    world = os.environ.get('WORLD_SIZE', '?')
    text = str(err)
    first = text.strip().splitlines()[0][:300] if text else ''
    what = operation or 'a collective operation'
    # a peer whose own collective timed out closes its connections too:
    # after a whole timeout that is the timeout, not a peer that died
    if _CLOSED_RE.search(text) and not (waited is not None
                                        and waited >= .9 * timeout_s):
        peer = (f'rank {1 - int(rank)}' if rank.isdigit() and world == '2'
                else 'another rank')
        found = _PEER_RE.search(text)
        if found:
            peer += f' ({found.group(1)}:{found.group(2)})'
        when = (f'while this rank waited in {what}' if waited is None else
                f'after this rank had waited {waited:.3g} s in {what}')
        return (f'rank {rank} of {world}: {peer} closed the connection '
                f'(its process ended: crashed, killed or out of memory?) '
                f'{when}; not a timeout (that is {timeout_s:g} s). Look at '
                "that rank's log for the cause; ending this rank so that "
                f'the launcher ends the job. torch: {first}')
    waited_text = '' if waited is None else f' (waited {waited:.3g} s)'
    silent = (silent_ranks(int(rank), int(world), min(timeout_s,
                                                      LAUNCHER_GRACE_S))
              if rank.isdigit() and world.isdigit() else [])
    who = 'rank ' + ', '.join(map(str, silent)) if silent else ''
    return ((f'{who} of {world} froze (stopped, hung on I/O or dead?): '
             if silent else '') + f'rank {rank} of {world}: {what} got no '
            f'answer from {who or "the other ranks"} within {timeout_s:g} '
            f's{waited_text}; ending this rank so that the launcher '
            "ends the job: a frozen rank is killed after the launcher's "
            f'grace period, up to {LAUNCHER_GRACE_S:g} s more (torchrun: '
            f'{LAUNCHER_GRACE_S:g} s; Slurm: KillWait, {LAUNCHER_GRACE_S:g} '
            's by default). The timeout is '
            f'{ENV_TIMEOUT} (environment) or env_cfg.dist_cfg.timeout '
            f'(config), in seconds. torch: {first}')


def silent_ranks(rank: int, world: int, wait_s: float) -> List[int]:
    """The ranks that froze, seen from a rank whose collective timed out:
    those that do not check in to the store within ``wait_s``.

    Args:
        rank (int): this rank.
        world (int): the number of ranks.
        wait_s (float): how long to wait for the others to check in.

    Returns:
        list[int]: the silent ranks.
    """
    if world == 2:
        return [1 - rank]
    try:
        from torch.distributed.distributed_c10d import _get_default_store
        store = _get_default_store()
        # its server may be in the frozen process: never wait on it long
        store.set_timeout(datetime.timedelta(seconds=min(wait_s, 5.)))
        store.set(f'{_CHECK_IN}{rank}', '1')
        deadline = time.monotonic() + wait_s
        while True:
            silent = [r for r in range(world)
                      if not store.check([f'{_CHECK_IN}{r}'])]
            if len(silent) <= 1 or time.monotonic() > deadline:
                return silent
            time.sleep(.2)
    except Exception:  # no default group or store: cannot be told
        return []


def print_timeout_in_one_line(exc_type, exc, tb) -> None:
    """``sys.excepthook`` of a distributed worker: a
    :class:`DistributedTimeoutError` as one line, not a traceback."""
    if isinstance(exc, DistributedTimeoutError):
        sys.stderr.write(f'error: {exc}\n')
        sys.stderr.flush()
    else:
        sys.__excepthook__(exc_type, exc, tb)


@contextlib.contextmanager
def collective_timeout_errors(timeout_s: float) -> Iterator[None]:
    """Re-raise a failed collective as :class:`DistributedTimeoutError`
    saying what happened (:func:`describe_collective_error`).

    Args:
        timeout_s (float): the process group's timeout, for the message.
    """
    clock = _CollectiveClock()
    try:
        with _timed_collectives(clock):
            yield
    except RuntimeError as err:  # torch.distributed.DistBackendError too
        import torch.distributed as torch_dist
        if isinstance(err, DistributedTimeoutError) or not (
                torch_dist.is_available() and torch_dist.is_initialized()
                and _TIMEOUT_RE.search(str(err))):
            raise
        waited = None if clock.start is None else \
            time.monotonic() - clock.start
        raise DistributedTimeoutError(
            describe_collective_error(err, timeout_s, waited,
                                      clock.name)) from err


def exit_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have this process receive ``sig`` when its parent dies (Linux).

    Args:
        sig (int): the signal. Defaults to ``SIGTERM`` (Python ends; a
            worker stuck in C code gets it when it returns to Python, use
            ``SIGKILL`` to end it at once).

    Returns:
        bool: False where ``prctl`` is not available (not Linux).
    """
    if not sys.platform.startswith('linux'):
        return False
    libc_name = ctypes.util.find_library('c')
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    parent = os.getppid()
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent died before the prctl
        os.kill(os.getpid(), sig)
    return True
