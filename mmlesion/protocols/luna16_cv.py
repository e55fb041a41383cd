# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16's 10-fold cross-validation in one run (3D Aggregated Faster R-CNN,
Sec. IV): train and test every fold, pool the held-out candidates.

Layout of a run's ``work_dir``::

    fold<k>/                 # the fold's mmengine work dir (checkpoints,
                             # logs) as `tools/train.py CONFIG --fold k`
    fold<k>/candidates.csv   # LUNA16 candidates of the held-out scans
    fold<k>/seriesuids.csv   # the held-out scans (one uid a line)
    fold<k>/fold_done.json   # written last: the fold is complete
    candidates.csv           # the folds' candidates, pooled
    seriesuids.csv           # every held-out scan

A fold with ``fold_done.json`` is skipped; any other fold is trained with
mmengine's resume from the newest intact checkpoint of its work dir (a
finished training resumes at its last epoch and stops at once), then
tested. Files are written to a temporary name and moved into place, so an
interrupted run never leaves a half-written CSV or marker.
"""
import csv
import json
import os.path as osp
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import Config
from mmengine.runner import Runner

from mmlesion.evaluation.functional.luna16 import (LUNA16Candidates,
                                                   read_candidates_csv,
                                                   read_seriesuids_csv,
                                                   write_candidates_csv)
from mmlesion.utils import apply_cv_fold, find_resumable_checkpoint
from mmlesion.utils.writing.atomic import atomic_write, atomic_write_json
from mmlesion.utils.configs.cfg_options import apply_cfg_options
from mmlesion.utils.configs.pretty_text import formatted_once
from .luna16_candidates import predict_candidates

FOLD_DONE = 'fold_done.json'


@dataclass
class FoldRecord:
    """One fold of the cross-validation, as ``fold_done.json`` records it.

    Args:
        fold (int): the held-out fold.
        checkpoint (str): its last checkpoint.
        num_scans (int): held-out scans tested.
        num_candidates (int): their candidates.
        train_s (float): seconds of training.
        test_s (float): seconds of testing.
        skipped (bool): done before, read from its ``fold_done.json``.
    """
    fold: int
    checkpoint: str
    num_scans: int
    num_candidates: int
    train_s: float
    test_s: float
    skipped: bool = False

    @classmethod
    def from_file(cls, path: str) -> 'FoldRecord':
        """A fold done before (``skipped``), from its ``fold_done.json``."""
        with open(path) as f:
            record = json.load(f)
        record.pop('skipped', None)
        return cls(**record, skipped=True)

    def to_dict(self) -> Dict[str, Any]:
        """``fold_done.json`` (``skipped`` only when True)."""
        out = asdict(self)
        if not self.skipped:
            out.pop('skipped')
        return out


@dataclass
class PooledFolds:
    """The folds' candidates and scans pooled into the run's work dir.

    Args:
        candidates (str): path of the pooled ``candidates.csv``.
        seriesuids (str): path of the pooled ``seriesuids.csv``.
        num_candidates (int): pooled candidates.
        num_scans (int): held-out scans of all folds.
    """
    candidates: str
    seriesuids: str
    num_candidates: int
    num_scans: int


def _write_json(path: str, payload: dict) -> None:
    atomic_write_json(path, payload, indent=2)


def write_seriesuids(path: str, uids: Sequence[str]) -> None:
    """Write LUNA16's ``seriesuids.csv`` (one uid a line) atomically."""
    with atomic_write(path, newline='') as f:
        csv.writer(f).writerows([u] for u in uids)


def write_candidates(path: str, cands: LUNA16Candidates) -> None:
    """Write candidates in the official CSV format, atomically."""
    # write_candidates_csv writes through utils.writing.atomic itself
    write_candidates_csv(path, cands.seriesuids, cands.xyz,
                         cands.probability)


def fold_config(config: str, fold: int, work_dir: str,
                cfg_options: Optional[dict] = None,
                stage_checkpoint: Optional[str] = None) -> Config:
    """The config of one fold: options merged, fold applied (datasets and
    per-fold paths, :func:`mmlesion.utils.apply_cv_fold`), work dir set.

    Args:
        config (str): the config file.
        fold (int): the held-out fold.
        work_dir (str): the fold's work dir.
        cfg_options (dict, optional): ``--cfg-options``.
        stage_checkpoint (str, optional): the first-stage checkpoint of a
            second-stage config (Sec. III-E: the RPN stage of a Table III
            row), with ``{fold}`` for the fold, e.g.
            ``work_dirs/rpn3d-focal_..._cv/fold{fold}/epoch_50.pth``. It
            replaces the config's ``load_from`` (whose ``fold0`` the fold
            rewrites otherwise).

    Returns:
        Config: the fold's config.
    """
    cfg = Config.fromfile(config)
    # checked like every tool's --cfg-options; a new data_root reaches the
    # datasets and evaluators that used the old one
    apply_cfg_options(cfg, cfg_options, source=config)
    apply_cv_fold(cfg, fold, source=config)
    if stage_checkpoint:
        if '{fold}' not in stage_checkpoint:
            raise ValueError(
                f'--stage-checkpoint {stage_checkpoint!r} has no {{fold}}: '
                'each fold starts from the first stage of the same fold')
        cfg.load_from = stage_checkpoint.format(fold=fold)
    cfg.work_dir = work_dir
    # one process runs several Runners: give each its own logger,
    # visualizer and message hub (mmengine names them by experiment)
    cfg.experiment_name = (f'{osp.splitext(osp.basename(config))[0]}_fold'
                           f'{fold}_{time.strftime("%Y%m%d_%H%M%S")}')
    return cfg


