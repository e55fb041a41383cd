# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16's 10-fold cross-validation in one run (3D Aggregated Faster R-CNN,
Sec. IV): train and test every fold, pool the held-out candidates.

Layout of a run's ``work_dir``::

    fold<k>/                 # the fold's mmengine work dir (checkpoints,
                             # logs) as `tools/train.py CONFIG --fold k`
    fold<k>/candidates.csv   # LUNA16 candidates of the held-out scans
    fold<k>/candidates_uncut.csv  # the same run without the config's RPN
                             # score cut (+ rpn_probability column)
    fold<k>/seriesuids.csv   # the held-out scans (one uid a line)
    fold<k>/fold_done.json   # written last: the fold is complete
    candidates.csv           # the folds' candidates, pooled
    candidates_uncut.csv     # the same without the cut, pooled
    seriesuids.csv           # every held-out scan
    eval/score_cut.json      # with --annotations: the pooled candidates
                             # with and without the cut (score_cut_effect)

A fold with ``fold_done.json`` is skipped; any other fold is trained with
mmengine's resume from the newest intact checkpoint of its work dir, then
tested. Every file is written whole or not at all.
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
                                                   ScoreCutEffect,
                                                   ScoreCutSettings,
                                                   read_candidate_column,
                                                   read_candidates_csv,
                                                   read_findings_csv,
                                                   read_seriesuids_csv,
                                                   score_cut_effect,
                                                   write_candidates_csv)
from mmlesion.utils import apply_cv_fold, find_resumable_checkpoint
from mmlesion.utils.writing.atomic import atomic_write, atomic_write_json
from mmlesion.utils.configs.cfg_options import apply_cfg_options
from mmlesion.utils.configs.pretty_text import without_yapf
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
        rpn_score_thr (float, optional): the config's RPN score cut (from
            ``candidates_uncut.csv`` to ``candidates.csv``; None: unknown).
        skipped (bool): done before, read from its ``fold_done.json``.
    """
    fold: int
    checkpoint: str
    num_scans: int
    num_candidates: int
    train_s: float
    test_s: float
    rpn_score_thr: Optional[float] = None
    skipped: bool = False

    @classmethod
    def from_file(cls, path: str) -> 'FoldRecord':
        """A fold done before (``skipped``), from its ``fold_done.json``."""
        with open(path) as f:
            record = json.load(f)
        record.pop('skipped', None)
        return cls(**record, skipped=True)

    def to_dict(self) -> Dict[str, Any]:
        """``fold_done.json`` (``skipped`` only when True,
        ``rpn_score_thr`` only when known)."""
        out = asdict(self)
        if not self.skipped:
            out.pop('skipped')
        if self.rpn_score_thr is None:
            out.pop('rpn_score_thr')
        return out


@dataclass
class PooledFolds:
    """The folds' candidates and scans pooled into the run's work dir.

    Args:
        candidates (str): path of the pooled ``candidates.csv``.
        seriesuids (str): path of the pooled ``seriesuids.csv``.
        num_candidates (int): pooled candidates.
        num_scans (int): held-out scans of all folds.
        uncut (str, optional): the pooled ``candidates_uncut.csv`` (None:
            a fold lacks one).
        rpn_score_thr (float, optional): the folds' RPN score cut.
    """
    candidates: str
    seriesuids: str
    num_candidates: int
    num_scans: int
    uncut: Optional[str] = None
    rpn_score_thr: Optional[float] = None


def write_seriesuids(path: str, uids: Sequence[str]) -> None:
    """Write LUNA16's ``seriesuids.csv`` (one uid a line) atomically."""
    with atomic_write(path, newline='') as f:
        csv.writer(f).writerows([u] for u in uids)


def write_candidates(path: str, cands: LUNA16Candidates,
                     rpn_probability: Optional[np.ndarray] = None) -> None:
    """Write candidates in the official CSV format, atomically (with an
    ``rpn_probability`` column when given)."""
    # write_candidates_csv writes through utils.writing.atomic itself
    write_candidates_csv(path, cands.seriesuids, cands.xyz,
                         cands.probability, rpn_probability=rpn_probability)


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
            second-stage config (Sec. III-E), with ``{fold}`` for the fold,
            e.g. ``work_dirs/rpn3d-focal_..._cv/fold{fold}/epoch_50.pth``;
            it replaces the config's ``load_from``.

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
    runner = Runner.from_cfg(without_yapf(cfg))
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


@dataclass(frozen=True)
class CrossValidationRun:
    """What every fold of a cross-validation run shares (the options of
    ``tools/luna16_cv.py``).

    Args:
        config (str): the config file.
        work_root (str): the run's work dir (a fold uses ``fold<k>/``).
        cfg_options (dict, optional): ``--cfg-options``.
        device (str): device of the test pass.
        stage_checkpoint (str, optional): see :func:`fold_config`.
    """
    config: str
    work_root: str
    cfg_options: Optional[dict] = None
    device: str = 'cpu'
    stage_checkpoint: Optional[str] = None


