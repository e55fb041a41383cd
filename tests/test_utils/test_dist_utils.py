# Copyright (c) mmlesion contributors. All rights reserved.
"""Leaving a distributed run cleanly (``close_distributed``)."""
import torch.distributed as dist

from mmlesion.utils import close_distributed


def test_close_distributed_leaves_the_group(tmp_path):
    assert close_distributed() is False  # nothing to close
    dist.init_process_group(
        backend='gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
        world_size=1)
    try:
        assert dist.is_initialized()
        assert close_distributed() is True
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    assert close_distributed() is False
