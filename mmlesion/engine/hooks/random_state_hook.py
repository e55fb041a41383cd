# Copyright (c) mmlesion contributors. All rights reserved.
"""Save and restore the random generators so that a resume is exact."""
import logging
import random
from typing import Any, Dict, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmdet.registry import HOOKS

#: Key of the state in the checkpoint dict.
CHECKPOINT_KEY = 'mmlesion_random_state'


def get_random_state() -> Dict[str, Any]:
    """States of Python's ``random``, numpy's global generator, torch's CPU
    generator and (when available) every CUDA generator."""
    state = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`get_random_state` returned."""
    version, internal, gauss = state['python']  # lists from a checkpoint
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state['numpy'])
    torch.set_rng_state(torch.as_tensor(state['torch'], dtype=torch.uint8))
    if 'cuda' in state and torch.cuda.is_available():
        cuda = state['cuda']
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            print_log(
                f'RandomStateHook: the checkpoint holds {len(cuda)} CUDA '
                f'generator states, this machine has '
                f'{torch.cuda.device_count()} GPUs; CUDA generators are not '
                'restored (the resume is not bitwise exact on GPU).',
                logger='current', level=logging.WARNING)


def _samplers(dataloader) -> list:
    """The index sampler and the batch sampler of a dataloader."""
    found = []
    for name in ('sampler', 'batch_sampler'):
        sampler = getattr(dataloader, name, None)
        if sampler is not None and hasattr(sampler, 'seed'):
            found.append((name, sampler))
    inner = getattr(getattr(dataloader, 'batch_sampler', None), 'sampler',
                    None)
    if inner is not None and hasattr(inner, 'seed') and all(
            inner is not s for _, s in found):
        found.append(('batch_sampler.sampler', inner))
    return found


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Make a resumed run continue with the random numbers of an
    uninterrupted one.

    mmengine's checkpoints hold no random state, so after ``--resume`` the
    data order, the augmentations and the samplers draw other numbers. This
    hook snapshots the Python, numpy, torch CPU and CUDA generators at the
    end of each training epoch (before the checkpoint hook saves) and
    writes them, with the samplers' seeds, into every checkpoint
    (``checkpoint['mmlesion_random_state']``); it restores the snapshot at
    the start of the next epoch, in the uninterrupted run as in the resumed
    one (undoing what a validation in between consumed), and on
    ``--resume`` reads it back.

    A run resumed at an epoch boundary then gives bitwise the same weights
    as an uninterrupted run of the same seed, thread count and machine.
    Limits: dataloader workers with ``persistent_workers=True`` keep their
    own generators, which no checkpoint holds (use ``num_workers=0`` or
    ``persistent_workers=False`` where exactness matters); an
    iteration-based loop's data position follows mmengine's skipping of
    batches.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self) -> None:
        self._snapshot: Optional[Dict[str, Any]] = None

    def after_train_epoch(self, runner) -> None:
        """Snapshot the generators at the epoch boundary (every rank's: a
        distributed run gathers them, rank 0 writes them all)."""
        self._snapshot = get_random_state()
        self._rank_snapshots = (all_gather_object(self._snapshot)
                                if get_world_size() > 1 else None)

    def before_train_epoch(self, runner) -> None:
        """Restore the boundary snapshot (no-op before the first save)."""
        if self._snapshot is not None:
            set_random_state(self._snapshot)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Write the snapshot and the samplers' seeds into the checkpoint."""
        state = dict(self._snapshot or get_random_state())
        if getattr(self, '_rank_snapshots', None):
            state['ranks'] = self._rank_snapshots
        loop = getattr(runner, '_train_loop', None)
        dataloader = getattr(loop, 'dataloader', None)
        if dataloader is not None and not isinstance(dataloader, dict):
            state['sampler_seeds'] = {
                name: int(s.seed)
                for name, s in _samplers(dataloader) if s.seed is not None
            }
        checkpoint[CHECKPOINT_KEY] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """On resume, take the snapshot and the samplers' seeds back."""
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None or not getattr(runner, '_resume', False):
            return
        self._snapshot = {k: v for k, v in state.items()
                          if k not in ('sampler_seeds', 'ranks')}
        ranks = state.get('ranks')
        if ranks and len(ranks) == get_world_size():
            self._snapshot = ranks[get_rank()]
        elif get_world_size() > 1:
            print_log(
                f'RandomStateHook: the checkpoint holds the generators of '
                f'{len(ranks or [None])} rank(s), this run has '
                f'{get_world_size()}; every rank takes rank 0\'s (the resume '
                'is not bitwise exact).', logger='current',
                level=logging.WARNING)
        loop = getattr(runner, '_train_loop', None)
        dataloader = getattr(loop, 'dataloader', None)
        seeds = state.get('sampler_seeds', {})
        if dataloader is None or isinstance(dataloader, dict) or not seeds:
            return
        for name, sampler in _samplers(dataloader):
            if name in seeds and sampler.seed != seeds[name]:
                print_log(
                    f'RandomStateHook: {name} seed {sampler.seed} -> '
                    f'{seeds[name]} (the seed of the resumed run)',
                    logger='current', level=logging.INFO)
                sampler.seed = seeds[name]
