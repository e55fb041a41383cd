# Copyright (c) mmlesion contributors. All rights reserved.
"""Save and restore the random generators so that a resume is exact."""
import logging
import random
from typing import List, Optional, TypedDict

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmdet.registry import HOOKS

#: Key of the state in the checkpoint dict.
CHECKPOINT_KEY = 'mmlesion_random_state'


class RandomState(TypedDict, total=False):
    """The generators' states, as the checkpoint stores them under
    :data:`CHECKPOINT_KEY` (a checkpoint's JSON-like record: a dict).

    Attributes:
        python (tuple): ``random.getstate()`` (lists once read back).
        numpy (tuple): ``np.random.get_state()``.
        torch (torch.Tensor): ``torch.get_rng_state()``.
        cuda (list[torch.Tensor]): every CUDA generator's (when CUDA is
            initialised).
    """
    python: tuple
    numpy: tuple
    torch: torch.Tensor
    cuda: List[torch.Tensor]


def get_random_state() -> RandomState:
    """States of Python's ``random``, numpy's global generator, torch's CPU
    generator and (when available) every CUDA generator."""
    state = RandomState(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: RandomState) -> None:
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


def _samplers(runner) -> list:
    """The index sampler and the batch sampler of the training loop's
    dataloader."""
    dataloader = getattr(getattr(runner, '_train_loop', None), 'dataloader',
                         None)
    if dataloader is None or isinstance(dataloader, dict):
        return []
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
    uninterrupted one (mmengine's checkpoints hold none).

    The generators are snapshot at each epoch's end, written with the
    samplers' seeds into every checkpoint and restored at the next epoch's
    start (undoing what a validation consumed), so a resume at an epoch
    boundary gives bitwise the same weights (docs/faults_and_resume.md;
    not with ``persistent_workers=True``).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self) -> None:
        self._snapshot: Optional[RandomState] = None

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
        samplers = _samplers(runner)
        if samplers:
            state['sampler_seeds'] = {name: int(s.seed)
                                      for name, s in samplers
                                      if s.seed is not None}
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
        seeds = state.get('sampler_seeds', {})
        for name, sampler in _samplers(runner) if seeds else ():
            if name in seeds and sampler.seed != seeds[name]:
                print_log(
                    f'RandomStateHook: {name} seed {sampler.seed} -> '
                    f'{seeds[name]} (the seed of the resumed run)',
                    logger='current', level=logging.INFO)
                sampler.seed = seeds[name]
