# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the legacy "+1 pixel" overlaps (:mod:`...overlaps`, through
the all-pairs and aligned forms of ``tests/helpers/legacy_overlaps.py``).

Pinned: overlaps exactly at 0.5 and exactly 0 (touching and disjoint
boxes, also disjoint along every axis at once, where an unclamped negative
extent times another would turn positive), the ``+ 1`` in every extent of
2D and 3D boxes, IoBB dividing by the *first* box, the defaults (``'iou'``,
2D), the row-major layout of the all-pairs matrix, the empty shapes and
dtypes, and the exact error messages (shape, mode, ``ndim``).
"""
import numpy as np
import pytest

from mmlesion.evaluation.functional.overlaps import (BOX_COLUMNS,
                                                     OVERLAP_MODES,
                                                     legacy_box_sizes)
from tests.helpers.legacy_overlaps import (aligned_legacy_overlaps,
                                           legacy_bbox_overlaps)

BOX = [0., 0., 9., 9.]  # 10 x 10 pixels
CUBE = [0., 0., 0., 9., 9., 9.]  # 10 x 10 x 10 voxels


def test_constants():
    assert OVERLAP_MODES == ('iou', 'iobb')
    assert BOX_COLUMNS == {2: 'x1, y1, x2, y2', 3: 'x1, y1, z1, x2, y2, z2'}


def test_sizes_count_both_end_pixels_on_every_axis():
    # 2 x 3 pixels, 1 x 1 pixel (a zero-extent box is one pixel)
    boxes = [[1., 2., 2., 4.], [5., 5., 5., 5.]]
    assert legacy_box_sizes(boxes).tolist() == [6., 1.]  # default ndim=2
    assert legacy_box_sizes(boxes).dtype == np.float64
    # 2 x 3 x 4 voxels: each of x, y, z gets its own + 1
    assert legacy_box_sizes([[1., 2., 3., 2., 4., 6.]], 3).tolist() == [24.]
    assert legacy_box_sizes([[0., 0., 0., 0., 0., 9.]], 3).tolist() == [10.]
    assert legacy_box_sizes([[0., 0., 0., 0., 9., 0.]], 3).tolist() == [10.]
    assert legacy_box_sizes([[0., 0., 0., 9., 0., 0.]], 3).tolist() == [10.]
    assert legacy_box_sizes(np.zeros((0, 6)), 3).shape == (0, )


def test_iou_exactly_one_half_and_default_mode():
    gt = [[0., 0., 19., 9.]]  # 200 px containing the 100 px box
    assert legacy_bbox_overlaps([BOX], gt).tolist() == [[0.5]]
    assert legacy_bbox_overlaps([BOX], gt, 'iou').tolist() == [[0.5]]
    assert aligned_legacy_overlaps([BOX], gt).tolist() == [0.5]
    # IoBB over the first box: the small box is fully inside
    assert legacy_bbox_overlaps([BOX], gt, 'iobb').tolist() == [[1.0]]
    assert legacy_bbox_overlaps(gt, [BOX], 'iobb').tolist() == [[0.5]]
    assert aligned_legacy_overlaps(gt, [BOX], 'iobb').tolist() == [0.5]


def test_partial_overlap_hand_worked_both_modes():
    # BOX vs [5, 0, 14, 9]: 5 x 10 = 50 shared, union 150
    other = [[5., 0., 14., 9.]]
    assert legacy_bbox_overlaps([BOX], other).tolist() == [[50 / 150]]
    assert legacy_bbox_overlaps([BOX], other, 'iobb').tolist() == [[0.5]]
    # a 20 x 10 first box: IoBB over its 200 px, IoU over the union 200
    wide = [[0., 0., 19., 9.]]
    assert legacy_bbox_overlaps(wide, other, 'iobb').tolist() == [[0.5]]
    assert legacy_bbox_overlaps(wide, other).tolist() == [[0.5]]
    # y shared only partly: 10 x 5 = 50, union 150
    low = [[0., 5., 9., 14.]]
    assert legacy_bbox_overlaps([BOX], low).tolist() == [[50 / 150]]


def test_touching_and_disjoint_boxes_overlap_zero():
    # sharing the last column of pixels: 1 x 10 = 10 of 190
    assert legacy_bbox_overlaps([BOX], [[9., 0., 18., 9.]]).tolist() == [
        [10 / 190]
    ]
    # next to each other (no pixel shared) along x, along y, and diagonal
    for other in ([10., 0., 19., 9.], [0., 10., 9., 19.],
                  [10., 10., 19., 19.], [20., 20., 29., 29.],
                  [20., 0., 29., 9.], [0., 20., 9., 29.]):
        for mode in OVERLAP_MODES:
            assert legacy_bbox_overlaps([BOX], [other],
                                        mode).tolist() == [[0.]]
            assert legacy_bbox_overlaps([other], [BOX],
                                        mode).tolist() == [[0.]]


def test_3d_overlaps_hand_worked():
    # half the cube along z: 500 of 1000 + 500 - 500
    half = [[0., 0., 0., 9., 9., 4.]]
    assert legacy_bbox_overlaps([CUBE], half, ndim=3).tolist() == [[0.5]]
    assert legacy_bbox_overlaps([CUBE], half, 'iobb',
                                ndim=3).tolist() == [[0.5]]
    assert legacy_bbox_overlaps(half, [CUBE], 'iobb',
                                ndim=3).tolist() == [[1.0]]
    # 5 x 10 x 10 shared of 1000 + 1000 - 500
    shifted = [[5., 0., 0., 14., 9., 9.]]
    assert aligned_legacy_overlaps([CUBE], shifted, ndim=3).tolist() == [
        500 / 1500
    ]
    # 5 x 5 x 5 shared: every axis multiplies in
    corner = [[5., 5., 5., 14., 14., 14.]]
    assert aligned_legacy_overlaps([CUBE], corner, 'iobb',
                                   ndim=3).tolist() == [125 / 1000]
    # disjoint along z only, along z and y, along all three
    for other in ([0., 0., 10., 9., 9., 19.], [0., 20., 20., 9., 29., 29.],
                  [20., 20., 20., 29., 29., 29.]):
        for mode in OVERLAP_MODES:
            assert legacy_bbox_overlaps([CUBE], [other], mode,
                                        ndim=3).tolist() == [[0.]]


def test_all_pairs_matrix_is_row_major():
    dets = [BOX, [0., 0., 19., 9.], [5., 0., 14., 9.]]
    gts = [[0., 0., 19., 9.], BOX]
    mat = legacy_bbox_overlaps(dets, gts)
    assert mat.shape == (3, 2) and mat.dtype == np.float64
    assert mat.tolist() == [[0.5, 1.0], [1.0, 0.5], [0.5, 50 / 150]]
    iobb = legacy_bbox_overlaps(dets, gts, 'iobb')
    assert iobb.tolist() == [[1.0, 1.0], [1.0, 0.5], [1.0, 0.5]]
    for i, row in enumerate(dets):
        for j, col in enumerate(gts):
            assert aligned_legacy_overlaps([row], [col])[0] == mat[i, j]


def test_empty_shapes_and_dtypes():
    assert legacy_bbox_overlaps(np.zeros((0, 6)), [CUBE],
                                ndim=3).shape == (0, 1)
    assert legacy_bbox_overlaps([CUBE], [], ndim=3).shape == (1, 0)
    empty = legacy_bbox_overlaps([], [BOX, BOX])
    assert empty.shape == (0, 2) and empty.dtype == np.float64
    pairs = aligned_legacy_overlaps([], [])
    assert pairs.shape == (0, ) and pairs.dtype == np.float64
    assert aligned_legacy_overlaps([], [], ndim=3).shape == (0, )
    # int and float32 inputs are computed in float64
    out = aligned_legacy_overlaps(np.array([BOX], np.int32),
                                  np.array([[0, 0, 19, 9]], np.float32))
    assert out.dtype == np.float64 and out.tolist() == [0.5]
    for dtype in (np.float32, np.int64, np.int32):
        a = np.array([BOX], dtype)
        b = np.array([[0, 0, 19, 9]], dtype)
        for out in (aligned_legacy_overlaps(a, b),
                    legacy_bbox_overlaps(a, b, 'iobb')[0],
                    legacy_box_sizes(a)):
            assert out.dtype == np.float64
        assert aligned_legacy_overlaps(a, b).tolist() == [0.5]
        assert legacy_box_sizes(b).tolist() == [200.]


def test_error_messages():
    with pytest.raises(ValueError) as err:
        legacy_bbox_overlaps(np.zeros((2, 5)), [BOX])
    assert str(err.value) == ('bboxes1 must have shape (N, 4) in x1, y1, x2, '
                              'y2 order, got shape (2, 5)')
    with pytest.raises(ValueError) as err:
        legacy_bbox_overlaps([BOX], np.zeros((1, 4, 1)))
    assert str(err.value).startswith('bboxes2 must have shape (N, 4)')
    with pytest.raises(ValueError) as err:
        aligned_legacy_overlaps([BOX], [BOX], ndim=3)
    assert str(err.value) == ('bboxes1 must have shape (N, 6) in x1, y1, z1, '
                              'x2, y2, z2 order, got shape (1, 4)')
    with pytest.raises(ValueError) as err:
        aligned_legacy_overlaps([CUBE], [BOX], ndim=3)
    assert str(err.value) == ('bboxes2 must have shape (N, 6) in x1, y1, z1, '
                              'x2, y2, z2 order, got shape (1, 4)')
    with pytest.raises(ValueError) as err:
        legacy_box_sizes(BOX)  # one box, not a (1, 4) array
    assert str(err.value) == ('bboxes must have shape (N, 4) in x1, y1, x2, '
                              'y2 order, got shape (4,)')
    for ndim in (1, 4):
        with pytest.raises(ValueError) as err:
            legacy_box_sizes([BOX], ndim)
        assert str(err.value) == f'ndim must be 2 or 3, got {ndim}'
    with pytest.raises(ValueError) as err:
        aligned_legacy_overlaps([BOX], [BOX], mode='iof')
    assert str(err.value) == ("overlap mode must be one of ('iou', 'iobb'), "
                              "got 'iof'")
    with pytest.raises(ValueError) as err:
        legacy_bbox_overlaps([], [], mode='IOU')
    assert 'got \'IOU\'' in str(err.value)
    with pytest.raises(ValueError) as err:
        aligned_legacy_overlaps([BOX, BOX], [BOX])
    assert str(err.value) == ('aligned overlaps need the same number of '
                              'boxes, got 2 and 1')
