# Copyright (c) mmlesion contributors. All rights reserved.
"""The score thresholds a FROC records at its FP rates
(:meth:`FROCMatch.thresholds_at_fp`, ``FROCMetric.operating_points``)."""
from dataclasses import replace

import numpy as np
import pytest

from mmlesion.evaluation.functional import match_detections, sens_at_fp
from mmlesion.evaluation.functional.operating_points import OperatingPoints
from mmlesion.evaluation.metrics import FROC3DMetric, FROCMetric
from tests.test_evaluation.test_metrics.test_froc_metric import (
    expected_inputs, fake_samples)


def _random_images(seed: int = 0, num_images: int = 30):
    """Detections (some on a lesion) and lesions of random images."""
    rng = np.random.default_rng(seed)
    dets, gts = [], []
    for _ in range(num_images):
        lesions = rng.uniform(0, 200, (rng.integers(0, 3), 2))
        gts.append(np.concatenate([lesions, lesions + 20], 1))
        boxes = rng.uniform(0, 200, (rng.integers(0, 8), 2))
        boxes = np.concatenate([boxes, boxes + 20], 1)
        hits = gts[-1][rng.random(len(gts[-1])) < .7] + rng.normal(
            0, 2, (1, 4))
        both = np.concatenate([boxes, hits])
        dets.append(np.concatenate(
            [both, rng.random((len(both), 1)).round(2)], 1))  # ties
    return dets, gts


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_the_threshold_keeps_at_most_the_rate_and_its_sensitivity(seed):
    """Keeping the detections at or above a rate's threshold gives at
    most that many FPs per image, and (where no score ties straddle it)
    the sensitivity the FROC reports there."""
    dets, gts = _random_images(seed)
    rates = (.5, 1, 2, 4)
    full = match_detections(dets, gts)
    thresholds = full.thresholds_at_fp(rates)
    sens = sens_at_fp(full.curve(), rates)
    ranked = full.scores[full.order]
    for rate, thr, s in zip(rates, thresholds, sens):
        kept = [d[d[:, 4] >= thr] for d in dets]
        curve = match_detections(kept, gts).curve()
        assert curve.fps_per_image[-1] <= rate + 1e-12
        assert curve.sensitivity[-1] <= s + 1e-12
        first_over = int(np.searchsorted(full.curve().fps_per_image, rate,
                                         'right'))
        if first_over == len(ranked):
            assert thr == ranked[-1]
            continue
        # the next score down exceeds the rate
        more = [d[d[:, 4] >= ranked[first_over]] for d in dets]
        assert match_detections(more, gts).curve().fps_per_image[-1] > rate
        if first_over == 0 or ranked[first_over - 1] > ranked[first_over]:
            # no tie straddles the cut: the FROC's sensitivity exactly
            assert curve.sensitivity[-1] == pytest.approx(s)
    assert np.all(np.diff(thresholds) <= 0)  # more FPs, a lower threshold


def test_thresholds_of_edge_cases():
    first_is_fp = match_detections([np.array([[0, 0, 9, 9, .9]])],
                                   [np.array([[50, 50, 59, 59]])])
    thr = first_is_fp.thresholds_at_fp([0.5, 1])
    assert thr[0] > .9 and thr[1] == pytest.approx(.9)  # nothing / all
    empty = match_detections([np.zeros((0, 5))], [np.zeros((0, 4))])
    assert np.isnan(empty.thresholds_at_fp([1])).all()


def test_the_metric_records_the_threshold_the_froc_computes():
    """The metric's record equals the FROC's thresholds on the same
    detections, with the sensitivities it reports."""
    metric = FROCMetric(froc_plot=None, dump_detections=False,
                        fp_rates=(.5, 1, 2))
    metric.dataset_meta = dict(classes=('lesion', ))
    samples = fake_samples()
    metric.process({}, samples)
    metrics = metric.compute_metrics(metric.results)
    dets, gts, _ = expected_inputs(samples)
    expected = match_detections(dets, gts).thresholds_at_fp((.5, 1, 2))
    points = metric.operating_points
    assert points.fp_unit == 'image' and points.fp_rates == [.5, 1, 2]
    assert points.metric == 'froc'  # the metric that chose them: its prefix
    named = FROCMetric(froc_plot=None, dump_detections=False, prefix='val')
    named.dataset_meta = metric.dataset_meta
    named.process({}, samples)
    named.compute_metrics(named.results)
    assert named.operating_points.metric == 'val'
    np.testing.assert_array_equal(points.thresholds, expected)
    assert points.sensitivities == [metrics['sens@0.5'], metrics['sens@1'],
                                    metrics['sens@2']]
    # the record survives a checkpoint's meta
    again = OperatingPoints.from_dict(replace(points, epoch=2).to_dict())
    assert again == replace(points, epoch=2)
    assert again.rate_index(1.) == 1
    with pytest.raises(ValueError, match='recorded 0.5, 1, 2'):
        again.rate_index(4)


def test_a_3d_froc_records_per_sub_volume():
    """The LENS 3D FROC's thresholds, per sub-volume: 0.9 TP, 0.8 FP
    (1/4 per sub-volume), 0.7 TP, 0.4 FP (2/4)."""
    from tests.test_evaluation.test_metrics.test_froc_3d_metric import \
        _sample
    gt = [0., 0., 0., 10., 10., 10.]
    metric = FROC3DMetric(dump_detections=False, out_dir=None)
    metric.process({}, [
        _sample('a', [gt, [50., 50, 50, 60, 60, 60]], [0.9, 0.4], [gt]),
        _sample('b', [gt], [0.8], [gt], ignore=[1]),
        _sample('c', [], [], []),
        _sample('d', [[0., 0, 7, 10, 10, 17]], [0.7], [gt])])
    metric.evaluate(4)
    points = metric.operating_points
    assert points.fp_unit == 'sub-volume'
    assert points.fp_rates == [.125, .25, .5, 1, 2, 4, 8]
    assert points.thresholds == pytest.approx([.9, .7] + [.4] * 5)
    assert points.sensitivities == [.5] + [1.] * 6
    with pytest.raises(ValueError, match='malformed operating points'):
        OperatingPoints.from_dict(dict(fp_unit='image', fp_rates=[1],
                                       thresholds=['x']))
