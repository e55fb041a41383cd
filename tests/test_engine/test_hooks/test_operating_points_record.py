# Copyright (c) mmlesion contributors. All rights reserved.
"""The best checkpoint a validation writes records the score thresholds
its FROC chose, with the validation data and the epoch
(``AtomicCheckpointHook``, :func:`~mmlesion.engine.hooks.
validation_record.validated_operating_points`)."""
import pytest
from mmengine.logging import MessageHub

from mmlesion.evaluation.functional import match_detections
from mmlesion.evaluation.functional.operating_points import \
    OPERATING_POINTS_KEY
from mmlesion.evaluation.metrics import FROCMetric
from mmlesion.utils import load_local_checkpoint
from tests.helpers import fault_runs
from tests.test_evaluation.test_metrics.test_froc_metric import (
    expected_inputs, fake_samples)

RATES = (.5, 1, 2)


class FROCScoreMetric(fault_runs.EpochScoreMetric):
    """The toy run's score (``sign`` -1: best at the first epoch), and a
    real FROC on fixed detections, which chooses the operating points."""

    def compute_metrics(self, results: list) -> dict:
        froc = FROCMetric(froc_plot=None, dump_detections=False,
                          fp_rates=RATES)
        froc.process({}, fake_samples())
        froc.compute_metrics(froc.results)
        self.operating_points = froc.operating_points
        epoch = MessageHub.get_current_instance().get_info('epoch')
        return dict(score=self.sign * float(epoch))


class AnnotatedToyDataset(fault_runs.ToyDataset):
    ann_file = 'annotations/DL_info.csv'
    split = 2  # DeepLesion's Train_Val_Test code of 'val'


def test_the_best_checkpoint_records_the_froc_thresholds(tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fault_runs, 'EpochScoreMetric', FROCScoreMetric)
        patch.setattr(fault_runs, 'ToyDataset', AnnotatedToyDataset)
        runner = fault_runs.build_runner(str(tmp_path), 2, score_sign=-1.)
    runner.train()
    best = load_local_checkpoint(str(tmp_path / 'best_score_epoch_1.pth'),
                                 map_location='cpu')
    record = best['meta'][OPERATING_POINTS_KEY]
    dets, gts, _ = expected_inputs(fake_samples())
    expected = match_detections(dets, gts).thresholds_at_fp(RATES)
    assert record['thresholds'] == expected.tolist()
    assert record['fp_rates'] == list(RATES)
    assert record['fp_unit'] == 'image'
    assert (record['split'], record['epoch']) == ('annotations/DL_info.csv (val)', 1)
    # saved before its validation, and not saved again after it (not the
    # best), an epoch checkpoint records none
    epoch = load_local_checkpoint(str(tmp_path / 'epoch_2.pth'),
                                  map_location='cpu')
    assert OPERATING_POINTS_KEY not in epoch['meta']
