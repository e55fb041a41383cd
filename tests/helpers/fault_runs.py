# Copyright (c) mmlesion contributors. All rights reserved.
"""A tiny mmengine training run that a test kills at a chosen moment.

``python -m tests.helpers.fault_runs WORK_DIR --epochs 3`` trains a
two-layer model (dropout, shuffled sampler, augmentation drawing from
Python's ``random``, numpy and torch, a validation that draws random
numbers too) for a few epochs of 4 iterations with the checkpoint hooks of
``configs/_base_/default_runtime.py`` (:class:`AtomicCheckpointHook`,
:class:`RandomStateHook`). Its validation score is the epoch number times
``--score-sign``, so a new best checkpoint is written every epoch (sign 1)
or only after the first (sign -1).

``--kill-at PATTERN:N:MODE`` SIGKILLs the process at the N-th write of a
file whose name matches the ``fnmatch`` PATTERN: ``MODE`` ``mid-write``
(half the bytes are in the temporary file), ``before-rename`` (the
temporary file is complete and fsynced, the rename has not happened) or
``after-rename`` (the file is in place, nothing after it is done).

The same kill points serve any code that writes through
:mod:`mmlesion.utils.writing.atomic` (the converters, the planner):
:func:`run_killed` runs a function in a forked child with a kill
installed, :func:`recorded_commits` lists the files a run commits (the
points to kill at).
"""
import argparse
import contextlib
import fnmatch
import os
import os.path as osp
import random
import signal
import sys
import traceback
import uuid
from typing import Callable, Iterator, List, Optional

import numpy as np
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset


class ToyDataset(Dataset):
    """16 fixed samples; ``__getitem__`` adds noise from all 3 generators."""

    def __init__(self, size: int = 16) -> None:
        gen = torch.Generator().manual_seed(123)
        self.x = torch.randn(size, 8, generator=gen)
        self.y = (self.x.sum(1, keepdim=True) > 0).float()
        self.metainfo = dict(classes=('toy', ))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: int) -> dict:
        noise = 0.01 * (random.random() + float(np.random.rand()))
        x = self.x[idx] + noise + 0.01 * torch.randn(8)
        return dict(inputs=x, data_samples=self.y[idx])