def train_fold(cfg: Config, logger) -> str:
    """Train one fold (resuming its work dir) and return its checkpoint.

    Args:
        cfg (Config): from :func:`fold_config`.
        logger: an ``MMLogger`` for the progress lines.

    Returns:
        str: the last checkpoint of the training.
    """
    from mmlesion.engine.hooks import (CheckpointCheckHook,
                                       set_checkpoint_check_hook)
    latest = find_resumable_checkpoint(cfg.work_dir) if osp.isdir(
        cfg.work_dir) else None
    if latest is not None:
        logger.info(f'  resuming from {latest}')
        cfg.resume = True
        cfg.load_from = latest
    elif cfg.get('load_from') and not osp.isfile(cfg.load_from):
        raise FileNotFoundError(
            f'{cfg.load_from}: the first-stage checkpoint this config starts '
            'from (load_from) does not exist. Train the first stage of this '
            'fold first (e.g. tools/luna16_cv.py on the RPN config) and pass '
            '--stage-checkpoint <its work dir>/fold{fold}/epoch_50.pth')
    runner = Runner.from_cfg(formatted_once(cfg))
    if cfg.get('load_from'):
        # one check (the configs carry one too): strict on a resume; a
        # fresh second stage may lack `load_from_allowed_missing` keys
        set_checkpoint_check_hook(
            runner, CheckpointCheckHook(filename=cfg.load_from))
    runner.train()
    last = osp.join(cfg.work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise FileNotFoundError(
            f'{cfg.work_dir}: training ended without a checkpoint '
            f'(last_checkpoint); keep CheckpointHook(save_last=True)')
    with open(last) as f:
        ckpt = f.read().strip()
    return ckpt if osp.isabs(ckpt) else osp.join(cfg.work_dir,
                                                 osp.basename(ckpt))


def run_fold(config: str, fold: int, work_root: str,
             cfg_options: Optional[dict], device: str, logger,
             stage_checkpoint: Optional[str] = None) -> FoldRecord:
    """Train and test one fold unless it is done; returns its record.

    Args:
        config (str): the config file.
        fold (int): the held-out fold.
        work_root (str): the run's work dir (the fold uses ``fold<k>/``).
        cfg_options (dict, optional): ``--cfg-options``.
        device (str): device of the test pass.
        logger: an ``MMLogger``.
        stage_checkpoint (str, optional): see :func:`fold_config`.

    Returns:
        FoldRecord: the fold's ``fold_done.json`` (``skipped`` when it was
        done before).
    """
    work_dir = osp.join(work_root, f'fold{fold}')
    done = osp.join(work_dir, FOLD_DONE)
    if osp.isfile(done):
        return FoldRecord.from_file(done)
    t0 = time.perf_counter()
    cfg = fold_config(config, fold, work_dir, cfg_options, stage_checkpoint)
    ckpt = train_fold(cfg, logger)
    t1 = time.perf_counter()
    tested = predict_candidates(cfg, ckpt, device, show_progress=False)
    write_candidates(osp.join(work_dir, 'candidates.csv'), tested.candidates)
    write_seriesuids(osp.join(work_dir, 'seriesuids.csv'), tested.scans)
    record = FoldRecord(
        fold=fold, checkpoint=ckpt, num_scans=len(tested.scans),
        num_candidates=int(len(tested.candidates.probability)),
        train_s=round(t1 - t0, 1),
        test_s=round(time.perf_counter() - t1, 1))
    _write_json(done, record.to_dict())
    return record


def pool_folds(work_root: str, folds: Sequence[int]) -> PooledFolds:
    """Pool the folds' candidates and scans into ``work_root``.

    Args:
        work_root (str): the run's work dir.
        folds (Sequence[int]): the folds, in this order.

    Returns:
        PooledFolds: the paths written and the counts.

    Raises:
        ValueError: a scan is held out by two folds.
    """
    uids: List[np.ndarray] = []
    xyz, prob, scans = [], [], []
    for k in folds:
        fold_dir = osp.join(work_root, f'fold{k}')
        c = read_candidates_csv(osp.join(fold_dir, 'candidates.csv'))
        uids.append(np.asarray(c.seriesuids, dtype=object))
        xyz.append(c.xyz)
        prob.append(c.probability)
        listed = osp.join(fold_dir, 'seriesuids.csv')
        if osp.getsize(listed) > 0:  # empty: a fold without scans
            scans.extend(read_seriesuids_csv(listed))
    dup = sorted({u for u in scans if scans.count(u) > 1})
    if dup:
        raise ValueError(f'{work_root}: scans held out by more than one '
                         f'fold (the folds overlap): {dup[:5]}')
    pooled = LUNA16Candidates(
        np.concatenate(uids) if uids else np.zeros(0, object),
        np.concatenate(xyz) if xyz else np.zeros((0, 3)),
        np.concatenate(prob) if prob else np.zeros(0))
    out = PooledFolds(candidates=osp.join(work_root, 'candidates.csv'),
                      seriesuids=osp.join(work_root, 'seriesuids.csv'),
                      num_candidates=int(len(pooled.probability)),
                      num_scans=len(scans))
    write_candidates(out.candidates, pooled)
    write_seriesuids(out.seriesuids, scans)
    return out
