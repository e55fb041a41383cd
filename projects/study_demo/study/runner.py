# Copyright (c) mmlesion contributors. All rights reserved.
"""Run a study: every selected row for every seed, resumably.

A row/seed whose ``result.json`` exists (made with the same settings) is
not run again, so an interrupted study continues where it stopped and a
later call with more rows or seeds only runs what is missing. Results are
written atomically: a result file is whole or absent.
"""
import json
import math
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config

from mmlesion.utils.writing.atomic import atomic_write_json
from mmlesion.utils.code_digest import code_fingerprint
from mmlesion.utils.configs.lookup import get_config
from .driver_digest import drivers_digest
from .row_run import apply_run_settings, final_checkpoint, train_and_test
from .rows import RowContext, StudyMetric, StudyRow, StudySettings

RESULT_FORMAT = 'mmlesion-study-result-v1'
RESULT_FILE = 'result.json'


def _jsonable(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples -> lists, keys sorted)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def row_seed_dir(settings: StudySettings, row: StudyRow, seed: int) -> str:
    """Work dir of one row and seed: ``{work_dir}/{row.key}/seed_{seed}``."""
    return osp.join(settings.work_dir, row.key, f'seed_{seed}')


def row_fingerprint(row: StudyRow, seed: int, settings: StudySettings,
                    metric: StudyMetric) -> dict:
    """Everything that decides a row/seed's result (compared on reuse):
    the row, seed and shared settings, and the code that runs it (package
    version and digests of its sources and configs,
    :func:`~mmlesion.utils.code_digest.code_fingerprint`, and the digest of
    the study drivers in ``projects/``, :func:`~.driver_digest.
    drivers_digest`), so that a result of other code is never reused."""
    out = dict(
        code=dict(code_fingerprint(), drivers=drivers_digest()),
        config=row.config,
        overrides=row.overrides,
        extra=row.fingerprint,
        seed=seed,
        data_root=settings.data_root,
        max_epochs=settings.max_epochs,
        cfg_options=settings.cfg_options,
        evaluator=metric.evaluator)
    if row.tests_from is not None:  # absent otherwise: old results stay valid
        out['tests_from'] = row.tests_from
    return _jsonable(out)


def load_row_config(config: str) -> Config:
    """A row's config: an existing file, else a path under ``configs/``."""
    if osp.isfile(config):
        return Config.fromfile(config)
    return get_config(config)


def build_row_config(row: StudyRow,
                     settings: StudySettings,
                     seed: int,
                     metric: Optional[StudyMetric] = None,
                     row_dir: Optional[str] = None,
                     checkpoint: Optional[str] = None) -> Config:
    """Load a row's config and apply its overrides, the metric's evaluator,
    then the shared settings (so ``settings.cfg_options`` win, also on
    ``test_evaluator``).

    The pre-step ``row.prepare`` is not run here (see :func:`run_study`).

    Returns:
        Config: the config to train and test.
    """
    cfg = load_row_config(row.config)
    if row.overrides:
        cfg.merge_from_dict(dict(row.overrides))
    if metric is not None and metric.evaluator is not None:
        cfg.test_evaluator = dict(metric.evaluator)
    row_dir = row_dir or row_seed_dir(settings, row, seed)
    apply_run_settings(cfg, row_dir, seed, settings.data_root,
                       settings.max_epochs, checkpoint, settings.cfg_options)
    return cfg


def default_row_run(cfg: Config, ctx: RowContext) -> Dict[str, float]:
    """Train (if ``ctx.train``) and test with mmengine's Runner."""
    return train_and_test(cfg, train=ctx.train)


@dataclass
class RowResult:
    """The results of one row over the study's seeds.

    Attributes:
        row (StudyRow): the row.
        metrics (dict): seed -> numeric test metrics, for the seeds done.
        status (dict): seed -> ``'run'``, ``'reused'`` or ``'not run: ...'``.
    """
    row: StudyRow
    metrics: Dict[int, Dict[str, float]] = field(default_factory=dict)
    status: Dict[int, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """Whether at least one seed has a result."""
        return bool(self.metrics)

    def mean(self) -> Dict[str, float]:
        """Mean over the done seeds of each key (NaN where any seed is)."""
        keys = sorted({k for m in self.metrics.values() for k in m})
        return {
            k: float(np.mean([m.get(k, math.nan)
                              for m in self.metrics.values()]))
            for k in keys
        }

    def std(self) -> Dict[str, Optional[float]]:
        """Sample std (ddof 1) over the done seeds; None with one seed."""
        if len(self.metrics) < 2:
            return {k: None for k in self.mean()}
        return {
            k: float(
                np.std([m.get(k, math.nan) for m in self.metrics.values()],
                       ddof=1))
            for k in self.mean()
        }

    def not_run(self) -> Dict[int, str]:
        """seed -> reason, for the seeds without a result."""
        return {s: v for s, v in self.status.items() if s not in self.metrics}


@dataclass
class StudyResult:
    """The outcome of :func:`run_study`: one :class:`RowResult` per row of
    the table, selected or not, in table order."""
    rows: List[RowResult]
    settings: StudySettings
    metric: StudyMetric

    def by_label(self, only_done: bool = True) -> Dict[str, Dict[str, float]]:
        """label -> mean metrics over the seeds (rows with results)."""
        return {
            r.row.label: r.mean()
            for r in self.rows if r.done or not only_done
        }


def _read_result(path: str) -> Optional[dict]:
    """A stored result with this fingerprint; None if absent.

    Raises:
        ValueError: if the file is not a study result.
    """
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f'{path}: unreadable study result ({err}); delete '
                         'it to run this row/seed again') from err
    if not isinstance(data, dict) or data.get('format') != RESULT_FORMAT:
        raise ValueError(f'{path}: not a study result (format '
                         f'{RESULT_FORMAT!r} expected)')
    return data


