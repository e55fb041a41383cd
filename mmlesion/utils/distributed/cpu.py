# Copyright (c) mmlesion contributors. All rights reserved.
"""Distributed runs on machines without a GPU, where mmengine's
``pytorch`` launcher fails (``torch.cuda.set_device``, DDP device ids):
:func:`setup_cpu_distributed` initialises a ``gloo`` group itself and asks
for a DDP wrapper without device ids.
"""
import gc
import os
from typing import TYPE_CHECKING, Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config

from .guard import timeout_delta

if TYPE_CHECKING:  # pragma: no cover
    from mmengine.runner import Runner


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare a distributed CPU run if the launcher asks for one.

    Args:
        cfg (Config): the run's config; ``cfg.launcher`` must be set.
            ``env_cfg.dist_cfg.backend`` and ``model_wrapper_cfg`` are
            updated in place.

    Returns:
        bool: True if a CPU (gloo) process group was initialised here.

    Raises:
        RuntimeError: the launcher is not ``'pytorch'`` or the environment
            lacks ``RANK``/``WORLD_SIZE``.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} without a GPU is not supported; use '
            'tools/dist_train.sh (the pytorch launcher) on CPU machines.')
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if var not in os.environ:
            raise RuntimeError(
                f'--launcher pytorch: environment variable {var} is not '
                'set; start the job with tools/dist_train.sh or '
                '`python -m torch.distributed.run`.')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo', timeout=timeout_delta(cfg))
    return True


def close_distributed(runner: Optional['Runner'] = None) -> bool:
    """Leave the process group cleanly at the end of a finished run.

    The DDP wrapper is freed first, with the interpreter whole: a gloo
    thread freeing it at shutdown aborts the process. Call it only after
    the run ended normally on this rank.

    Args:
        runner (Runner, optional): the finished run's runner; its wrapper
            is freed before the group is left.

    Returns:
        bool: True if a process group was closed.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return False
    if runner is not None:
        unwrap_model(runner)
    gc.collect()  # the wrapper's reference cycles, with the GIL held
    torch_dist.barrier()
    torch_dist.destroy_process_group()
    return True


def unwrap_model(runner: 'Runner') -> bool:
    """Replace the model wrapper (DDP) of a runner whose run has ended by
    the model it wraps; True if a wrapper was taken off."""
    from mmengine.model import is_model_wrapper

    # mmengine's Runner has no setter for its model
    model = getattr(runner, '_model', None)
    if model is None or not is_model_wrapper(model):
        return False
    runner._model = model.module
    return True
