# Copyright (c) mmlesion contributors. All rights reserved.
"""Distributed jobs that end, with a clear error, when a rank is stuck or
the launcher dies.

* **Timeout.** Every collective of the process group gives up after
  :func:`dist_timeout_seconds` (``MMLESION_DIST_TIMEOUT`` in the
  environment, else ``env_cfg.dist_cfg.timeout`` of the config, else
  1800 s, PyTorch's and mmengine's default for gloo); a rank that waits
  longer for a frozen (``SIGSTOP``, hung I/O) or dead peer raises, and
  :func:`collective_timeout_errors` turns torch's message into one naming
  the rank, the timeout and the setting. The launcher (``torchrun``) then
  ends the other ranks.
* **Launcher death.** :func:`exit_with_parent` asks Linux to send the
  worker ``SIGTERM`` when its parent (``torchrun``) dies, even by
  ``SIGKILL`` (``prctl(PR_SET_PDEATHSIG)``, what torchelastic's own agent
  cannot do once it is killed); ``tools/dist_train.sh`` ``exec``s
  ``torchrun``, so killing the script kills the launcher, whose death ends
  the workers.
"""
import contextlib
import ctypes
import ctypes.util
import datetime
import os
import re
import signal
import sys
from typing import Iterator, Optional

from mmengine.config import Config

#: PyTorch's (and mmengine's) default process-group timeout for gloo.
DEFAULT_TIMEOUT_S = 1800.
ENV_TIMEOUT = 'MMLESION_DIST_TIMEOUT'
_PR_SET_PDEATHSIG = 1
_TIMEOUT_RE = re.compile(r'timed? ?out|timeout|Connection closed by peer|'
                         r'Connection reset by peer', re.IGNORECASE)


class DistributedTimeoutError(RuntimeError):
    """A collective operation waited longer than the process-group
    timeout, or a peer rank vanished."""


def dist_timeout_seconds(cfg: Optional[Config] = None) -> float:
    """The process-group timeout in seconds (see the module).

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
    """For a distributed run (``cfg.launcher`` not ``'none'``): end this
    worker with its launcher (:func:`exit_with_parent`) and set the
    process-group timeout (:func:`apply_dist_timeout`).

    Returns:
        float: the timeout in seconds (for
        :func:`collective_timeout_errors`).
    """
    if cfg.get('launcher', 'none') == 'none':
        return dist_timeout_seconds(cfg)
    exit_with_parent()
    return apply_dist_timeout(cfg)


def timeout_delta(cfg: Config) -> datetime.timedelta:
    """The timeout as ``init_process_group`` takes it."""
    return datetime.timedelta(seconds=dist_timeout_seconds(cfg))


@contextlib.contextmanager
def collective_timeout_errors(timeout_s: float) -> Iterator[None]:
    """Re-raise a collective's timeout as :class:`DistributedTimeoutError`
    naming this rank, the timeout and how to change it.

    Args:
        timeout_s (float): the process group's timeout, for the message.
    """
    try:
        yield
    except RuntimeError as err:  # torch.distributed.DistBackendError too
        import torch.distributed as torch_dist
        if isinstance(err, DistributedTimeoutError) or not (
                torch_dist.is_available() and torch_dist.is_initialized()
                and _TIMEOUT_RE.search(str(err))):
            raise
        rank = os.environ.get('RANK', '?')
        world = os.environ.get('WORLD_SIZE', '?')
        first = str(err).strip().splitlines()[0][:300] if str(err) else ''
        raise DistributedTimeoutError(
            f'rank {rank} of {world}: a collective operation got no answer '
            f'from the other ranks within {timeout_s:g} s (a rank frozen, '
            'hung on I/O or dead?); ending this rank so that the launcher '
            f'ends the job. The timeout is {ENV_TIMEOUT} (environment) or '
            f'env_cfg.dist_cfg.timeout (config), in seconds. torch: '
            f'{first}') from err


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