def run_fold(run: CrossValidationRun, fold: int, logger) -> FoldRecord:
    """Train and test one fold unless it is done; returns its record.

    Args:
        run (CrossValidationRun): the config, work dir, options, device.
        fold (int): the held-out fold.
        logger: an ``MMLogger``.

    Returns:
        FoldRecord: the fold's ``fold_done.json`` (``skipped`` when it was
        done before).
    """
    work_dir = osp.join(run.work_root, f'fold{fold}')
    done = osp.join(work_dir, FOLD_DONE)
    if osp.isfile(done):
        return FoldRecord.from_file(done)
    t0 = time.perf_counter()
    cfg = fold_config(run.config, fold, work_dir, run.cfg_options,
                      run.stage_checkpoint)
    ckpt = train_fold(cfg, logger)
    t1 = time.perf_counter()
    tested = predict_candidates(cfg, ckpt, run.device, show_progress=False)
    cut = tested.candidates
    write_candidates(osp.join(work_dir, 'candidates.csv'), cut)
    write_candidates(osp.join(work_dir, 'candidates_uncut.csv'),
                     tested.uncut, tested.rpn_probability)
    write_seriesuids(osp.join(work_dir, 'seriesuids.csv'), tested.scans)
    record = FoldRecord(
        fold=fold, checkpoint=ckpt, num_scans=len(tested.scans),
        num_candidates=int(len(cut.probability)),
        train_s=round(t1 - t0, 1),
        test_s=round(time.perf_counter() - t1, 1),
        rpn_score_thr=tested.rpn_score_thr)
    atomic_write_json(done, record.to_dict(), indent=2)
    return record


def _pool(work_root: str, folds: Sequence[int], name: str,
          rpn: bool = False) -> tuple:
    """The folds' ``name`` CSVs as one set of candidates (and, with
    ``rpn``, their ``rpn_probability`` column)."""
    paths = [osp.join(work_root, f'fold{k}', name) for k in folds]
    parts = [read_candidates_csv(p) for p in paths]
    pooled = LUNA16Candidates(
        np.concatenate([np.asarray(c.seriesuids, dtype=object)
                        for c in parts]) if parts else np.zeros(0, object),
        np.concatenate([c.xyz for c in parts]) if parts else np.zeros((0, 3)),
        np.concatenate([c.probability for c in parts]) if parts else
        np.zeros(0))
    scores = (np.concatenate(
        [read_candidate_column(p, 'rpn_probability') for p in paths])
              if rpn and paths else None)
    return pooled, scores


def pool_folds(work_root: str, folds: Sequence[int]) -> PooledFolds:
    """Pool the folds' candidates and scans into ``work_root`` (and their
    uncut candidates when every fold has them).

    Args:
        work_root (str): the run's work dir.
        folds (Sequence[int]): the folds, in this order.

    Returns:
        PooledFolds: the paths written and the counts.

    Raises:
        ValueError: a scan is held out by two folds, or the folds were
            tested with different RPN score cuts.
    """
    scans = []
    for k in folds:
        listed = osp.join(work_root, f'fold{k}', 'seriesuids.csv')
        if osp.getsize(listed) > 0:  # empty: a fold without scans
            scans.extend(read_seriesuids_csv(listed))
    dup = sorted({u for u in scans if scans.count(u) > 1})
    if dup:
        raise ValueError(f'{work_root}: scans held out by more than one '
                         f'fold (the folds overlap): {dup[:5]}')
    pooled, _ = _pool(work_root, folds, 'candidates.csv')
    out = PooledFolds(candidates=osp.join(work_root, 'candidates.csv'),
                      seriesuids=osp.join(work_root, 'seriesuids.csv'),
                      num_candidates=int(len(pooled.probability)),
                      num_scans=len(scans))
    write_candidates(out.candidates, pooled)
    write_seriesuids(out.seriesuids, scans)
    cuts = {FoldRecord.from_file(osp.join(work_root, f'fold{k}',
                                          FOLD_DONE)).rpn_score_thr
            for k in folds}
    if None in cuts or not folds or not all(osp.isfile(osp.join(
            work_root, f'fold{k}', 'candidates_uncut.csv')) for k in folds):
        return out
    if len(cuts) > 1:
        raise ValueError(f'{work_root}: the folds were tested with different '
                         f'RPN score cuts {sorted(cuts)}')
    uncut, rpn = _pool(work_root, folds, 'candidates_uncut.csv', rpn=True)
    out.uncut = osp.join(work_root, 'candidates_uncut.csv')
    out.rpn_score_thr = cuts.pop()
    write_candidates(out.uncut, uncut, rpn)
    return out


def evaluate_score_cut(pooled: PooledFolds, annotations: str,
                       excluded: Optional[str],
                       out_dir: str) -> Optional[ScoreCutEffect]:
    """The pooled candidates with and without the folds' RPN score cut,
    into ``out_dir/score_cut.json`` (3D-AG's 0.269: the candidates per
    scan it leaves and the FROC on both sides, from the one run); also
    under ``score_cut`` in ``out_dir/metrics.json`` where the evaluation
    of the cut candidates wrote one (the tables read both sides there).

    Args:
        pooled (PooledFolds): from :func:`pool_folds`.
        annotations (str): ``annotations.csv``.
        excluded (str, optional): ``annotations_excluded.csv``.
        out_dir (str): the evaluation's folder.

    Returns:
        ScoreCutEffect, optional: None without uncut candidates.
    """
    if pooled.uncut is None:
        return None
    scans = read_seriesuids_csv(pooled.seriesuids)
    effect = score_cut_effect(
        read_candidates_csv(pooled.uncut),
        read_candidate_column(pooled.uncut, 'rpn_probability'),
        read_findings_csv(annotations),
        read_findings_csv(excluded, allow_duplicates=True)
        if excluded else None, scans,
        ScoreCutSettings(float(pooled.rpn_score_thr)))
    atomic_write_json(osp.join(out_dir, 'score_cut.json'), effect.to_dict(),
                      indent=2)
    metrics = osp.join(out_dir, 'metrics.json')
    if osp.isfile(metrics):
        with open(metrics) as f:
            record = json.load(f)
        record['score_cut'] = effect.to_dict()
        atomic_write_json(metrics, record, indent=2)
    return effect
