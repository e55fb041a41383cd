# Copyright (c) mmlesion contributors. All rights reserved.
"""Run a test's worker in several CPU processes (torch.distributed, gloo)."""
import multiprocessing
import time
from typing import Callable, Sequence

import torch.multiprocessing as mp


def spawn_workers(worker: Callable, args: Sequence, nprocs: int,
                  timeout_s: float = 120.) -> None:
    """``torch.multiprocessing.spawn`` with a deadline, the ranks forked
    from a fork server.

    The worker gets ``(rank, *args)``, as with ``mp.spawn``; it must live in
    an importable module (spawned processes cannot import test files). The
    fork server (one a test process, started by the first call) imported
    that call's worker module, torch and mmdet with it, once: each rank is a
    fork of it instead of a new interpreter importing them again.
    A worker's exception is raised here. Processes still running after
    ``timeout_s`` (e.g. a rank waiting forever in an all-reduce) are
    terminated and ``TimeoutError`` is raised.

    Args:
        worker (Callable): ``worker(rank, *args)``.
        args (Sequence): the other arguments.
        nprocs (int): number of processes (ranks).
        timeout_s (float): seconds until the processes count as hung.
    """
    multiprocessing.set_forkserver_preload([worker.__module__])
    ctx = mp.start_processes(worker, args=tuple(args), nprocs=nprocs,
                             join=False, start_method='forkserver')
    deadline = time.monotonic() + timeout_s
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                if p.is_alive():
                    p.terminate()
            raise TimeoutError(
                f'{getattr(worker, "__name__", worker)} did not finish in '
                f'{timeout_s:g} s with {nprocs} processes (a rank hung, '
                'e.g. in an all-reduce?)')
