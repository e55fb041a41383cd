# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest
from scipy.interpolate import interp1d

import mmlesion.evaluation.functional.froc as froc_mod
from mmlesion.evaluation.functional import (diameter_subsets, filter_gts,
                                            froc_curve, lesion_type_subsets,
                                            match_detections, sens_at_fp)
from projects.benchmarks.froc_reference import (random_froc_case,
                                                reference_froc,
                                                reference_sens_at_fp)

BOX = [0., 0., 9., 9.]  # 10 x 10 pixels (legacy convention)
FAR = [100., 100., 109., 109.]


def det(box, score):
    return list(box) + [score]


def curve_of(dets, gts, **kwargs):
    c = froc_curve([np.array(d, dtype=float) for d in dets],
                   [np.array(g, dtype=float) for g in gts], **kwargs)
    return c.fps_per_image.tolist(), c.sensitivity.tolist(), c


def test_duplicate_is_neither_tp_nor_fp():
    dets = [[det(BOX, 0.9), det(BOX, 0.8), det(FAR, 0.7)]]
    gts = [[BOX]]
    x, y, _ = curve_of(dets, gts)
    assert x == [0.0, 0.0, 1.0]  # the duplicate adds no FP
    assert y == [1.0, 1.0, 1.0]  # nor a hit
    match = match_detections([np.array(d) for d in dets],
                             [np.array(g) for g in gts])
    assert match.outcomes()[0].tolist() == [1, 0, -1]


def test_one_detection_hits_two_lesions():
    # IoU([0,0,9,9], [0,0,9,10]) = 100 / 110 >= 0.5: both lesions hit at once
    gts = [[BOX, [0., 0., 9., 10.], [50., 50., 59., 59.]]]
    dets = [[det(BOX, 0.9), det([50., 50., 59., 59.], 0.5)]]
    x, y, c = curve_of(dets, gts)
    assert c.num_gts == 3
    assert x == [0.0, 0.0]
    assert y == [2 / 3, 1.0]
    match = match_detections([np.array(d) for d in dets],
                             [np.array(g) for g in gts])
    assert match.new_hits.tolist() == [2, 1]
    assert match.gt_first_hit.tolist() == [0, 0, 1]


def test_partial_multi_hit_then_duplicate():
    a, b = [0., 0., 9., 9.], [0., 0., 9., 11.]  # IoU(a, b) = 100/120
    only_a = [0., 0., 9., 7.]  # IoU with a 0.8, with b 80/120 >= 0.5 too
    far_from_b = [0., 2., 9., 9.]  # IoU with a 0.8, with b 80/120
    gts = [[a, b]]
    # first detection overlaps a only at a strict threshold of 0.7
    dets = [[det(only_a, 0.9), det(a, 0.8), det(far_from_b, 0.7)]]
    x, y, _ = curve_of(dets, gts, iou_thr=0.7)
    # only_a: IoU(a)=0.8 hit, IoU(b)=80/120 < 0.7 -> 1 hit
    # a: IoU(a)=1 (already hit), IoU(b)=100/120 -> b becomes hit: TP
    # far_from_b: both hit already -> neither
    assert y == [0.5, 1.0, 1.0]
    assert x == [0.0, 0.0, 0.0]


def test_threshold_is_inclusive_and_best_below_is_fp():
    gts = [[BOX]]
    dets = [[det([0., 0., 19., 9.], 0.9)]]  # IoU exactly 0.5
    assert curve_of(dets, gts)[1] == [1.0]
    dets = [[det([0., 0., 20., 9.], 0.9)]]  # IoU 100/210 < 0.5
    x, y, _ = curve_of(dets, gts)
    assert (x, y) == ([1.0], [0.0])


def test_images_without_lesions_count_in_fp_denominator():
    dets = [[det(BOX, 0.9)], [det(BOX, 0.8)], []]
    gts = [[BOX], [], []]
    x, y, c = curve_of(dets, gts)
    assert c.num_images == 3
    assert x == [0.0, 1 / 3]  # any detection on a lesion-free image is FP
    assert y == [1.0, 1.0]


def test_no_detections_at_all():
    c = froc_curve([np.zeros((0, 5)), []], [np.array([BOX]), []])
    assert len(c.fps_per_image) == 0 and c.num_gts == 1
    assert sens_at_fp(c).tolist() == [0.0] * 6


def test_no_lesions_at_all_gives_nan():
    c = froc_curve([np.array([det(BOX, 0.5)])], [np.zeros((0, 4))])
    assert c.fps_per_image.tolist() == [1.0]
    assert np.isnan(c.sensitivity).all()
    assert np.isnan(sens_at_fp(c, [1, 2])).all()


