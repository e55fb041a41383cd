# Copyright (c) mmlesion contributors. All rights reserved.
"""Same seed, same thread count: identical numbers.

Two tiny training runs of the demo detector (ResNet-18 Faster R-CNN, two
iterations on 4 generated key slices, CPU, one thread) with
``randomness.seed=0`` give bit-identical losses at every iteration and
bit-identical weights; a run with seed 1 differs, so the test can fail.
This is what the README promises: ``--cfg-options randomness.seed=S`` (or
``tools/run_demo.py --seed S``) with the same ``OMP_NUM_THREADS`` gives the
same numbers.
"""
from typing import Dict, List

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmlesion.testing import repo_root

CONFIG = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


class _Losses(Hook):
    """Every iteration's loss values."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.history: List[Dict[str, float]] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.history.append({k: float(v) for k, v in outputs.items()})


def _train(root, work_dir, seed: int):
    cfg = Config.fromfile(str(repo_root() / CONFIG))
    data_root = str(root) + '/'
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root': data_root,
        'train_dataloader.dataset.indices': 4,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': 1,
        'default_hooks.logger.interval': 1,
    })
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'determinism_{work_dir.name}'
    runner = Runner.from_cfg(cfg)
    losses = _Losses()
    runner.register_hook(losses)
    runner.train()
    weights = {
        k: v.detach().clone()
        for k, v in runner.model.state_dict().items()
    }
    return losses.history, weights


def test_same_seed_same_threads_identical_numbers(tiny_demo_root, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        loss_a, weights_a = _train(tiny_demo_root, tmp_path / 'a', seed=0)
        loss_b, weights_b = _train(tiny_demo_root, tmp_path / 'b', seed=0)
        loss_c, weights_c = _train(tiny_demo_root, tmp_path / 'c', seed=1)
    finally:
        torch.set_num_threads(threads)
    assert len(loss_a) == 2 and loss_a == loss_b  # exact, every iteration
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    # another seed: other numbers (the check is not vacuous)
    assert loss_c != loss_a
    assert not all(torch.equal(weights_a[k], weights_c[k]) for k in weights_a)