class ToyModel(BaseModel):
    """Linear - ReLU - dropout - linear."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        out = self.net(torch.stack(inputs) if isinstance(inputs, list) else
                       inputs)
        if mode == 'loss':
            target = torch.stack(data_samples) if isinstance(
                data_samples, list) else data_samples
            return dict(loss=nn.functional.binary_cross_entropy_with_logits(
                out, target))
        return out


class EpochScoreMetric(BaseMetric):
    """``score`` = the current epoch x ``sign`` (draws a random number too,
    as a metric with random tie-breaking would)."""

    def __init__(self, sign: float = 1.) -> None:
        super().__init__()
        self.sign = sign

    def process(self, data_batch, data_samples) -> None:
        self.results.append(float(torch.rand(1)))

    def compute_metrics(self, results: list) -> dict:
        epoch = MessageHub.get_current_instance().get_info('epoch')
        return dict(score=self.sign * float(epoch))


def build_runner(work_dir: str,
                 epochs: int,
                 resume_from: Optional[str] = None,
                 score_sign: float = 1.,
                 max_keep_ckpts: int = 1,
                 random_state: bool = True,
                 seed: Optional[int] = 0,
                 save_best: Optional[str] = 'score') -> Runner:
    """The toy runner (see the module docstring); ``seed=None`` lets
    mmengine draw the seed, ``save_best=None`` keeps no best file."""
    loader = dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_size=4,
        num_workers=0,
        collate_fn=dict(type='default_collate'))
    hooks = dict(
        checkpoint=dict(
            type='AtomicCheckpointHook',
            interval=1,
            max_keep_ckpts=max_keep_ckpts,
            save_best=save_best,
            rule='greater'))
    if random_state:
        hooks['random_state'] = dict(type='RandomStateHook')
    torch.manual_seed(0)  # the model is built before the Runner seeds
    return Runner(
        model=ToyModel(),
        work_dir=work_dir,
        train_dataloader=loader,
        val_dataloader=dict(loader, sampler=dict(
            type='DefaultSampler', shuffle=False)),
        val_evaluator=Evaluator([EpochScoreMetric(score_sign)]),
        train_cfg=dict(by_epoch=True, max_epochs=epochs, val_interval=1),
        val_cfg=dict(),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        default_hooks=hooks,
        randomness=dict(seed=seed),
        resume=resume_from is not None,
        load_from=resume_from,
        default_scope='mmdet',
        experiment_name=f'toy_{uuid.uuid4().hex[:12]}')


def install_kill(spec: str) -> None:
    """Make the process SIGKILL itself at a write (see the module)."""
    import mmlesion.utils.checkpoints.backend as backend
    import mmlesion.utils.writing.atomic as aio
    pattern, nth, mode = spec.split(':')
    count = dict(n=0)

    def hit(path: str) -> bool:
        if not fnmatch.fnmatch(osp.basename(path), pattern):
            return False
        count['n'] += 1
        return count['n'] == int(nth)

    if mode == 'mid-write':
        real_write = backend.atomic_write_bytes

        def write(path: str, data: bytes) -> None:
            if hit(path):
                with aio.atomic_write(path, 'wb') as f:
                    f.write(data[:len(data) // 2])
                    f.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
            real_write(path, data)

        backend.atomic_write_bytes = write
    elif mode in ('before-rename', 'after-rename'):
        real_commit = aio._commit

        def commit(tmp: str, path: str) -> None:
            if mode == 'before-rename' and hit(path):
                os.kill(os.getpid(), signal.SIGKILL)
            real_commit(tmp, path)
            if mode == 'after-rename' and hit(path):
                os.kill(os.getpid(), signal.SIGKILL)

        aio._commit = commit
    else:
        raise ValueError(f'unknown kill mode {mode!r}')


def run_killed(spec: str, func: Callable[[], Optional[int]]) -> int:
    """Run ``func()`` in a forked child that :func:`install_kill` ``spec``
    (a real SIGKILL: its temporary files stay as a killed run leaves
    them).

    Args:
        spec (str): ``PATTERN:N:MODE`` (see the module).
        func (callable): the run (e.g. a tool's ``main`` with its argv);
            its return value is the child's exit status.

    Returns:
        int: the child's exit status, ``-signal.SIGKILL`` when killed.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 1
        try:
            install_kill(spec)
            code = func() or 0
        except BaseException:  # noqa: BLE001 (reported as status 1)
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code if isinstance(code, int) else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@contextlib.contextmanager
def recorded_commits() -> Iterator[List[str]]:
    """The final paths the atomic writers commit inside the block, in
    order (the kill points of :func:`install_kill`)."""
    import mmlesion.utils.writing.atomic as aio
    real_commit, paths = aio._commit, []

    def commit(tmp: str, path: str) -> None:
        real_commit(tmp, path)
        paths.append(osp.abspath(path))

    aio._commit = commit
    try:
        yield paths
    finally:
        aio._commit = real_commit


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('work_dir')
    parser.add_argument('--epochs', type=int, default=3)
    parser.add_argument('--resume', help='checkpoint, or "auto"')
    parser.add_argument('--score-sign', type=float, default=1.)
    parser.add_argument('--max-keep-ckpts', type=int, default=1)
    parser.add_argument('--no-random-state', action='store_true')
    parser.add_argument('--kill-at')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import mmlesion  # noqa: F401  (hooks, checkpoint loader)
    from mmlesion.utils import find_resumable_checkpoint
    if args.kill_at:
        install_kill(args.kill_at)
    resume = args.resume
    if resume == 'auto':
        resume = find_resumable_checkpoint(args.work_dir)
    runner = build_runner(args.work_dir, args.epochs, resume,
                          args.score_sign, args.max_keep_ckpts,
                          not args.no_random_state)
    runner.train()


if __name__ == '__main__':
    main()
