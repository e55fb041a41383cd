# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the anchor IoU helpers (:mod:`mmlesion.anchors.anchor_iou`).

Pinned: the ratio pairs in ascending order (unsorted input, one value,
none), the anchor shapes in mmdet's order (size, then ratio, then scale),
the centred IoU of containing, contained and disjoint-size pairs and its
guard against a zero union, the objectives at their limits (IoU 0 clipped,
IoU 1, the default, reduction over the last axis), the side check of
:func:`boxes_to_wh` exactly at ``min_size`` and its message, and the
batched best IoU at the edges of the pyramid and of the ratio list (boxes
smaller / larger than every anchor, ratios outside the searched range,
ties, one level, one ratio) and its shape check
(docs/mutation_testing.md).
"""
import math

import numpy as np
import pytest

from mmlesion.anchors.anchor_iou import (OBJECTIVES, anchor_shapes,
                                         best_anchor_iou,
                                         best_anchor_iou_batched,
                                         boxes_to_wh, centered_iou,
                                         objective_from_iou,
                                         ratios_from_pairs)


def test_ratios_from_pairs():
    assert ratios_from_pairs([3, 1.5]) == [1 / 3, 1 / 1.5, 1.0, 1.5, 3.0]
    assert ratios_from_pairs([2]) == [0.5, 1.0, 2.0]
    assert ratios_from_pairs([]) == [1.0]
    assert all(type(r) is float for r in ratios_from_pairs([2]))


def test_anchor_shapes_order_and_formula():
    wh = anchor_shapes([8, 16], [0.25, 1.0], [1.0, 2.0])
    assert wh.dtype == np.float64 and wh.shape == (8, 2)
    # scale_major: sizes, then ratios, then scales (innermost)
    np.testing.assert_allclose(wh, [
        [16, 4], [32, 8], [8, 8], [16, 16],
        [32, 8], [64, 16], [16, 16], [32, 32],
    ])
    # the area is size^2 * scale^2 whatever the ratio
    np.testing.assert_allclose(
        anchor_shapes([10], [9.0], [1.0]), [[10 / 3, 30.0]])


def test_centered_iou_pairs():
    boxes = [[4.0, 6.0]]
    anchors = [[2.0, 3.0], [8.0, 12.0], [6.0, 4.0], [4.0, 6.0]]
    iou = centered_iou(boxes, anchors)
    assert iou.shape == (1, 4)
    np.testing.assert_allclose(
        iou[0], [6 / 24, 24 / 96, 16 / (24 + 24 - 16), 1.0])
    # zero-area boxes and anchors give 0, not NaN
    zero = centered_iou([[0.0, 0.0]], [[0.0, 0.0], [1.0, 1.0]])
    np.testing.assert_array_equal(zero, [[0.0, 0.0]])
    # lists are read as float
    assert centered_iou([[1, 1]], [[2, 2]]).dtype == np.float64
    assert centered_iou([[1, 1]], [[2, 2]])[0, 0] == 0.25
    best = best_anchor_iou(boxes, anchors)
    assert best.shape == (1, ) and best[0] == 1.0


def test_objectives_at_the_limits():
    assert OBJECTIVES == ('iou', 'ce', 'focal')
    perfect = np.ones(3)
    for objective in OBJECTIVES:
        assert objective_from_iou(perfect, objective) == 0.0
    # IoU 0 is clipped to 1e-12
    zero = np.zeros(1)
    assert objective_from_iou(zero, 'iou') == pytest.approx(1.0)
    assert objective_from_iou(zero, 'ce') == pytest.approx(
        -math.log(1e-12))
    assert objective_from_iou(zero, 'focal') == pytest.approx(
        -math.log(1e-12))
    # IoUs above 1 (rounding) are clipped to 1
    assert objective_from_iou(np.array([1.5]), 'iou') == 0.0
    # the default is focal; the last axis is reduced
    u = np.array([[0.5, 1.0], [0.25, 0.25]])
    np.testing.assert_allclose(
        objective_from_iou(u),
        [0.25 * math.log(2) / 2, 0.5625 * math.log(4)])
    np.testing.assert_allclose(objective_from_iou(u, 'iou'), [0.25, 0.75])
    np.testing.assert_allclose(objective_from_iou(u, 'ce'),
                               [math.log(2) / 2, math.log(4)])
    with pytest.raises(ValueError) as err:
        objective_from_iou(u, 'dice')
    assert str(err.value) == ("Unknown objective 'dice'; expected one of "
                              "('iou', 'ce', 'focal')")


def test_boxes_to_wh_limits():
    wh = boxes_to_wh([1, 2, 3, 5])
    assert wh.dtype == np.float64 and wh.tolist() == [[2.0, 3.0]]
    # exactly min_size is allowed, below is not
    assert boxes_to_wh([[0, 0, 1e-3, 1e-3]]).shape == (1, 2)
    assert boxes_to_wh([[0, 0, 2, 5]], min_size=2).tolist() == [[2.0, 5.0]]
    with pytest.raises(ValueError) as err:
        boxes_to_wh([[0, 0, 5, 5], [0, 0, 1.9, 5], [0, 0, 1, 1]],
                    min_size=2)
    assert str(err.value) == ('2 box(es) with a non-finite or < 2 px side, '
                              'e.g. index 1: [0.0, 0.0, 1.9, 5.0]')
    for bad in ([0, 0, 5, 0.5e-3], [0, 0, np.inf, 5], [0, 0, np.nan, 5],
                [0, 0, -1, 5]):
        with pytest.raises(ValueError, match='index 0'):
            boxes_to_wh([bad])
    assert boxes_to_wh(np.zeros((0, 4))).shape == (0, 2)


def _all_pairs(boxes, sizes, ratios, scales):
    return np.stack([
        best_anchor_iou(boxes, anchor_shapes(sizes, r, s))
        for r, s in zip(np.atleast_2d(ratios), np.atleast_2d(scales))
    ])


@pytest.mark.parametrize('sizes,ratios,scales', [
    ([32, 64, 128], [[0.5, 1.0, 2.0]], [[1.0, 1.26]]),
    ([32], [[0.5, 1.0, 2.0]], [[1.0]]),  # one level
    ([32, 64, 128], [[1.0]], [[1.0, 2.0]]),  # one ratio
    ([128, 32, 64], [[2.0, 0.5, 1.0]], [[1.0]]),  # unsorted input
    ([32, 64], [[0.5, 2.0], [0.25, 4.0]], [[1.0, 1.5], [0.5, 1.0]]),
])
def test_batched_equals_all_pairs_at_the_edges(sizes, ratios, scales):
    boxes = np.array([
        [1.0, 1.0],  # far below the smallest anchor
        [5000.0, 5000.0],  # far above the largest
        [32.0, 32.0],  # exactly an anchor
        [64.0, 64.0],
        [45.254833995939045, 45.254833995939045],  # between two sizes
        [2.0, 300.0],  # taller than every ratio
        [300.0, 2.0],  # wider than every ratio
        [32.0, 64.0],  # exactly ratio 2
        [64.0, 32.0],  # exactly ratio 0.5
        [40.0, 50.0],
    ])
    fast = best_anchor_iou_batched(boxes, sizes, ratios, scales)
    assert fast.shape == (len(np.atleast_2d(scales)), len(boxes))
    assert fast.dtype == np.float64
    np.testing.assert_allclose(fast, _all_pairs(boxes, sorted(sizes),
                                                np.atleast_2d(ratios),
                                                scales), rtol=0, atol=1e-12)


def test_batched_single_candidate_vectors_and_exact_values():
    # 1-D ratios and scales are one candidate
    fast = best_anchor_iou_batched([[32.0, 32.0], [16.0, 16.0]], [32],
                                   [1.0], [1.0])
    np.testing.assert_allclose(fast, [[1.0, 0.25]])
    # a box of exactly an anchor's shape
    fast = best_anchor_iou_batched([[16.0, 64.0]], [32, 64], [[1.0, 4.0]],
                                   [[1.0]])
    assert fast[0, 0] == pytest.approx(1.0)


def test_batched_zero_area_guard():
    fast = best_anchor_iou_batched([[1e-300, 1e-300]], [1e-300], [[1.0]],
                                   [[1e-10]])
    assert np.isfinite(fast).all()


def test_batched_shape_check():
    with pytest.raises(ValueError) as err:
        best_anchor_iou_batched([[1.0, 1.0]], [32], [[1.0], [2.0]],
                                [[1.0], [2.0], [3.0]])
    assert str(err.value) == '2 ratio rows but 3 scale rows'


def test_best_anchor_iou_of_batched_anchors():
    boxes = [[10.0, 10.0], [20.0, 20.0]]
    anchors = np.array([[[10.0, 10.0], [20.0, 20.0], [40.0, 40.0]],
                        [[5.0, 5.0], [5.0, 5.0], [80.0, 80.0]]])
    best = best_anchor_iou(boxes, anchors)
    assert best.shape == (2, 2)
    np.testing.assert_allclose(best, [[1.0, 1.0], [0.25, 1 / 16]])


def test_batched_sizes_as_a_column():
    boxes = [[32.0, 32.0], [50.0, 20.0]]
    flat = best_anchor_iou_batched(boxes, [32, 64], [[0.5, 1.0]], [[1.0]])
    column = best_anchor_iou_batched(boxes, [[64], [32]], [[0.5, 1.0]],
                                     [[1.0]])
    np.testing.assert_array_equal(flat, column)


def test_centered_iou_of_narrow_integers():
    # in uint8, 20 * 20 would wrap to 144
    box = np.array([[20, 20]], np.uint8)
    anchor = np.array([[10, 10]], np.uint8)
    assert centered_iou(box, anchor)[0, 0] == 0.25
    assert centered_iou(anchor, box)[0, 0] == 0.25


def test_batched_of_narrow_integers():
    # in uint8, the box area 20 * 20 would wrap
    boxes = np.array([[20, 20], [10, 40]], np.uint8)
    fast = best_anchor_iou_batched(boxes, [20], [[1.0, 4.0]], [[1.0]])
    np.testing.assert_allclose(
        fast, best_anchor_iou_batched(boxes.astype(float), [20],
                                      [[1.0, 4.0]], [[1.0]]))
    assert fast[0, 0] == 1.0


def test_batched_box_ratio_equal_to_an_anchor_ratio():
    # the square box's ratio is the anchor ratio 1: the pair below it (not
    # the pair above) is taken; a 12 px square anchor in a 16 px box gives
    # exactly 144 / 256, which the 1.03 anchor beside it exceeds by rounding
    iou = best_anchor_iou_batched([[16., 16.]], [4., 8., 16., 32., 64.],
                                  [[1 / 1.03, 1., 1.03]], [[3.]])
    assert iou.tolist() == [[0.5625]]
