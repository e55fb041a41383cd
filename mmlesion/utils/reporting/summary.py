# Copyright (c) mmlesion contributors. All rights reserved.
"""The few lines a training prints at its end: where everything went."""
import os.path as osp
import re
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

RULE = '=' * 72
TITLE = ('Training done: checkpoints and config in the work dir, the log '
         'in its <timestamp>/ folder')


@dataclass(frozen=True)
class BestCheckpoint:
    """The checkpoint a ``save_best`` hook kept.

    Args:
        path (str): the checkpoint file.
        metric (str): the metric it is best on (``froc/sens@4``).
        score (float, optional): its value.
        epoch (int, optional): the epoch (or iteration) it was saved at,
            read from its file name.
    """
    path: str
    metric: str
    score: Optional[float] = None
    epoch: Optional[int] = None


def aligned_rows(rows: Sequence[Tuple[str, str]],
                 indent: str = '  ') -> List[str]:
    """``what  value`` lines with the values in one column.

    Args:
        rows (Sequence[tuple[str, str]]): ``(what, value)`` pairs.
        indent (str): put before each line.

    Returns:
        list[str]: one line per pair.
    """
    width = max((len(what) for what, _ in rows), default=0)
    return [f'{indent}{what:<{width}}  {value}' for what, value in rows]


def best_checkpoints(runner: Any) -> List[BestCheckpoint]:
    """The best checkpoints the runner's checkpoint hooks saved.

    Args:
        runner (mmengine.runner.Runner): a runner after ``train()``.

    Returns:
        list[BestCheckpoint]: one per ``save_best`` metric whose checkpoint
        exists (empty without ``save_best`` or before any validation).
    """
    from mmengine.hooks import CheckpointHook
    info = runner.message_hub.runtime_info
    found = []
    for hook in runner.hooks:
        if not isinstance(hook, CheckpointHook) or not hook.save_best:
            continue
        keys = hook.key_indicators
        for key in keys:
            suffix = '' if len(keys) == 1 else f'_{key}'
            path = info.get(f'best_ckpt{suffix}')
            if not path or not osp.isfile(path):
                continue
            score = info.get(f'best_score{suffix}')
            epoch = re.search(r'(?:epoch|iter)_(\d+)\.pth$', path)
            found.append(BestCheckpoint(
                str(path), key, None if score is None else float(score),
                int(epoch.group(1)) if epoch else None))
    return found


def training_summary(work_dir: str, log_dir: str, timestamp: str,
                     config_file: Optional[str],
                     best: Sequence[BestCheckpoint] = ()) -> str:
    """Where a finished training put everything, in a few lines.

    Args:
        work_dir (str): the run's work dir (checkpoints, config copy).
        log_dir (str): its ``<timestamp>/`` folder (log, ``vis_data/``).
        timestamp (str): the run's timestamp (the log's name).
        config_file (str, optional): the config copy in ``work_dir``.
        best (Sequence[BestCheckpoint]): :func:`best_checkpoints`.

    Returns:
        str: the summary, between two rules.
    """
    from ..checkpoints.resume import recorded_last_checkpoint
    rows = [('work dir', osp.join(work_dir, ''))]
    # in this work dir: a resumed copy names its own, not the original's
    last = recorded_last_checkpoint(work_dir)
    if last:
        rows.append(('last checkpoint', last))
    for b in best:
        score = '' if b.score is None else f' {b.score:.4f}'
        epoch = '' if b.epoch is None else f', epoch {b.epoch}'
        rows.append(('best checkpoint',
                      f'{b.path}  (val {b.metric}{score}{epoch})'))
    rows.append(('log folder', osp.join(log_dir, '')))
    log_file = osp.join(log_dir, f'{timestamp}.log')
    if osp.isfile(log_file):
        rows.append(('  log', log_file))
    vis_data = osp.join(log_dir, 'vis_data')
    if osp.isdir(vis_data):
        rows.append(('  scalars', osp.join(vis_data, '')))
    if config_file and osp.isfile(config_file):
        rows.append(('config', config_file))
    return '\n'.join(['', RULE, TITLE] + aligned_rows(rows) + [RULE])


def runner_training_summary(runner: Any) -> str:
    """:func:`training_summary` of a runner after ``train()``."""
    filename = runner.cfg.filename
    name = (osp.basename(filename) if filename else
            f'{runner.timestamp}.py')
    return training_summary(
        str(runner.work_dir), str(runner.log_dir), runner.timestamp,
        osp.join(str(runner.work_dir), name), best_checkpoints(runner))