def _differences(old: dict, new: dict) -> List[str]:
    keys = sorted(set(old) | set(new))
    return [
        f'{k}: {old.get(k)!r} -> {new.get(k)!r}' for k in keys
        if old.get(k) != new.get(k)
    ]


def run_study(rows: Sequence[StudyRow],
              settings: StudySettings,
              metric: StudyMetric,
              selected: Optional[Sequence[str]] = None,
              run_row: Callable[[Config, RowContext],
                                Dict[str, float]] = default_row_run,
              log: Callable[[str], None] = print) -> StudyResult:
    """Run the selected rows of a study for every seed; collect every row.

    Each selected row/seed with a stored result made with the same settings
    is reused; a row with ``tests_from`` tests the last checkpoint of that
    earlier row (same seed) without training; otherwise its config is built
    (:func:`build_row_config`), the
    row's pre-step ``prepare`` runs, then ``row.run`` (or ``run_row``), and
    the numeric metrics are written atomically to its ``result.json``.
    Rows that are not selected are reported from their stored results when
    those match the settings, and as not run otherwise.

    Args:
        rows (Sequence[StudyRow]): the study table.
        settings (StudySettings): shared settings (work dir, seeds, ...).
        metric (StudyMetric): what the rows are compared on.
        selected (Sequence[str], optional): keys of the rows to run, in
            table order; default: all.
        run_row (callable): default row runner ``(cfg, ctx) -> metrics``
            (train and test with mmengine's Runner).
        log (callable): progress lines.

    Returns:
        StudyResult: every row of the table with its per-seed metrics.

    Raises:
        ValueError: duplicate or unknown row keys; a stored result made with
            other settings (unless ``settings.overwrite``).
    """
    keys = [r.key for r in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f'study rows: duplicate keys in {keys}')
    for i, row in enumerate(rows):
        if row.tests_from is not None and row.tests_from not in keys[:i]:
            raise ValueError(
                f'study row {row.key!r}: tests_from={row.tests_from!r} must '
                f'be an earlier row of the table ({keys[:i]})')
    selected = keys if selected is None else list(selected)
    unknown = [k for k in selected if k not in keys]
    if unknown:
        raise ValueError(f'study rows: unknown {unknown}; rows are {keys}')
    out = []
    for row in rows:
        res = RowResult(row)
        for seed in settings.seeds:
            res.status[seed] = _run_one(row, seed, settings, metric,
                                        row.key in selected, run_row, res,
                                        log)
        out.append(res)
    return StudyResult(out, settings, metric)


def _run_one(row: StudyRow, seed: int, settings: StudySettings,
             metric: StudyMetric, is_selected: bool, run_row: Callable,
             res: RowResult, log: Callable[[str], None]) -> str:
    """Run or reuse one row/seed; store its metrics in ``res``."""
    row_dir = row_seed_dir(settings, row, seed)
    path = osp.join(row_dir, RESULT_FILE)
    fingerprint = row_fingerprint(row, seed, settings, metric)
    stored = _read_result(path)
    if stored is not None:
        diff = _differences(stored.get('fingerprint', {}), fingerprint)
        if not diff:
            res.metrics[seed] = dict(stored['metrics'])
            if is_selected:
                log(f'study: {row.key} seed {seed}: result exists, reused '
                    f'({path})')
            return 'reused'
        if not is_selected:
            return 'not run: stored result made with other settings'
        if not settings.overwrite:
            raise ValueError(
                f'{path}: stored result of row {row.key!r} seed {seed} was '
                f'made with other settings ({"; ".join(diff)}); use another '
                'work dir or overwrite=True (--overwrite) to run it again')
    if not is_selected:
        return 'not run'
    log(f'study: {row.key} seed {seed}: running in {row_dir}')
    start = time.time()
    try:
        cfg = build_row_config(row, settings, seed, metric, row_dir)
        if row.tests_from is not None:
            source = StudyRow(row.tests_from, row.tests_from, '')
            cfg.load_from = final_checkpoint(
                row_seed_dir(settings, source, seed),
                cfg.train_cfg.max_epochs, row.tests_from)
        elif settings.skip_train:
            cfg.load_from = final_checkpoint(row_dir,
                                             cfg.train_cfg.max_epochs,
                                             row.key)
        ctx = RowContext(row, seed, row_dir, settings,
                         train=not settings.skip_train
                         and row.tests_from is None)
        if row.prepare is not None:
            cfg = row.prepare(cfg, ctx) or cfg
        metrics = (row.run or run_row)(cfg, ctx)
    except Exception as err:  # noqa: B902 (reported, or re-raised)
        if not settings.keep_going:
            raise
        log(f'study: {row.key} seed {seed}: failed: {err!r}')
        return f'not run: failed ({type(err).__name__}: {err})'
    metrics = {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    atomic_write_json(
        path,
        dict(
            format=RESULT_FORMAT,
            row=row.key,
            label=row.label,
            seed=seed,
            seconds=round(time.time() - start, 1),
            fingerprint=fingerprint,
            metrics=metrics),
        indent=2)
    res.metrics[seed] = metrics
    return 'run'
