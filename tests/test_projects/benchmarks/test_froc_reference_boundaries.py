# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the plain FROC reference (:mod:`...froc_reference`).

The fast FROC code is checked against this reference, so the reference
itself is pinned here on hand-worked cases: an overlap exactly at the
threshold (a hit), multi-hit and duplicates, images without lesions or
detections, score ties, the defaults (IoU ``>= 0.5``, ``'iou'``), the
sensitivity read exactly at the first and last points of the curve, below
and beyond them, single-point curves and the NaN / 0 conventions; and the
random cases: their documented shapes and properties, and that a seed
always gives the same case (tests and benchmarks rely on it).
"""
import hashlib
import warnings

import numpy as np
import pytest

from projects.benchmarks.froc_reference import (
    random_froc_case, reference_froc, reference_overlaps,
    reference_sens_at_fp)

GT = [0., 0., 9., 9.]  # 10 x 10 pixels
HALF = [0., 0., 19., 9.]  # IoU with GT exactly 0.5
SMALL = [2., 2., 5., 5.]  # inside GT: IoU 16 / 100, IoBB 1
FAR = [100., 100., 109., 109.]
NO_GT = np.zeros((0, 4))


def dets(*rows):
    return np.array([list(b) + [s] for b, s in rows],
                    dtype=np.float64).reshape(-1, 5)


def test_reference_overlaps_hand_worked():
    gts = np.array([GT, HALF, [5., 0., 14., 9.], [10., 0., 19., 9.],
                    [20., 20., 29., 29.], [0., 5., 9., 14.]])
    box = np.array(GT)
    assert reference_overlaps(box, gts).tolist() == [
        1., 0.5, 50 / 150, 0., 0., 50 / 150
    ]
    assert reference_overlaps(box, gts, 'iou').tolist() == [
        1., 0.5, 50 / 150, 0., 0., 50 / 150
    ]
    # IoBB over the detection (the first argument)
    assert reference_overlaps(box, gts, 'iobb').tolist() == [
        1., 1., 0.5, 0., 0., 0.5
    ]
    assert reference_overlaps(np.array(HALF), np.array([GT]),
                              'iobb').tolist() == [0.5]
    assert reference_overlaps(np.array(HALF), np.array([GT])).tolist() == [
        0.5
    ]
    assert reference_overlaps(np.array(SMALL), np.array([GT]),
                              'iobb').tolist() == [1.]
    # a 20 x 5 box over a 10 x 10 one: 10 x 5 shared, union 150
    assert reference_overlaps(np.array([0., 0., 19., 4.]),
                              np.array([GT])).tolist() == [50 / 150]


def test_overlap_exactly_at_the_threshold_hits():
    fps, sens = reference_froc([dets((HALF, .9))], [np.array([GT])])
    assert fps.tolist() == [0.] and sens.tolist() == [1.]
    fps, sens = reference_froc([dets((HALF, .9))], [np.array([GT])],
                               iou_thr=0.5, overlap='iou')
    assert sens.tolist() == [1.]
    fps, sens = reference_froc([dets((HALF, .9))], [np.array([GT])],
                               iou_thr=0.5 + 1e-9)
    assert fps.tolist() == [1.] and sens.tolist() == [0.]
    # the default overlap is IoU: a small box inside the lesion misses
    fps, sens = reference_froc([dets((SMALL, .9))], [np.array([GT])])
    assert fps.tolist() == [1.] and sens.tolist() == [0.]
    fps, sens = reference_froc([dets((SMALL, .9))], [np.array([GT])],
                               overlap='iobb')
    assert fps.tolist() == [0.] and sens.tolist() == [1.]


def test_multi_hit_duplicates_and_empty_images():
    # image 0: two lesions under one box (both hit), then a duplicate and
    # a partial box reaching only the first at IoU 0.5; image 1: no lesion;
    # image 2: a lesion and no detection
    wide = [0., 0., 19., 9.]
    d = [dets((wide, .9), (wide, .5), (GT, .4)), dets((FAR, .7)), dets()]
    g = [np.array([wide, [0., 0., 19., 8.]]), NO_GT, np.array([GT])]
    fps, sens = reference_froc(d, g)
    # order .9 (2 hits), .7 (FP), .5 (duplicate), .4 (no new hit)
    assert fps.tolist() == [0., 1 / 3, 1 / 3, 1 / 3]
    assert sens.tolist() == [2 / 3, 2 / 3, 2 / 3, 2 / 3]
    # the second lesion found later by its own box: one new hit, not two
    d = [dets((GT, .9), ([0., 0., 19., 8.], .8)), dets(), dets()]
    fps, sens = reference_froc(d, g)
    assert fps.tolist() == [0., 0.] and sens.tolist() == [1 / 3, 2 / 3]


def test_score_ties_in_input_order_and_nan_without_lesions():
    d = [dets((FAR, .5), (GT, .5))]
    fps, sens = reference_froc(d, [np.array([GT])])
    assert fps.tolist() == [1., 1.] and sens.tolist() == [0., 1.]
    d = [dets((FAR, .5)), dets((GT, .5))]
    fps, sens = reference_froc(d, [NO_GT, np.array([GT])])
    assert fps.tolist() == [.5, .5] and sens.tolist() == [0., 1.]
    fps, sens = reference_froc([dets((GT, .5))], [NO_GT])
    assert fps.tolist() == [1.] and np.isnan(sens).all()
    fps, sens = reference_froc([dets()], [np.array([GT])])
    assert fps.tolist() == [] and sens.tolist() == []


def test_sens_at_fp_at_and_around_the_curve_ends():
    fps = np.array([0., .5, .5, 1.])
    sens = np.array([.25, .25, .5, .75])
    # at the first point: its value, not the "below the curve" 0
    assert reference_sens_at_fp(fps, sens, [0.], 4) == [.25]
    # at the last point and beyond: the last value
    assert reference_sens_at_fp(fps, sens, [1., 2.], 4) == [.75, .75]
    assert reference_sens_at_fp(fps, sens, [.75], 4) == [.625]
    later = np.array([.5, 1.])
    assert reference_sens_at_fp(later, np.array([.5, 1.]),
                                [.25, .5, .75, 1.5], 2) == [0., .5, .75, 1.]
    assert reference_sens_at_fp(later, np.array([.5, 1.]),
                                [.4999], 2) == [0.]
    # one point: below it 0, at it and beyond its value
    one = np.array([1.])
    assert reference_sens_at_fp(one, np.array([.5]), [.5, 1., 3.],
                                2) == [0., .5, .5]
    assert reference_sens_at_fp(np.array([0.]), np.array([.5]), [0.],
                                2) == [.5]
    # no lesions: NaN whatever the curve; no detections: 0
    out = reference_sens_at_fp(fps, sens, [0., 1.], 0)
    assert len(out) == 2 and np.isnan(out).all()
    assert reference_sens_at_fp(np.zeros(0), np.zeros(0), [0., 4.],
                                1) == [0., 0.]
    res = reference_sens_at_fp(fps, sens, [.75], 4)
    assert isinstance(res, list) and isinstance(res[0], float)
    assert all(isinstance(v, float)
               for v in reference_sens_at_fp(fps, sens, [0., 2.], 4))


def test_random_case_shapes_and_documented_properties():
    dets_, gts = random_froc_case(num_images=60, dets_per_image=12, seed=5,
                                  max_gts=2, score_decimals=1)
    assert len(dets_) == len(gts) == 60
    counts = [len(g) for g in gts]
    assert set(counts) <= {0, 1, 2} and 2 in counts and 1 in counts
    scores = np.concatenate([d[:, 4] for d in dets_])
    assert np.array_equal(scores, np.round(scores, 1))
    assert len(np.unique(scores)) <= 11 and (scores >= 0).all()
    for d, g in zip(dets_, gts):
        assert d.shape == (12, 5) and d.dtype == np.float64
        assert g.shape == (len(g), 4)
        assert (d[:, 2:4] >= d[:, :2]).all()
        assert (d[:, :4] >= -100).all() and (d[:, :4] < 700).all()
        if len(g):
            assert (g[:, 2:] - g[:, :2] >= -5).all()
            assert (g >= -5).all() and (g < 520).all()
    # exact duplicates and integer boxes occur
    dup = sum(len(np.unique(d[:, :4], axis=0)) < len(d) for d in dets_)
    assert dup > 0
    ints = np.concatenate([d[:, :4] for d in dets_])
    assert 0 < (ints == np.round(ints)).all(1).mean() < 1
    # defaults: 100 images of 20 detections, scores of 3 decimals
    dets_, gts = random_froc_case()
    assert len(dets_) == 100 and all(d.shape == (20, 5) for d in dets_)
    assert max(len(g) for g in gts) == 3
    scores = np.concatenate([d[:, 4] for d in dets_])
    assert np.array_equal(scores, np.round(scores, 3))
    assert not np.array_equal(scores, np.round(scores, 2))
    # no lesion images occur (about 10 % pick 0..max_gts)
    assert 0 < sum(len(g) == 0 for g in gts) < 20


def _digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        h.update(str(a.shape).encode())
    return h.hexdigest()[:16]


def test_random_case_is_reproducible():
    a = random_froc_case(num_images=40, dets_per_image=15, seed=2)
    b = random_froc_case(num_images=40, dets_per_image=15, seed=2)
    assert _digest(a[0] + a[1]) == _digest(b[0] + b[1])
    c = random_froc_case(num_images=40, dets_per_image=15, seed=3)
    assert _digest(a[0]) != _digest(c[0])
    # the cases the FROC tests and benchmarks ran on: a change of the
    # generator changes them
    assert _digest(a[0] + a[1]) == GOLDEN_SEED2
    d, g = random_froc_case()
    assert _digest(d + g) == GOLDEN_DEFAULT


GOLDEN_SEED2 = 'e4969990cf2198b2'
GOLDEN_DEFAULT = 'd7013f3fb8345888'


@pytest.mark.parametrize('overlap', ['iou', 'iobb'])
def test_random_cases_exercise_every_rule(overlap):
    """Lesions hit by one box together and score ties: what the cases are
    for."""
    dets_, gts = random_froc_case(num_images=60, seed=1)
    together = ties = 0
    for d, g in zip(dets_, gts):
        _, counts = np.unique(d[:, 4], return_counts=True)
        ties += int((counts > 1).sum())
        for box in d[:, :4]:
            ov = reference_overlaps(box, g, overlap) if len(g) else []
            together += int(np.sum(np.asarray(ov) >= 0.5) > 1)
    assert ties > 0 and together > 0


def test_computed_in_float64_whatever_the_input_dtype():
    # 4097 x 4099 pixels: 16793603, which float32 rounds to 16793604; the
    # exact box is a hit at IoU 1 only if the area is computed in float64
    box = [0., 0., 4096., 4098.]
    d = np.array([box + [.9]])
    g = np.array([box])
    for dets_, gts in (([d], [g]), ([d.astype(np.float32)], [g]),
                       ([d], [g.astype(np.float32)])):
        fps, sens = reference_froc(dets_, gts, iou_thr=1.0)
        assert fps.tolist() == [0.] and sens.tolist() == [1.]
        assert fps.dtype == np.float64 and sens.dtype == np.float64


def test_no_lesions_warns_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        fps, sens = reference_froc([dets((GT, .5), (FAR, .4))],
                                   [NO_GT])
    assert fps.tolist() == [1., 2.] and np.isnan(sens).all()


def test_reference_overlaps_read_each_coordinate():
    # x1 != y1 everywhere, and boxes apart along one axis only
    box = np.array([5., 0., 14., 9.])  # 10 x 10
    gts = np.array([[0., 2., 9., 11.],  # 5 x 8 shared: 40 / 160
                    [5., 20., 14., 29.],  # same x, apart in y
                    [20., 0., 29., 9.],  # same y, apart in x
                    [5., 0., 14., 4.]])  # the lower half: 50 / 100
    assert reference_overlaps(box, gts).tolist() == [40 / 160, 0., 0., .5]
    assert reference_overlaps(box, gts, 'iobb').tolist() == [.4, 0., 0., .5]
    tall = np.array([0., 5., 9., 24.])  # 10 x 20
    assert reference_overlaps(tall, np.array([[0., 5., 9., 14.]]),
                              'iobb').tolist() == [.5]


def test_many_score_ties_keep_the_input_order():
    # 63 FPs and, listed last, one TP, with scores of three values: the TP
    # comes after the 23 FPs of its score
    rng = np.random.default_rng(0)
    scores = rng.choice([.1, .2, .3], 64)
    scores[-1] = .3
    boxes = [[100. + 20 * (k % 8), 100. + 20 * (k // 8), 109. + 20 * (k % 8),
              109. + 20 * (k // 8)] for k in range(63)] + [GT]
    fps, sens = reference_froc([dets(*zip(boxes, scores))], [np.array([GT])])
    first = int(np.argmax(sens))
    assert sens[first] == 1. and fps[first] == 23.
