# Copyright (c) mmlesion contributors. All rights reserved.
"""The stages the rows of every method's tables share: a config's stem (the
model a row compares with and the name of its work folder), the training
of a config, its test and the ``--device`` option of an inference
stage.

The methods' table modules (``mmlesion/methods/<name>/tables.py``) import
these; nothing here imports a table module.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from .estimate import round_hours, training_gpu_hours, training_items
from .execute import config_epochs, froc_map
from .plan import PlanContext, Row, Stage


def config_stem(config: str) -> str:
    """The config's file name without ``.py`` (its model's name)."""
    return osp.splitext(osp.basename(config))[0]


def train_stage(ctx: PlanContext, config: str, seed: int, dataset: str,
                *extra: str, name: str = 'train',
                schedule_of: Optional[str] = None) -> Tuple[Stage, str]:
    """A training of ``config`` (resumed from its newest checkpoint when
    run again) in ``<work>/<stem>/seed_<seed>``; returns the stage and its
    work dir. ``schedule_of``: the config whose epochs the estimate uses
    when ``config`` is written by an earlier stage."""
    work = osp.join(ctx.work_dir, config_stem(config), f'seed_{seed}')
    epochs = config_epochs(schedule_of or config)
    stage = Stage(
        name, ctx.launcher('tools/train.py') +
        [config, '--work-dir', work, '--resume'] +
        ctx.options(config, f'randomness.seed={seed}', *extra),
        outputs=[osp.join(work, 'last_checkpoint')],
        gpu_hours=round_hours(training_gpu_hours(
            schedule_of or config, epochs,
            training_items(ctx.data_root, dataset))),
        gpus=max(ctx.gpus, 1))
    return stage, work


def device_option(ctx: PlanContext) -> List[str]:
    """``--device`` of an inference stage: cuda:0 where the stages have a GPU."""
    return ['--device', 'cuda:0' if ctx.gpus > 0 and ctx.cuda else 'cpu']


def test_stage(ctx: PlanContext, config: str, work: str, tag: str,
          *extra: str, checkpoint: str = 'last') -> Tuple[Stage, str]:
    """The test of the newest checkpoint of ``work`` (``@last:``), or with
    ``checkpoint='best'`` of the one its checkpoint hook kept as the best on
    validation (``@best:``), resolved when the stage runs; returns the stage
    and its metrics."""
    metrics = osp.join(work, f'metrics_{tag}.json')
    stage = Stage(
        f'test_{tag}', ctx.launcher('tools/test.py') +
        [config, f'@{checkpoint}:{work}', '--work-dir',
         osp.join(work, f'test_{tag}'), '--metrics-out', metrics] +
        ctx.options(config, *extra),
        outputs=[metrics], gpus=max(ctx.gpus, 1))
    return stage, metrics


def train_test_row(ctx: PlanContext, key: str, label: str, config: str,
                   seed: int, dataset: str = 'deeplesion',
                   test_extra: Sequence[str] = (),
                   train_extra: Sequence[str] = (),
                   pre: Sequence[Stage] = (), model: Optional[str] = None,
                   tag: str = 'iou', schedule_of: Optional[str] = None,
                   checkpoint: str = 'last') -> Row:
    """A row of one training and the test of its checkpoint (the 2D FROC
    metrics), after the stages ``pre``; compared with ``model``'s paper
    numbers (default: the config's stem)."""
    train, work = train_stage(ctx, config, seed, dataset, *train_extra,
                              schedule_of=schedule_of)
    test, metrics = test_stage(ctx, config, work, tag, *test_extra,
                               checkpoint=checkpoint)
    return Row(key, label, model or config_stem(config),
               list(pre) + [train, test], metrics, froc_map(), seed)