def test_iobb_vs_iou():
    small_det = [10., 10., 19., 19.]
    big_gt = [0., 0., 39., 39.]
    dets, gts = [[det(small_det, 0.9)]], [[big_gt]]
    assert curve_of(dets, gts, overlap='iou')[:2] == ([1.0], [0.0])
    assert curve_of(dets, gts, overlap='iobb')[:2] == ([0.0], [1.0])


def test_ties_keep_input_order():
    # equal scores: stable order, the FP listed first is processed first
    gts = [[BOX]]
    dets = [[det(FAR, 0.5), det(BOX, 0.5)]]
    x, y, c = curve_of(dets, gts)
    assert (x, y) == ([1.0, 1.0], [0.0, 1.0])
    # 0.5 FPs/image is below the first point: documented value 0
    assert sens_at_fp(c, [0.5, 1]).tolist() == [0.0, 1.0]
    # the same detections listed the other way round
    x, y, c = curve_of([[det(BOX, 0.5), det(FAR, 0.5)]], gts)
    assert (x, y) == ([0.0, 1.0], [1.0, 1.0])
    assert sens_at_fp(c, [0.5, 1]).tolist() == [1.0, 1.0]
    # the counts at the end of a run of equal scores never depend on it
    assert curve_of([[det(FAR, .5), det(BOX, .5), det(BOX, .5)]],
                    gts)[1][-1] == 1.0


def test_global_sort_across_images():
    gts = [[BOX], [BOX]]
    dets = [[det(FAR, 0.9), det(BOX, 0.1)], [det(BOX, 0.5), det(FAR, 0.3)]]
    x, y, _ = curve_of(dets, gts)
    # order: img0 FAR (.9) FP, img1 BOX (.5) TP, img1 FAR (.3) FP, img0 BOX
    assert x == [0.5, 0.5, 1.0, 1.0]
    assert y == [0.0, 0.5, 0.5, 1.0]


def test_interpolation_on_equal_fp_runs_and_hold_last():
    # one image, two lesions: FP, TP, FP, TP -> x = [1, 1, 2, 2]
    gts = [[BOX, [50., 50., 59., 59.]]]
    dets = [[
        det(FAR, 0.9),
        det(BOX, 0.8),
        det([200., 200., 209., 209.], 0.7),
        det([50., 50., 59., 59.], 0.6)
    ]]
    x, y, c = curve_of(dets, gts)
    assert (x, y) == ([1.0, 1.0, 2.0, 2.0], [0.0, 0.5, 0.5, 1.0])
    rates = [1, 1.5, 2, 4, 16]
    sens = sens_at_fp(c, rates)
    # at a rate equal to a run of FP values: the last point of the run,
    # exactly what scipy's interp1d returns on this raw curve
    assert sens.tolist() == [0.5, 0.5, 1.0, 1.0, 1.0]
    assert float(interp1d(x, y)(1.0)) == 0.5
    assert float(interp1d(x, y)(2.0)) == 1.0
    # beyond the last FP rate: hold the last sensitivity (MULAN)
    assert sens_at_fp(c, [2.0001, 1000]).tolist() == [1.0, 1.0]


def test_linear_interpolation_between_points():
    # sensitivity is flat between FP steps, so linear interpolation returns
    # the sensitivity reached before the next FP
    gts = [[BOX], [BOX]]
    dets = [[det(BOX, 0.9), det(FAR, 0.8)], [det(FAR, 0.7), det(BOX, 0.6)]]
    x, y, c = curve_of(dets, gts)
    assert x == [0.0, 0.5, 1.0, 1.0]
    assert sens_at_fp(c, [0.25, 0.75]).tolist() == [0.5, 0.5]
    assert np.array_equal(
        sens_at_fp(c, [0.25, 0.75]), interp1d(x, y)([0.25, 0.75]))


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('overlap', ['iou', 'iobb'])
def test_random_cases_match_reference_exactly(seed, overlap):
    dets, gts = random_froc_case(
        num_images=60 + 20 * seed, dets_per_image=15, seed=seed,
        score_decimals=2)
    thr = (0.3, 0.5, 0.5, 0.7)[seed]
    c = froc_curve(dets, gts, iou_thr=thr, overlap=overlap)
    ref_x, ref_y = reference_froc(dets, gts, iou_thr=thr, overlap=overlap)
    assert np.array_equal(c.fps_per_image, ref_x)
    assert np.array_equal(c.sensitivity, ref_y)
    rates = [0.1, 0.5, 1, 2, 3, 4, 8, 16, 1000, 1 / 3, 2.7]
    assert np.array_equal(
        sens_at_fp(c, rates),
        np.array(reference_sens_at_fp(ref_x, ref_y, rates, c.num_gts)))


