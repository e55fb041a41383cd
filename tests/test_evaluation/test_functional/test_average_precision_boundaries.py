# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of keras-retinanet's AP (:mod:`...functional.average_precision`).

Pinned: the defaults (IoU ``>= 0.5`` with the legacy ``+ 1`` pixel, no
ignored lesions), an IoU exactly at the threshold, score ties across
images (input order), images without detections or lesions anywhere in
the list, a detection on an ignored lesion ranked first (precision of an
empty prefix), the 0 of no lesions / no detections and the error message.
"""
import numpy as np
import pytest

from mmlesion.evaluation.functional.average_precision import ap_at_iou

A = [0., 0., 9., 9.]  # 10 x 10 px with the legacy + 1
B = [20., 20., 29., 29.]
HALF = [0., 0., 9., 4.]  # IoU with A: 50 / 100 (legacy), 36 / 81 (not)
FAR = [50., 50., 59., 59.]
NONE = np.zeros((0, 4))


def _dets(*rows):
    return np.array([list(box) + [score] for box, score in rows],
                    np.float64).reshape(-1, 5)


def test_defaults_hit_at_iou_exactly_one_half_with_legacy_pixels():
    dets, gts = [_dets((HALF, .9))], [np.array([A])]
    assert ap_at_iou(dets, gts) == 1.0
    assert ap_at_iou(dets, gts, None) == 1.0
    assert ap_at_iou(dets, gts, iou_thr=0.5) == 1.0
    assert ap_at_iou(dets, gts, iou_thr=0.51) == 0.0
    assert ap_at_iou(dets, gts, use_legacy_coordinate=True) == 1.0
    assert ap_at_iou(dets, gts, use_legacy_coordinate=False) == 0.0
    # 36 / 81 without the + 1: a hit below 0.45 only
    assert ap_at_iou(dets, gts, iou_thr=0.44,
                     use_legacy_coordinate=False) == 1.0
    assert isinstance(ap_at_iou(dets, gts), float)


def test_score_ties_across_images_keep_the_input_order():
    gts = [NONE, np.array([A])]
    # FP listed first: precision 1/2 at full recall
    fp_first = [_dets((FAR, .5)), _dets((A, .5))]
    assert ap_at_iou(fp_first, gts) == pytest.approx(0.5)
    tp_first = [_dets((A, .5)), _dets((FAR, .5))]
    assert ap_at_iou(tp_first, [np.array([A]), NONE]) == 1.0
    # within one image, likewise
    assert ap_at_iou([_dets((FAR, .5), (A, .5))],
                     [np.array([A])]) == pytest.approx(0.5)


def test_images_without_detections_still_count_their_lesions():
    # the first image has a lesion and no detection: recall at most 1/2
    dets = [np.zeros((0, 5)), _dets((A, .9)), np.zeros((0, 5))]
    gts = [np.array([B]), np.array([A]), np.array([A, B])]
    assert ap_at_iou(dets, gts) == pytest.approx(0.25)
    # lesions only in images after a detection-free one
    assert ap_at_iou([np.zeros((0, 5)), _dets((A, .9))],
                     [NONE, np.array([A])]) == 1.0
    # ground truth as plain lists of boxes
    assert ap_at_iou([[list(A) + [.9]]], [[A]]) == 1.0


def test_first_ranked_detection_on_an_ignored_lesion():
    # ranked first, neither TP nor FP: the empty prefix has precision 0
    dets = [_dets((B, .9), (A, .8), (FAR, .7))]
    gts = [np.array([A])]
    assert ap_at_iou(dets, gts, [np.array([B])]) == 1.0
    assert ap_at_iou(dets, gts, [np.array([B]).tolist()]) == 1.0
    assert ap_at_iou(dets, gts, [NONE]) == pytest.approx(0.5)
    assert ap_at_iou(dets, gts) == pytest.approx(0.5)


def test_two_recall_steps_hand_worked():
    # TP .9, FP .8, TP .7 on 2 lesions: 1/2 * 1 + 1/2 * 2/3
    dets = [_dets((A, .9), (FAR, .8), (B, .7))]
    assert ap_at_iou(dets, [np.array([A, B])]) == pytest.approx(
        0.5 + 1 / 3)
    # a lesion never found: recall stops at 1/2
    assert ap_at_iou([_dets((A, .9), (FAR, .8))],
                     [np.array([A, B])]) == pytest.approx(0.5)


def test_zero_without_lesions_or_detections():
    assert ap_at_iou([_dets((A, .9))], [NONE]) == 0.0
    assert ap_at_iou([np.zeros((0, 5))], [np.array([A])]) == 0.0
    assert ap_at_iou([], []) == 0.0
    assert isinstance(ap_at_iou([], []), float)


def test_mismatched_lengths_message():
    with pytest.raises(ValueError) as err:
        ap_at_iou([np.zeros((0, 5))], [np.array([A])] * 3)
    assert str(err.value) == ('ap_at_iou: 1 images of detections but 3 of '
                              'ground truth')


def test_many_score_ties_keep_the_input_order():
    # 63 FPs and, listed last, one TP, with scores of three values: the TP
    # comes after the 23 FPs of its score (a stable sort), precision 1/24
    rng = np.random.default_rng(0)
    scores = rng.choice([.1, .2, .3], 64)
    scores[-1] = .3
    assert (scores[:-1] == .3).sum() == 23
    boxes = [[100. + 20 * (k % 8), 100. + 20 * (k // 8), 109. + 20 * (k % 8),
              109. + 20 * (k // 8)] for k in range(63)] + [A]
    dets = [_dets(*zip(boxes, scores))]
    assert ap_at_iou(dets, [np.array([A])]) == pytest.approx(1 / 24)


def test_computed_in_float32_like_mmdets_eval_map():
    # [0, 0, 19 + 1e-9, 9] is [0, 0, 19, 9] in float32: IoU 0.5 with A,
    # a hit (just below 0.5 in float64)
    wide = [0., 0., 19. + 1e-9, 9.]
    assert ap_at_iou([_dets((wide, .9))], [np.array([A])]) == 1.0
    assert ap_at_iou([_dets((A, .9))], [np.array([wide])]) == 1.0
    # likewise a detection on an ignored lesion is ignored, not an FP
    dets = [_dets((A, .9), (B, .8))]
    assert ap_at_iou(dets, [np.array([B])], [np.array([wide])]) == 1.0


def test_default_ignores_nothing_at_the_origin():
    # a one-pixel box at the origin, ranked first, is an FP by default
    dets = [_dets(([0., 0., 0., 0.], .9), (A, .8))]
    assert ap_at_iou(dets, [np.array([A])]) == pytest.approx(0.5)
    assert ap_at_iou(dets, [np.array([A])],
                     [np.array([[0., 0., 0., 0.]])]) == 1.0


def test_scores_compared_in_float32():
    # 0.30000001 is 0.3 in float32: a tie, so the TP listed first ranks
    # first (in float64 the FP would)
    dets = [_dets((A, .3), (FAR, .30000001))]
    assert ap_at_iou(dets, [np.array([A])]) == 1.0
    dets = [_dets((A, .3)), _dets((FAR, .30000001))]
    assert ap_at_iou(dets, [np.array([A]), NONE]) == 1.0
