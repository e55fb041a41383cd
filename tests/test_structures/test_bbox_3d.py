# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch

from mmlesion.structures import (BboxOverlaps3D, bbox3d_to_zyxd,
                                 bbox_overlaps_3d, nms_3d, zyxd_to_bbox3d)


def test_overlaps_hand_cases():
    a = torch.tensor([[0., 0., 0., 2., 2., 2.]])
    b = torch.tensor([[1., 1., 1., 3., 3., 3.],   # inter 1, union 15
                      [0., 0., 0., 2., 2., 2.],   # identical
                      [5., 5., 5., 6., 6., 6.],   # disjoint
                      [0., 0., 0., 2., 2., 1.]])  # half, inside
    iou = bbox_overlaps_3d(a, b)
    assert torch.allclose(iou, torch.tensor([[1 / 15, 1., 0., 0.5]]))
    iof = bbox_overlaps_3d(b, a, mode='iof')
    assert torch.allclose(iof[:, 0], torch.tensor([1 / 8, 1., 0., 1.]))
    calc = BboxOverlaps3D()
    scored = torch.cat([b, torch.ones(4, 1)], 1)
    assert torch.allclose(calc(a, scored), iou)
    with pytest.raises(ValueError, match=r'\(N, 6\)'):
        bbox_overlaps_3d(a[:, :4], b)


def test_zyxd_round_trip():
    zyxd = torch.tensor([[10., 20., 30., 6.], [1.5, 2.5, 3.5, 1.]])
    boxes = zyxd_to_bbox3d(zyxd)
    assert torch.allclose(boxes[0], torch.tensor([27., 17., 7., 33., 23.,
                                                  13.]))
    assert torch.allclose(bbox3d_to_zyxd(boxes), zyxd)


def test_nms_3d():
    boxes = torch.tensor([[0., 0., 0., 10., 10., 10.],
                          [1., 0., 0., 11., 10., 10.],  # IoU 9/11 with 0
                          [20., 20., 20., 30., 30., 30.],
                          [0., 0., 5., 10., 10., 15.]])  # IoU 1/3 with 0
    scores = torch.tensor([0.9, 0.95, 0.5, 0.8])
    dets, keep = nms_3d(boxes, scores, iou_thr=0.5)
    assert keep.tolist() == [1, 3, 2]
    assert torch.allclose(dets[:, 6], torch.tensor([0.95, 0.8, 0.5]))
    dets, keep = nms_3d(boxes, scores, iou_thr=0.25)  # 3 vs 1: 450/1550
    assert keep.tolist() == [1, 2]
    dets, keep = nms_3d(boxes[:0], scores[:0], 0.5)
    assert dets.shape == (0, 7) and keep.numel() == 0


def test_nms_3d_ties_keep_input_order():
    """Equal scores: the box given first wins, whatever the number of boxes
    (torch's default sort is not stable for long inputs)."""
    n = 2000  # long enough for torch's unstable sort to reorder ties
    base = torch.tensor([[0., 0., 0., 10., 10., 10.]])
    shift = torch.arange(n, dtype=torch.float32)[:, None] * 100
    # pairs of identical boxes far apart from other pairs, all tied
    boxes = (base + torch.cat([shift] * 3 + [shift] * 3, 1)).repeat_interleave(
        2, 0)
    scores = torch.full((2 * n, ), 0.5)
    _, keep = nms_3d(boxes, scores, iou_thr=0.5)
    assert keep.tolist() == list(range(0, 2 * n, 2))
    # a higher score still wins over input order
    scores[1] = 0.6
    _, keep = nms_3d(boxes[:2], scores[:2], iou_thr=0.5)
    assert keep.tolist() == [1]
