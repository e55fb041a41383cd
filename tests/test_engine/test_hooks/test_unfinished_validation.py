# Copyright (c) mmlesion contributors. All rights reserved.
"""A run stopped while an epoch is validated, or while that epoch's new best
checkpoint is written, validates the epoch again on resume.

mmengine saves ``epoch_N.pth`` before validating epoch N, so the resumed run
starts at epoch N + 1; without ``AtomicCheckpointHook``'s record of finished
validations it never validates epoch N and keeps an older, worse best. The
toy run of :mod:`tests.helpers.fault_runs` (3 epochs, validation and
``save_best`` every epoch, ``RandomStateHook``) gets a score that peaks at
epoch 2; the resumed run must end with the files, the best checkpoint, the
metrics and the weights of the uninterrupted run, bitwise.
"""
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.logging import MessageHub

import mmlesion.utils.checkpoints.backend as atomic_backend
from mmlesion.engine.hooks.validation_record import VALIDATION_RECORD
from mmlesion.utils import find_resumable_checkpoint, load_local_checkpoint
from tests.helpers import fault_runs

#: score by the message hub's ``epoch`` during the validation (epoch N is
#: validated with ``epoch`` = N - 1): the best is epoch 2, the second
#: best epoch 3
SCORES = {0: 0.2, 1: 0.5, 2: 0.3}


class _Killed(Exception):
    """Stands for the kill (raised in the process, at a chosen moment)."""


class PeakMetric(BaseMetric):
    """``score`` from :data:`SCORES`; ``out``: the sum of the predictions
    (depends on the weights and on the validation's random noise). Takes
    the place of the toy run's ``EpochScoreMetric`` (``sign`` unused)."""

    def __init__(self, sign: float = 1.) -> None:
        super().__init__()

    def process(self, data_batch, data_samples) -> None:
        self.results.extend(float(x) for x in data_samples)

    def compute_metrics(self, results: list) -> dict:
        epoch = MessageHub.get_current_instance().get_info('epoch')
        return dict(score=SCORES[epoch], out=sum(results))


class _Record(Hook):
    """Each validation's ``(epoch, metrics)``; raises :class:`_Killed` at
    ``kill`` = ``('val', N)`` (validation of epoch N done, its best not
    yet saved: this hook runs before the checkpoint hook) or
    ``('train', N)`` (the first iteration of epoch N)."""

    priority = 'LOW'

    def __init__(self, kill: Optional[Tuple[str, int]] = None) -> None:
        self.kill = kill
        self.metrics: List[Tuple[int, Dict[str, float]]] = []

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics.append((runner.epoch, dict(metrics)))
        if self.kill == ('val', runner.epoch):
            raise _Killed

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if self.kill == ('train', runner.epoch + 1):
            raise _Killed


def _train(work_dir: Path, kill=None, resume: bool = False) -> _Record:
    """3 epochs of the toy run, scored by :class:`PeakMetric`; the records
    of its validations."""
    resume_from = find_resumable_checkpoint(str(work_dir)) if resume else None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fault_runs, 'EpochScoreMetric', PeakMetric)
        runner = fault_runs.build_runner(str(work_dir), 3, resume_from)
    record = _Record(kill)
    runner.register_hook(record)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner.train()
    finally:
        torch.set_num_threads(threads)
    return record


def _files(work_dir: Path) -> List[str]:
    """The run's files (not mmengine's ``<timestamp>.py`` config dumps)."""
    return sorted(
        p.name for p in work_dir.iterdir()
        if p.is_file() and not re.fullmatch(r'\d{8}_\d{6}\.py', p.name))


def _ckpt(path: Path) -> dict:
    return load_local_checkpoint(str(path), map_location='cpu')


def _assert_same(a, b, where: str = '') -> None:
    """Nested dicts / lists of tensors and numbers, bitwise equal."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, where


def _assert_same_checkpoint(a: Path, b: Path) -> None:
    """Weights and optimizer state bitwise, meta step, best score."""
    ca, cb = _ckpt(a), _ckpt(b)
    _assert_same(ca['state_dict'], cb['state_dict'], 'state_dict')
    _assert_same(ca.get('optimizer'), cb.get('optimizer'), 'optimizer')
    assert (ca['meta']['epoch'], ca['meta']['iter']) == (cb['meta']['epoch'],
                                                         cb['meta']['iter'])
    ia, ib = (c['message_hub']['runtime_info'] for c in (ca, cb))
    assert ia['best_score'] == ib['best_score']
    assert Path(ia['best_ckpt']).name == Path(ib['best_ckpt']).name


@pytest.fixture(scope='module')
def reference(tmp_path_factory) -> Tuple[Path, _Record]:
    """The uninterrupted run."""
    work_dir = tmp_path_factory.mktemp('reference')
    return work_dir, _train(work_dir)


@pytest.mark.parametrize('kill', ['validating', 'writing-best', 'training'])
def test_resume_finishes_the_killed_validation(reference, tmp_path, kill,
                                               monkeypatch):
    """Killed while validating epoch 2, while writing its best checkpoint,
    or (control) while training epoch 3 after epoch 2's validation
    finished: the resumed run ends bitwise as the uninterrupted one, and
    validates epoch 2 again exactly when its validation did not finish."""
    ref_dir, ref = reference
    assert [e for e, _ in ref.metrics] == [1, 2, 3]
    assert (ref_dir / 'best_score_epoch_2.pth').is_file()

    work = tmp_path / 'work'
    if kill == 'writing-best':
        real_write = atomic_backend.atomic_write_bytes

        def write(path, data: bytes) -> None:
            if Path(path).name == 'best_score_epoch_2.pth':
                raise _Killed
            real_write(path, data)

        with monkeypatch.context() as patch:
            patch.setattr(atomic_backend, 'atomic_write_bytes', write)
            with pytest.raises(_Killed):
                _train(work)
    else:
        with pytest.raises(_Killed):
            _train(work,
                   kill=('val' if kill == 'validating' else 'train',
                         2 if kill == 'validating' else 3))
    assert (work / 'epoch_2.pth').is_file()
    unfinished = kill != 'training'
    assert (work / 'best_score_epoch_2.pth').is_file() != unfinished

    resumed = _train(work, resume=True)
    assert _files(work) == _files(ref_dir)
    assert VALIDATION_RECORD in _files(work)
    assert (work / 'last_checkpoint').read_text() == str(work / 'epoch_3.pth')
    _assert_same_checkpoint(work / 'best_score_epoch_2.pth',
                            ref_dir / 'best_score_epoch_2.pth')
    _assert_same_checkpoint(work / 'epoch_3.pth', ref_dir / 'epoch_3.pth')
    # the validations of the resumed run, bitwise those of the reference
    assert resumed.metrics == ref.metrics[1 if unfinished else 2:]
    log = '\n'.join(p.read_text() for p in work.glob('*/*.log'))
    assert ('validating epoch 2 now' in log) == unfinished
