# Copyright (c) mmlesion contributors. All rights reserved.
"""Running one row of a study: the settings shared by every row and the
default train-then-test step.

Every row of a study (:mod:`projects.study_demo.study`) is trained on the same
data with the same schedule and seed and tested on the same split; the
settings applied to every row and the train-then-test step live here once.
"""
import os.path as osp
import time
from typing import Dict, Optional

from mmengine.config import Config
from mmengine.runner import Runner

from mmlesion.utils.configs.pretty_text import without_yapf


def apply_run_settings(cfg: Config,
                       work_dir: str,
                       seed: int = 0,
                       data_root: Optional[str] = None,
                       max_epochs: Optional[int] = None,
                       checkpoint: Optional[str] = None,
                       cfg_options: Optional[dict] = None) -> Config:
    """Apply the settings shared by every row of a demo comparison.

    Args:
        cfg (Config): the row's config, modified in place.
        work_dir (str): work dir of this row.
        seed (int): random seed (the same for every row).
        data_root (str, optional): data root of every loader.
        max_epochs (int, optional): schedule length for every row alike;
            epoch-based scheduler ends follow it. Milestones: a shorter
            schedule keeps those before its end (none left: one at the last
            epoch), a longer one scales them with the length (12 epochs with
            a step at 9 become 36 with a step at 27: the config's schedule
            stretched, not 27 epochs at the reduced rate).
        checkpoint (str, optional): weights to test (no training).
        cfg_options (dict, optional): extra options for every row.

    Returns:
        Config: ``cfg``.
    """
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed, deterministic=False)
    if data_root is not None:
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader'):
            cfg[loader].dataset.data_root = data_root
    if max_epochs is not None:
        length = cfg.train_cfg.max_epochs
        cfg.train_cfg.max_epochs = max_epochs
        cfg.train_cfg.val_interval = max_epochs
        for sched in cfg.param_scheduler:
            if sched.get('by_epoch', True) and 'end' in sched:
                sched.end = max_epochs
            if 'milestones' in sched and max_epochs > length:
                sched.milestones = [
                    min(max(round(m * max_epochs / length), 1),
                        max_epochs - 1) for m in sched.milestones
                ]
            elif 'milestones' in sched:
                sched.milestones = [
                    m for m in sched.milestones if m < max_epochs
                ] or [max(max_epochs - 1, 1)]
        cfg.default_hooks.checkpoint.interval = max_epochs
    if checkpoint is not None:
        cfg.load_from = checkpoint
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def final_checkpoint(row_dir: str, epochs: int, row: str) -> str:
    """Path of a row's last checkpoint, for testing without training
    (``--skip-train``, or a row that tests another row's weights).

    Raises:
        FileNotFoundError: if the row was not trained yet.
    """
    checkpoint = osp.join(row_dir, f'epoch_{epochs}.pth')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'no checkpoint {checkpoint} of row {row!r}: train that row '
            'first (without --skip-train)')
    return checkpoint


#: Metric key of the test time per image (ms) added by
#: :func:`train_and_test`.
TIME_KEY = 'time/ms_per_image'


def train_and_test(cfg: Config, train: bool = True) -> Dict[str, float]:
    """Train (optionally) and test one row; return its numeric metrics.

    Besides the evaluator's metrics, ``time/ms_per_image`` (:data:`TIME_KEY`)
    is the wall time of the whole test loop (data loading, model, metric)
    divided by the number of test images: comparable between the rows of
    one study run on one machine, not a benchmark.
    """
    runner = Runner.from_cfg(without_yapf(cfg))
    if train:
        runner.train()
    start = time.perf_counter()
    metrics = runner.test()
    seconds = time.perf_counter() - start
    out = {
        k: float(v)
        for k, v in metrics.items() if isinstance(v, (int, float))
    }
    num_images = len(runner.test_dataloader.dataset)
    if num_images:
        out[TIME_KEY] = 1000. * seconds / num_images
    return out