def test_random_case_has_the_hard_parts():
    dets, gts = random_froc_case(200, 20, seed=3, score_decimals=2)
    scores = np.concatenate([d[:, 4] for d in dets])
    assert len(np.unique(scores)) < len(scores)  # ties
    assert any(len(g) == 0 for g in gts)  # images without lesions
    match = match_detections(dets, gts)
    outcomes = np.concatenate(match.outcomes())
    assert {-1, 0, 1} <= set(outcomes.tolist())  # FP, duplicate, TP
    assert (match.new_hits >= 2).any()  # one detection hitting two lesions
    # deterministic
    dets2, gts2 = random_froc_case(200, 20, seed=3, score_decimals=2)
    assert all(np.array_equal(a, b) for a, b in zip(dets, dets2))


def test_chunked_pairs_give_the_same_result(monkeypatch):
    dets, gts = random_froc_case(50, 12, seed=7)
    full = froc_curve(dets, gts)
    monkeypatch.setattr(froc_mod, '_PAIR_CHUNK', 5)
    chunked = froc_curve(dets, gts)
    assert np.array_equal(full.sensitivity, chunked.sensitivity)
    assert np.array_equal(full.fps_per_image, chunked.fps_per_image)


def test_outcomes_and_match_are_consistent():
    dets, gts = random_froc_case(80, 10, seed=11)
    match = match_detections(dets, gts)
    c = match.curve()
    outs = match.outcomes()
    assert [len(o) for o in outs] == [len(d) for d in dets]
    flat = np.concatenate(outs)
    assert (flat == -1).sum() == round(c.fps_per_image[-1] * len(dets))
    hit = (match.gt_first_hit >= 0).sum()
    assert hit == match.new_hits.sum() == round(c.sensitivity[-1] *
                                                c.num_gts)


def test_breakdown_filters_only_ground_truth():
    liver, lung = [0., 0., 9., 9.], [50., 50., 59., 59.]
    gts = [np.array([liver, lung]), np.zeros((0, 4))]
    dets = [np.array([det(liver, 0.9), det(lung, 0.8)]), np.zeros((0, 5))]
    types = [np.array([4, 5]), np.array([], dtype=int)]
    subsets = lesion_type_subsets(types)
    assert list(subsets) == [
        'bone', 'abdomen', 'mediastinum', 'liver', 'lung', 'kidney',
        'soft tissue', 'pelvis'
    ]
    lung_curve = froc_curve(dets, filter_gts(gts, subsets['lung']))
    # the liver detection is kept and becomes a false positive
    assert lung_curve.fps_per_image.tolist() == [0.5, 0.5]
    assert lung_curve.sensitivity.tolist() == [0.0, 1.0]
    assert lung_curve.num_images == 2  # images are not filtered either
    res = {name: sens_at_fp(froc_curve(dets, filter_gts(gts, masks)),
                            [0.25, 0.5]) for name, masks in subsets.items()}
    assert res['lung'].tolist() == [0.0, 1.0]
    assert res['liver'].tolist() == [1.0, 1.0]
    assert np.isnan(res['bone']).all()  # empty subset


def test_diameter_bins_boundaries():
    diams = [np.array([9.99, 10.0, 30.0, 30.01, np.nan])]
    subsets = diameter_subsets(diams)
    assert subsets['lt10mm'][0].tolist() == [1, 0, 0, 0, 0]
    assert subsets['10to30mm'][0].tolist() == [0, 1, 1, 0, 0]
    assert subsets['gt30mm'][0].tolist() == [0, 0, 0, 1, 0]


def test_bad_input_names_image_and_row():
    good = np.array([det(BOX, 0.5)])
    with pytest.raises(ValueError, match=r'dets\[1\] row 1'):
        froc_curve([good, np.array([det(BOX, .1), det([5, 0, 4, 9], .2)])],
                   [np.zeros((0, 4))] * 2)
    with pytest.raises(ValueError, match=r'gts\[0\] row 0'):
        froc_curve([good], [np.array([[0, 0, np.nan, 3]])])
    with pytest.raises(ValueError, match=r'dets\[0\] must have shape'):
        froc_curve([np.zeros((2, 4))], [np.zeros((0, 4))])
    with pytest.raises(ValueError, match=r'dets\[0\] row 0: the score is'):
        froc_curve([np.array([det(BOX, np.nan)])], [np.zeros((0, 4))])
    with pytest.raises(ValueError, match='2 images but gts has 1'):
        froc_curve([good, good], [np.zeros((0, 4))])
    with pytest.raises(ValueError, match='overlap'):
        froc_curve([good], [np.zeros((0, 4))], overlap='giou')
    with pytest.raises(ValueError, match='fp_rates'):
        sens_at_fp(froc_curve([good], [np.array([BOX])]), [-1])
    with pytest.raises(ValueError, match='at least one image'):
        froc_curve([], [])
