# Copyright (c) mmlesion contributors. All rights reserved.
"""Worker of the distributed fault test of a frozen rank.

They live in an importable module because spawned processes cannot import
test files.
"""
import datetime
import json
import os
import time

import torch
import torch.distributed as dist

from mmlesion.utils.distributed.guard import (DistributedTimeoutError,
                                       collective_timeout_errors)


def frozen_rank_worker(rank: int, world: int, rendezvous: str, out_dir: str,
                       timeout_s: float) -> None:
    """Rank 1 freezes (sleeps 4 timeouts); rank 0's all-reduce must end
    after ``timeout_s`` with :class:`DistributedTimeoutError`, which it
    records in ``out_dir/rank0.json`` (message and seconds waited).

    Both ranks leave with ``os._exit``: after a timed-out collective,
    gloo's work thread may still be alive, and the interpreter's teardown
    then aborts (``terminate called without an active exception``,
    SIGABRT) after the record was written, failing the spawn at random.
    What the test checks is the record, not torch's teardown.
    """
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world))
    dist.init_process_group(
        'gloo', init_method=f'file://{rendezvous}', rank=rank,
        world_size=world, timeout=datetime.timedelta(seconds=timeout_s))
    if rank != 0:
        time.sleep(4 * timeout_s)  # frozen: never joins the all-reduce
        os._exit(0)
    start = time.monotonic()
    try:
        with collective_timeout_errors(timeout_s):
            dist.all_reduce(torch.ones(1))
    except DistributedTimeoutError as err:
        record = dict(message=str(err), waited=time.monotonic() - start)
        with open(os.path.join(out_dir, 'rank0.json'), 'w') as f:
            json.dump(record, f)
        os._exit(0)
    raise AssertionError('the all-reduce with a frozen rank returned')
