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
    """Rank 1 freezes (until the others are done); the all-reduce of every other
    rank must end after ``timeout_s`` with
    :class:`DistributedTimeoutError`, which each records in
    ``out_dir/rank<N>.json`` (message and seconds waited).

    The ranks leave with ``os._exit``: after a timed-out collective,
    gloo's work thread may still be alive, and the interpreter's teardown
    then aborts (``terminate called without an active exception``,
    SIGABRT) after the record was written, failing the spawn at random.
    What the test checks is the record, not torch's teardown.
    """
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world))
    dist.init_process_group(
        'gloo', init_method=f'file://{rendezvous}', rank=rank,
        world_size=world, timeout=datetime.timedelta(seconds=timeout_s))
    if rank == 1:  # frozen: never joins the all-reduce; ends once the
        # others have recorded their error (at most 4 timeouts)
        records = [os.path.join(out_dir, f'rank{r}.json')
                   for r in range(world) if r != 1]
        deadline = time.monotonic() + 4 * timeout_s
        while time.monotonic() < deadline and not all(
                map(os.path.isfile, records)):
            time.sleep(.2)
        os._exit(0)
    start = time.monotonic()
    try:
        with collective_timeout_errors(timeout_s):
            dist.all_reduce(torch.ones(1))
    except DistributedTimeoutError as err:
        record = dict(message=str(err), waited=time.monotonic() - start)
        with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(record, f)
        os._exit(0)
    raise AssertionError('the all-reduce with a frozen rank returned')
