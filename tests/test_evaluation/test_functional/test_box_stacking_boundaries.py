# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of 2D -> 3D box stacking (:mod:`...functional.box_stacking`).

Pinned: each option check on its own (``max_gap`` -1 with a valid
``min_slices`` and the reverse) and the exact messages, integer boxes and
scores (computed and returned as floats), scores given as ``(n, 1)``
columns or a scalar.
"""
import numpy as np
import pytest

from mmlesion.evaluation.functional.box_stacking import (StackSettings,
                                                         stack_slice_boxes)


def _box(x, y, w=10, h=10):
    return [x, y, x + w, y + h]


def test_option_checks_each_on_its_own():
    with pytest.raises(ValueError) as err:
        stack_slice_boxes([], [], [], StackSettings(max_gap=-1))
    assert str(err.value) == ('max_gap must be >= 0 and min_slices >= 1, '
                              'got -1 and 1')
    with pytest.raises(ValueError) as err:
        stack_slice_boxes([], [], [], StackSettings(min_slices=0))
    assert str(err.value) == ('max_gap must be >= 0 and min_slices >= 1, '
                              'got 0 and 0')
    assert stack_slice_boxes([], [], [],
                             StackSettings(max_gap=0, min_slices=1)) == []
    with pytest.raises(ValueError) as err:
        stack_slice_boxes([], [], [], StackSettings(score_mode='MAX'))
    assert str(err.value) == "score_mode must be 'max' or 'mean', got 'MAX'"


def test_messages():
    with pytest.raises(ValueError) as err:
        stack_slice_boxes([0, 1], [np.zeros((0, 4))], [np.zeros(0)] * 3)
    assert str(err.value) == (
        'stack_slice_boxes: 2 slice indices, 1 box arrays and 3 score '
        'arrays; they must be of the same length')
    with pytest.raises(ValueError) as err:
        stack_slice_boxes([3, 4], [[_box(0, 0)], [_box(0, 0)]],
                          [[.5], [.5, .4]])
    assert str(err.value) == ('stack_slice_boxes: entry 1 (slice 4) has 1 '
                              'boxes but 2 scores')
    for boxes, scores in (([[0, 0, np.inf, 1]], [.5]),
                          ([_box(0, 0)], [np.nan])):
        with pytest.raises(ValueError) as err:
            stack_slice_boxes([7], [boxes], [scores])
        assert str(err.value) == ('stack_slice_boxes: entry 0 (slice 7) has '
                                  'non-finite boxes or scores')


def test_integer_boxes_and_scores_give_floats():
    zs = [0, 1]
    boxes = [np.array([_box(0, 0)], np.int64), np.array([_box(2, 0)],
                                                          np.int32)]
    scores = [np.array([1], np.int64), np.array([3], np.int64)]
    (f, ) = stack_slice_boxes(zs, boxes, scores, StackSettings(iou_thr=.5))
    # x1 = (1 * 0 + 3 * 2) / 4
    assert f.bbox_3d == [1.5, 0., -.5, 11.5, 10., 1.5]
    assert all(type(v) is float for v in f.bbox_3d)
    assert f.score == 3.0 and type(f.score) is float
    assert f.boxes_2d == [(0, [0., 0., 10., 10.], 1.),
                             (1, [2., 0., 12., 10.], 3.)]
    for z, box, s in f.boxes_2d:
        assert type(z) is int and type(s) is float
        assert all(type(v) is float for v in box)
    (g, ) = stack_slice_boxes(zs, boxes, scores,
                              StackSettings(score_mode='mean'))
    assert g.score == 2.0
    assert f.key_slice == 1 and f.slice_range == (0, 1)


def test_score_columns_and_scalars():
    zs = [0, 1, 2]
    boxes = [[_box(0, 0), _box(50, 50)], [_box(0, 0), _box(50, 50)],
             [_box(0, 0)]]
    scores = [np.array([[.9], [.1]]), np.array([[.2], [.8]]), .5]
    out = stack_slice_boxes(zs, boxes, scores, StackSettings(score_thr=.15))
    assert [(f.slice_range, f.score) for f in out] == [
        ((0, 2), .9), ((1, 1), .8)
    ]
    assert [len(f.boxes_2d) for f in out] == [3, 1]
