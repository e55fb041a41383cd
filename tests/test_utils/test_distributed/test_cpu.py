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


def test_close_distributed_frees_the_model_wrapper(tmp_path):
    """The runner's DDP wrapper is taken off and freed before the group is
    left: the runner keeps the model it wrapped, and nothing else holds the
    wrapper (its reducer's gloo work is released in this thread, not by a
    gloo thread at the interpreter's exit)."""
    import gc
    import weakref
    from types import SimpleNamespace

    import torch
    from mmengine.model import MMDistributedDataParallel

    from mmlesion.utils.distributed.cpu import unwrap_model
    dist.init_process_group(
        backend='gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
        world_size=1)
    try:
        model = torch.nn.Linear(3, 2)
        wrapper = MMDistributedDataParallel(module=model)
        wrapper(torch.ones(4, 3)).sum().backward()  # the reducer's work
        runner = SimpleNamespace(_model=wrapper)
        gone = weakref.ref(wrapper)
        del wrapper
        assert close_distributed(runner) is True
        gc.collect()
        assert runner._model is model  # the wrapped model stays
        assert gone() is None  # the wrapper itself is gone
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    # a bare model, or no model: nothing to take off
    assert unwrap_model(SimpleNamespace(_model=model)) is False
    assert unwrap_model(SimpleNamespace()) is False
