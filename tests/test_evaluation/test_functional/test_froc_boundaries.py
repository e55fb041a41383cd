# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the 2D FROC protocol (:mod:`...functional.froc`).

Values exactly at the thresholds and range edges, the documented
defaults, empty images and subsets, and the shapes and dtypes the
docstrings promise: the cases a small change of the code would get wrong
while the typical cases of ``test_froc.py`` still pass
(docs/mutation_testing.md).
"""
import warnings

import numpy as np
import pytest

import mmlesion.evaluation.functional.froc as froc_mod
from mmlesion.evaluation.functional import (diameter_subsets, filter_gts,
                                            froc_curve, lesion_type_subsets,
                                            match_detections, sens_at_fp)

BOX = [0., 0., 9., 9.]  # 10 x 10 pixels (legacy convention)
FAR = [100., 100., 109., 109.]
NO_GT = np.zeros((0, 4))
NO_DET = np.zeros((0, 5))


def det(box, score):
    return list(box) + [score]


def arrays(rows, width):
    return np.array(rows, dtype=float).reshape(-1, width)


# --- the overlap threshold: both ends of [0, 1] are valid ------------------


def test_iou_thr_one_needs_an_exact_box():
    gts = [arrays([BOX], 4)]
    exact = match_detections([arrays([det(BOX, .9)], 5)], gts, iou_thr=1.0)
    assert exact.is_fp.tolist() == [False]
    off = match_detections([arrays([det([0., 0., 9., 10.], .9)], 5)],
                           gts,
                           iou_thr=1.0)  # IoU 100 / 110
    assert off.is_fp.tolist() == [True]


def test_iou_thr_zero_makes_every_detection_of_a_lesion_image_a_hit():
    # overlap 0 >= 0: a far detection still hits the lesion of its image;
    # an image without lesions still yields a false positive
    dets = [arrays([det(FAR, .9)], 5), arrays([det(BOX, .8)], 5)]
    gts = [arrays([BOX], 4), NO_GT]
    match = match_detections(dets, gts, iou_thr=0.0)
    assert match.is_fp.tolist() == [False, True]
    assert match.new_hits.tolist() == [1, 0]


@pytest.mark.parametrize('thr', [-0.01, 1.01, 1.5])
def test_iou_thr_outside_zero_one_is_rejected(thr):
    with pytest.raises(ValueError, match=r'iou_thr must be in \[0, 1\]'):
        froc_curve([arrays([det(BOX, .9)], 5)], [NO_GT], iou_thr=thr)


# --- error messages name what is wrong --------------------------------------


def test_bad_row_after_an_empty_image_is_named_in_its_own_image():
    # image 0 has no detections: the first bad row (global row 0) is row 0
    # of image 1, not of image 0
    bad = arrays([det([5., 0., 4., 9.], .5)], 5)
    with pytest.raises(ValueError, match=r'dets\[1\] row 0: invalid box'):
        froc_curve([NO_DET, bad], [NO_GT, NO_GT])
    # the first row of an image right after a full image
    good = arrays([det(BOX, .5)], 5)
    with pytest.raises(ValueError, match=r'dets\[1\] row 0: invalid box'):
        froc_curve([good, bad], [NO_GT, NO_GT])


def test_non_finite_coordinate_is_named_at_its_own_row():
    dets = arrays([det(BOX, .5), det([0., np.inf, 9., 9.], .4)], 5)
    with pytest.raises(ValueError, match=r'dets\[0\] row 1: invalid box'):
        froc_curve([dets], [NO_GT])


def test_invalid_box_message_states_the_rule_2d_and_3d():
    with pytest.raises(ValueError,
                       match=r'must be finite with x2 >= x1 and y2 >= y1\)'):
        froc_curve([arrays([det([5., 0., 4., 9.], .5)], 5)], [NO_GT])
    with pytest.raises(
            ValueError,
            match=r'must be finite with x2 >= x1, y2 >= y1 and z2 >= z1\)'):
        match_detections([arrays([[0, 0, 5, 9, 9, 4, .5]], 7)],
                         [np.zeros((0, 6))],
                         ndim=3)


def test_wrong_width_message_gives_the_expected_shape_and_columns():
    with pytest.raises(
            ValueError,
            match=r'dets\[0\] must have shape \(N, 5\) with columns '
            r'x1, y1, x2, y2, score; got shape \(1, 4\)'):
        froc_curve([np.zeros((1, 4))], [NO_GT])
    with pytest.raises(
            ValueError,
            match=r'gts\[0\] must have shape \(M, 4\) with columns '
            r'x1, y1, x2, y2; got shape \(1, 5\)'):
        froc_curve([NO_DET], [np.zeros((1, 5))])


def test_image_count_messages():
    with pytest.raises(
            ValueError,
            match=r'dets has 1 images but gts has 2; give one \(possibly '
            r'empty\) entry per image in both'):
        froc_curve([NO_DET], [NO_GT, NO_GT])
    with pytest.raises(ValueError, match=r'^FROC needs at least one image$'):
        froc_curve([], [])


# --- input dtypes: integer pixel coordinates do not overflow ---------------


def test_small_integer_boxes_are_evaluated_in_float():
    # 300 x 300 and 300 x 150 boxes, IoU exactly 0.5 (a hit); their
    # legacy +1 areas overflow int16
    dets = [np.array([[0, 0, 299, 299, 1]], dtype=np.int16)]
    gts = [np.array([[0, 0, 299, 149]], dtype=np.int16)]
    match = match_detections(dets, gts)
    assert match.is_fp.tolist() == [False]
    assert match.scores.dtype == np.float64
    assert match.scores.tolist() == [1.0]


def test_match_keeps_the_scores_in_input_order():
    dets = [arrays([det(BOX, .2), det(FAR, .7)], 5), arrays([det(BOX, .5)], 5)]
    match = match_detections(dets, [NO_GT, NO_GT])
    assert match.scores.tolist() == [.2, .7, .5]
    assert match.order.tolist() == [1, 2, 0]


# --- the pair chunks: a detection with more pairs than a chunk ------------


def test_chunk_smaller_than_one_detections_pairs(monkeypatch):
    gts = [arrays([BOX, FAR, [50., 50., 59., 59.]], 4), arrays([BOX], 4)]
    dets = [
        arrays([det(FAR, .9), det(BOX, .8), det([200.] * 4, .7)], 5),
        arrays([det(BOX, .6)], 5)
    ]
    full = match_detections(dets, gts)
    monkeypatch.setattr(froc_mod, '_PAIR_CHUNK', 1)
    chunked = match_detections(dets, gts)
    assert chunked.is_fp.tolist() == full.is_fp.tolist() == [
        False, False, True, False
    ]
    assert chunked.gt_first_hit.tolist() == full.gt_first_hit.tolist()


# --- FROCMatch: unhit lesions and per-image outcomes ----------------------


def test_unhit_lesion_has_first_hit_minus_one():
    match = match_detections([arrays([det(BOX, .9)], 5)],
                             [arrays([BOX, FAR], 4)])
    assert match.gt_first_hit.tolist() == [0, -1]


def test_outcomes_include_trailing_images_without_detections():
    dets = [arrays([det(BOX, .9), det(BOX, .8), det(FAR, .7)], 5),
            NO_DET, NO_DET]
    gts = [arrays([BOX], 4), NO_GT, arrays([BOX], 4)]
    outs = match_detections(dets, gts).outcomes()
    assert len(outs) == 3
    assert [o.tolist() for o in outs] == [[1, 0, -1], [], []]
    assert all(o.dtype == np.int8 for o in outs)


def test_curve_without_lesions_is_nan_per_detection_and_silent():
    match = match_detections([arrays([det(BOX, .9), det(FAR, .8)], 5)],
                             [NO_GT])
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no 0 / 0
        curve = match.curve()
    assert curve.sensitivity.shape == (2, )
    assert np.isnan(curve.sensitivity).all()
    assert curve.fps_per_image.tolist() == [1.0, 2.0]


# --- sens_at_fp: rate 0, shapes, defaults -----------------------------------


def _curve():
    # image 0: TP (0.9), FP (0.8); image 1: FP (0.7), TP (0.6); 2 lesions
    dets = [arrays([det(BOX, .9), det(FAR, .8)], 5),
            arrays([det(FAR, .7), det(BOX, .6)], 5)]
    return froc_curve(dets, [arrays([BOX], 4), arrays([BOX], 4)])


def test_rate_zero_is_valid_and_reads_the_curve_at_zero_fps():
    curve = _curve()
    assert curve.fps_per_image.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert curve.sensitivity.tolist() == [0.5, 0.5, 0.5, 1.0]
    assert sens_at_fp(curve, [0.0]).tolist() == [0.5]
    assert sens_at_fp(curve, [0.0, 1.0, 2.0]).tolist() == [0.5, 1.0, 1.0]


def test_scalar_rate_gives_one_value():
    out = sens_at_fp(_curve(), 1.0)
    assert out.shape == (1, )
    assert out.tolist() == [1.0]


def test_non_numeric_rate_is_a_value_error():
    with pytest.raises(ValueError, match='fp_rates must be finite'):
        sens_at_fp(_curve(), [None])


def test_no_lesions_gives_one_nan_per_rate():
    curve = froc_curve([arrays([det(BOX, .9)], 5)], [NO_GT])
    out = sens_at_fp(curve, [0.5, 1, 2])
    assert out.shape == (3, )
    assert np.isnan(out).all()


def test_lesion_found_after_8_fps():
    # one image: 8 false positives, then the lesion (found at 8 FPs)
    fps = [det(FAR, 1.0 - i * 1e-3) for i in range(8)]
    curve = froc_curve([arrays(fps + [det(BOX, .1)], 5)], [arrays([BOX], 4)])
    assert sens_at_fp(curve, [4, 8]).tolist() == [0.0, 1.0]


# --- filter_gts: shapes of per-image entries and masks ---------------------


def test_filter_gts_keeps_3d_rows():
    gts = [np.array([[0, 0, 0, 9, 9, 9], [1, 1, 1, 5, 5, 5]], dtype=float)]
    out = filter_gts(gts, [np.array([False, True])])
    assert out[0].tolist() == [[1, 1, 1, 5, 5, 5]]


def test_filter_gts_empty_image_and_flat_single_box():
    out = filter_gts([[], BOX], [[], [True]])
    assert out[0].shape == (0, 4)
    assert out[1].tolist() == [BOX]


def test_filter_gts_scalar_and_integer_masks():
    two = np.array([BOX, FAR])
    # a 0/1 integer mask selects like a boolean one (not by index)
    out = filter_gts([two, np.array([BOX])], [np.array([0, 1]), True])
    assert out[0].tolist() == [FAR]
    assert out[1].tolist() == [BOX]


def test_filter_gts_messages():
    with pytest.raises(ValueError, match=r'^gts has 1 images but keep has 2$'):
        filter_gts([NO_GT], [[], []])
    with pytest.raises(
            ValueError,
            match=r'^keep\[1\] has 2 entries but gts\[1\] has 3 boxes$'):
        filter_gts([NO_GT, np.array([BOX] * 3)], [[], [True, False]])


# --- subset masks: one flat mask per image --------------------------------


def test_subset_masks_are_flat_per_image():
    types = lesion_type_subsets([np.array([[5], [4]]), 5])
    assert types['lung'][0].tolist() == [True, False]
    assert types['lung'][1].tolist() == [True]
    diams = diameter_subsets([np.array([[12.], [40.]]), 5.0])
    assert diams['10to30mm'][0].tolist() == [True, False]
    assert diams['lt10mm'][1].tolist() == [True]


def test_missing_diameter_is_in_no_bin():
    diams = diameter_subsets([[None, 10]])
    assert [diams[k][0].tolist() for k in ('lt10mm', '10to30mm', 'gt30mm')
            ] == [[False, False], [False, True], [False, False]]


def test_thresholds_come_one_per_rate_in_a_flat_array():
    """``thresholds_at_fp`` flattens the rates and answers each, also with
    no detection (NaN per rate)."""
    empty = match_detections([np.zeros((0, 5))], [np.zeros((0, 4))])
    assert empty.thresholds_at_fp([1, 2, 4]).shape == (3, )
    one_fp = match_detections([np.array([[0, 0, 9, 9, .9]])],
                              [np.array([[50, 50, 59, 59]])])
    assert one_fp.thresholds_at_fp([[0.5, 1]]).shape == (2, )
