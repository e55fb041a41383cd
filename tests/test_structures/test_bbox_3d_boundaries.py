# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the 3D box helpers (:mod:`mmlesion.structures.bbox_3d`).

Boxes smaller than a voxel, inverted boxes, IoU exactly at the NMS
threshold, suppression by an earlier kept box, leading batch dimensions,
scored boxes on either side of ``BboxOverlaps3D`` and the exact messages of
the checks: the cases a small change of the code would get wrong while
``test_bbox_3d.py`` still passes (docs/mutation_testing.md).
"""
import re

import pytest
import torch

from mmlesion.structures import (BboxOverlaps3D, bbox3d_to_zyxd,
                                 bbox_overlaps_3d, nms_3d, zyxd_to_bbox3d)

CUBE = [0., 0., 0., 10., 10., 10.]


def t(rows, dtype=torch.float32) -> torch.Tensor:
    """A tensor of ``rows``."""
    return torch.tensor(rows, dtype=dtype)


def test_boxes_smaller_than_a_voxel_keep_their_exact_iou():
    tiny = t([[0., 0., 0., .1, .1, .1]])  # volume 1e-3, above eps = 1e-6
    half = t([[0., 0., 0., .05, .1, .1]])
    assert torch.allclose(bbox_overlaps_3d(tiny, tiny), t([[1.]]))
    assert torch.allclose(bbox_overlaps_3d(half, tiny), t([[.5]]))
    assert torch.allclose(bbox_overlaps_3d(tiny, half, mode='iof'), t([[.5]]))


def test_inverted_and_empty_boxes_have_no_volume():
    inverted = t([[10., 0., 0., 0., 10., 10.]])
    assert bbox_overlaps_3d(inverted, t([CUBE])).tolist() == [[0.]]
    assert bbox_overlaps_3d(t([CUBE]), inverted).tolist() == [[0.]]
    point = t([[1., 1., 1., 1., 1., 1.]])  # union 0: 0 / eps
    assert bbox_overlaps_3d(point, point).tolist() == [[0.]]


@pytest.mark.parametrize('mode', ['giou', 'IoU', ''])
def test_unknown_mode_is_rejected(mode):
    msg = f"mode must be 'iou' or 'iof', got {mode!r}"
    with pytest.raises(ValueError, match=re.escape(msg) + '$'):
        bbox_overlaps_3d(t([CUBE]), t([CUBE]), mode=mode)


@pytest.mark.parametrize('which', [1, 2])
def test_bad_boxes_are_named_in_the_message(which):
    good, bad = t([CUBE]), t([[0., 0., 10., 10.]])
    args = (bad, good) if which == 1 else (good, bad)
    msg = (f'bboxes{which} must be (N, 6) [x1, y1, z1, x2, y2, z2] boxes, '
           'got shape (1, 4)')
    with pytest.raises(ValueError, match=re.escape(msg) + '$'):
        bbox_overlaps_3d(*args)


def test_overlaps_3d_drops_a_score_column_on_either_side():
    calc = BboxOverlaps3D()
    boxes = t([CUBE, [0., 0., 5., 10., 10., 15.]])  # IoU 500 / 1500
    scored = torch.cat([boxes, t([[.9], [.3]])], dim=1)
    expected = t([[1., 1 / 3], [1 / 3, 1.]])
    for a, b in [(scored, boxes), (boxes, scored), (scored, scored)]:
        assert torch.allclose(calc(a, b), expected)
    # the mode is passed on
    inside = t([[0., 0., 0., 5., 10., 10.]])
    assert torch.allclose(calc(inside, scored[:1], mode='iof'), t([[1.]]))
    assert torch.allclose(calc(inside, scored[:1]), t([[.5]]))
    # 7 boxes of 6 columns are not scored boxes
    seven = t([CUBE] * 7)
    assert calc(seven, seven).shape == (7, 7)


@pytest.mark.parametrize('which', [1, 2])
def test_overlaps_3d_rejects_a_box_without_the_n_dimension(which):
    one, good = t(CUBE + [.9]), t([CUBE])
    args = (one, good) if which == 1 else (good, one)
    msg = (f'bboxes{which} must be (N, 6) [x1, y1, z1, x2, y2, z2] boxes, '
           'got shape (6,)')
    with pytest.raises(ValueError, match=re.escape(msg) + '$'):
        BboxOverlaps3D()(*args)


def test_overlaps_3d_is_pairwise_only():
    with pytest.raises(NotImplementedError,
                       match='^BboxOverlaps3D computes pairwise overlaps '
                       'only$'):
        BboxOverlaps3D()(t([CUBE]), t([CUBE]), is_aligned=True)


def test_zyxd_conversions_keep_leading_dimensions():
    zyxd = t([[[10., 20., 30., 6.], [1., 2., 3., 2.]],
              [[0., 0., 0., 4.], [5., 5., 5., 1.]]])  # (2, 2, 4)
    boxes = zyxd_to_bbox3d(zyxd)
    assert boxes.shape == (2, 2, 6)
    assert boxes[0, 1].tolist() == [2., 1., 0., 4., 3., 2.]
    assert boxes[1, 0].tolist() == [-2., -2., -2., 2., 2., 2.]
    assert torch.equal(bbox3d_to_zyxd(boxes), zyxd)
    # a single box (no N dimension)
    assert zyxd_to_bbox3d(t([1., 2., 3., 2.])).tolist() == [
        2., 1., 0., 4., 3., 2.
    ]
    # the diameter is the mean of the three extents
    assert bbox3d_to_zyxd(t([0., 0., 0., 1., 2., 6.])).tolist() == [
        3., 1., .5, 3.
    ]


def test_nms_iou_exactly_at_the_threshold_is_kept():
    half = [0., 0., 0., 10., 10., 5.]  # IoU 0.5 with CUBE
    _, keep = nms_3d(t([CUBE, half]), t([.9, .8]), iou_thr=0.5)
    assert keep.tolist() == [0, 1]
    _, keep = nms_3d(t([CUBE, half]), t([.9, .8]), iou_thr=0.49)
    assert keep.tolist() == [0]


def test_nms_a_box_stays_suppressed_by_an_earlier_kept_box():
    boxes = t([CUBE, [20., 20., 20., 30., 30., 30.],
               [1., 0., 0., 11., 10., 10.]])  # IoU 9/11 with CUBE only
    dets, keep = nms_3d(boxes, t([.9, .8, .7]), iou_thr=0.5)
    assert keep.tolist() == [0, 1]
    assert keep.dtype == torch.long
    assert dets.tolist() == [CUBE + [pytest.approx(.9)],
                             [20., 20., 20., 30., 30., 30.,
                              pytest.approx(.8)]]


@pytest.mark.parametrize('score_dtype', [torch.float32, torch.float64])
def test_nms_of_no_boxes(score_dtype):
    dets, keep = nms_3d(torch.zeros(0, 6), torch.zeros(0, dtype=score_dtype),
                        0.5)
    assert dets.shape == (0, 7) and dets.dtype == torch.float32
    assert keep.shape == (0, ) and keep.dtype == torch.long


def test_nms_messages():
    msg = 'scores must be (2,), got (3,)'
    with pytest.raises(ValueError, match=re.escape(msg) + '$'):
        nms_3d(t([CUBE, CUBE]), t([.1, .2, .3]), 0.5)
    msg = ('bboxes must be (N, 6) [x1, y1, z1, x2, y2, z2] boxes, got shape '
           '(2, 7)')
    with pytest.raises(ValueError, match=re.escape(msg) + '$'):
        nms_3d(torch.zeros(2, 7), t([.1, .2]), 0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_nms_on_cuda():
    boxes = t([CUBE, [1., 0., 0., 11., 10., 10.],
               [20., 20., 20., 30., 30., 30.]]).cuda()
    dets, keep = nms_3d(boxes, t([.9, .8, .7]).cuda(), iou_thr=0.5)
    assert keep.device == boxes.device and keep.tolist() == [0, 2]
