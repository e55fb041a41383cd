# Copyright (c) mmlesion contributors. All rights reserved.
"""The stages the rows of every method's tables share: a config's stem (the
model a row compares with and the name of its work folder), the training
of a config, its test and the ``--device`` option of an inference
stage.

The methods' table modules (``mmlesion/methods/<name>/tables.py``) import
these; nothing here imports a table module.
"""
import os.path as osp
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence

from .estimate import round_hours, training_gpu_hours, training_items
from .execute import config_epochs, froc_map
from .plan import PlanContext, Row, Stage


def config_stem(config: str) -> str:
    """The config's file name without ``.py`` (its model's name)."""
    return osp.splitext(osp.basename(config))[0]


@dataclass(frozen=True)
class Training:
    """A training of a row.

    Args:
        config (str): the config trained.
        seed (int): its ``randomness.seed``.
        dataset (str): the data whose size the GPU-hour estimate reads
            (``deeplesion``, ``kits19``, ...).
        options (Sequence[str]): more ``--cfg-options`` ``key=value``.
        name (str): the stage's name within the row.
        schedule_of (str, optional): the config whose epochs the estimate
            uses when ``config`` is written by an earlier stage.
    """
    config: str
    seed: int
    dataset: str = 'deeplesion'
    options: Sequence[str] = ()
    name: str = 'train'
    schedule_of: Optional[str] = None


@dataclass(frozen=True)
class Testing:
    """The test of a row's training.

    Args:
        tag (str): names the metrics file (``metrics_<tag>.json``).
        options (Sequence[str]): more ``--cfg-options`` ``key=value``.
        checkpoint (str): ``last`` (the newest checkpoint) or ``best`` (the
            one the checkpoint hook kept as the best on validation).
        model (str, optional): the model whose paper numbers the row is
            compared with (default: the config's stem).
    """
    tag: str = 'iou'
    options: Sequence[str] = ()
    checkpoint: str = 'last'
    model: Optional[str] = None


class StageWork(NamedTuple):
    """A training stage and its work dir."""
    stage: Stage
    work: str


class StageMetrics(NamedTuple):
    """A test stage and the metrics file it writes."""
    stage: Stage
    metrics: str


def train_stage(ctx: PlanContext, training: Training) -> StageWork:
    """The training (resumed from its newest checkpoint when run again) in
    ``<work>/<stem>/seed_<seed>``."""
    config, seed = training.config, training.seed
    work = osp.join(ctx.work_dir, config_stem(config), f'seed_{seed}')
    schedule = training.schedule_of or config
    stage = Stage(
        training.name, ctx.launcher('tools/train.py') +
        [config, '--work-dir', work, '--resume'] +
        ctx.options(config, f'randomness.seed={seed}', *training.options),
        outputs=[osp.join(work, 'last_checkpoint')],
        gpu_hours=round_hours(training_gpu_hours(
            schedule, config_epochs(schedule),
            training_items(ctx.data_root, training.dataset))),
        gpus=max(ctx.gpus, 1))
    return StageWork(stage, work)


def device_option(ctx: PlanContext) -> List[str]:
    """``--device`` of an inference stage: cuda:0 where the stages have a GPU."""
    return ['--device', 'cuda:0' if ctx.gpus > 0 and ctx.cuda else 'cpu']


def test_stage(ctx: PlanContext, config: str, work: str, tag: str,
               *extra: str, checkpoint: str = 'last') -> StageMetrics:
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
    return StageMetrics(stage, metrics)


def train_test_row(ctx: PlanContext, key: str, label: str,
                   training: Training, testing: Testing = Testing(),
                   pre: Sequence[Stage] = ()) -> Row:
    """A row of one training and the test of its checkpoint (the 2D FROC
    metrics), after the stages ``pre``."""
    train, work = train_stage(ctx, training)
    test, metrics = test_stage(ctx, training.config, work, testing.tag,
                               *testing.options,
                               checkpoint=testing.checkpoint)
    return Row(key, label, testing.model or config_stem(training.config),
               list(pre) + [train, test], metrics, froc_map(), training.seed)
