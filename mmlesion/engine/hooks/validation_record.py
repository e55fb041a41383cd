# Copyright (c) mmlesion contributors. All rights reserved.
"""Which validation of a training run finished last: mmengine saves
``epoch_N.pth`` before it validates epoch N, so a run killed while
validating would resume past it without this record.
"""
import contextlib
import json
import logging
import os
import os.path as osp
from dataclasses import replace
from typing import Optional, Tuple

from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmlesion.evaluation.functional.operating_points import OperatingPoints
from mmlesion.utils.writing.atomic import atomic_write_json

#: File name of the record in the work dir.
VALIDATION_RECORD = '.mmlesion-last-validation.json'


def record_path(work_dir: str) -> str:
    """The record file of ``work_dir``."""
    return osp.join(work_dir, VALIDATION_RECORD)


def read_validation_record(work_dir: str) -> Optional[Tuple[int, int]]:
    """The ``(epoch, iter)`` of the last finished validation, if recorded.

    Args:
        work_dir (str): the training work dir.

    Returns:
        tuple[int, int] | None: None without a (readable) record.
    """
    path = record_path(work_dir)
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
        epoch, it = data['epoch'], data['iter']
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        print_log(f'Ignoring the unreadable {path}: {err}',
                  logger='current', level=logging.WARNING)
        return None
    ints = all(type(v) is int for v in (epoch, it))
    return (epoch, it) if ints else None


def write_validation_record(work_dir: str, epoch: int, it: int) -> None:
    """Record (atomically) that the validation at ``(epoch, it)`` finished.

    Args:
        work_dir (str): the training work dir.
        epoch (int): ``runner.epoch`` during that validation.
        it (int): ``runner.iter`` during that validation.
    """
    atomic_write_json(record_path(work_dir),
                      dict(epoch=int(epoch), iter=int(it)))


def remove_validation_record(work_dir: str) -> None:
    """Forget the record (a new, not resumed, run starts in ``work_dir``)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(record_path(work_dir))


def validation_due(loop) -> Optional[str]:
    """Whether the train loop validates right after its current step (the
    condition of mmengine's train loops' ``run``).

    Args:
        loop: ``runner.train_loop``.

    Returns:
        str | None: ``'epoch N'`` / ``'iter N'`` when that step is
        validated; None when it is not, or for another kind of loop.
    """
    if isinstance(loop, EpochBasedTrainLoop):
        kind, step, last = 'epoch', loop.epoch, loop.max_epochs
    elif isinstance(loop, IterBasedTrainLoop):
        kind, step, last = 'iter', loop.iter, loop.max_iters
    else:
        return None
    if step <= 0:
        return None
    loop._decide_current_val_interval()  # as the loop does after a step
    if step >= loop.val_begin and (step % loop.val_interval == 0
                                   or step == last):
        return f'{kind} {step}'
    return None


def _split_name(dataset) -> Optional[str]:
    """The annotation file(s) of a (concatenated) dataset, each with its
    split where it has one (``DL_info.csv (val)``)."""
    from mmlesion.datasets.deeplesion.dl_info import SPLITS
    names = []
    for part in getattr(dataset, 'datasets', None) or [dataset]:
        name = str(getattr(part, 'ann_file', '') or '')
        split = getattr(part, 'split', None)
        if name and split is not None:
            split = {v: k for k, v in SPLITS.items()}.get(split, split)
            name += f' ({split})'
        names.append(name)
    return ' + '.join(n for n in names if n) or None


def validated_operating_points(runner) -> Optional[OperatingPoints]:
    """The thresholds the validation that just ended chose, stamped with
    its data (``split``) and step, or None when no metric chose any
    (:attr:`~mmlesion.evaluation.metrics.FROCMetric.operating_points`).

    Args:
        runner (Runner): right after a validation (``after_val_epoch``).
    """
    loop = getattr(runner, 'val_loop', None)
    evaluator = getattr(loop, 'evaluator', None)
    for metric in getattr(evaluator, 'metrics', ()):
        points = getattr(metric, 'operating_points', None)
        if isinstance(points, OperatingPoints):
            dataset = getattr(getattr(loop, 'dataloader', None), 'dataset',
                              None)
            return replace(points, split=_split_name(dataset),
                           epoch=int(runner.epoch), iter=int(runner.iter))
    return None
