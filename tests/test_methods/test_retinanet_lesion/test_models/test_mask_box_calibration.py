# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch

from mmlesion.methods.retinanet_lesion.models import (calibrate_scores,
                                                      calibrate_with_mask,
                                                      mask_component_boxes)


def test_component_boxes():
    mask = torch.zeros(20, 30, dtype=torch.bool)
    mask[2:5, 3:6] = True  # rows 2..4, cols 3..5
    mask[10:18, 20:29] = True
    boxes = mask_component_boxes(mask)
    boxes = boxes[boxes[:, 0].argsort()]
    torch.testing.assert_close(
        boxes, torch.tensor([[3., 2., 6., 5.], [20., 10., 29., 18.]]))
    # diagonal neighbours: one component with 8-, two with 4-connectivity
    diag = torch.zeros(5, 5, dtype=torch.bool)
    diag[1, 1] = diag[2, 2] = True
    assert len(mask_component_boxes(diag, connectivity=8)) == 1
    assert len(mask_component_boxes(diag, connectivity=4)) == 2
    assert len(mask_component_boxes(diag, connectivity=4, min_area=2)) == 0
    assert mask_component_boxes(torch.zeros(4, 4)).shape == (0, 4)
    with pytest.raises(ValueError):
        mask_component_boxes(torch.zeros(1, 4, 4))


def test_hand_case():
    scores = torch.tensor([0.8, 0.6, 0.3])
    bboxes = torch.tensor([
        [0., 0., 10., 10.],  # IoU 0.5 with mask box 0
        [20., 20., 30., 30.],  # identical to mask box 1
        [50., 50., 60., 60.]
    ])  # overlaps nothing
    mask_boxes = torch.tensor([[0., 0., 10., 5.], [20., 20., 30., 30.]])
    new, ious = calibrate_scores(scores, bboxes, mask_boxes)
    torch.testing.assert_close(ious, torch.tensor([0.5, 1.0, 0.0]))
    torch.testing.assert_close(new, torch.tensor([1.2, 1.2, 0.3]))


def test_never_lowers_and_equals_p_without_overlap():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        n, k = 30, 5
        xy = torch.rand(n, 2, generator=gen) * 100
        wh = torch.rand(n, 2, generator=gen) * 30 + 1
        bboxes = torch.cat([xy, xy + wh], 1)
        mxy = torch.rand(k, 2, generator=gen) * 100
        mwh = torch.rand(k, 2, generator=gen) * 30 + 1
        mask_boxes = torch.cat([mxy, mxy + mwh], 1)
        scores = torch.rand(n, generator=gen)
        new, ious = calibrate_scores(scores, bboxes, mask_boxes)
        assert torch.all(new >= scores)
        assert torch.all(new <= 2 * scores + 1e-6)
        assert torch.all((ious >= 0) & (ious <= 1))
        # disjoint detections keep exactly p
        x1 = torch.maximum(bboxes[:, None, 0], mask_boxes[None, :, 0])
        y1 = torch.maximum(bboxes[:, None, 1], mask_boxes[None, :, 1])
        x2 = torch.minimum(bboxes[:, None, 2], mask_boxes[None, :, 2])
        y2 = torch.minimum(bboxes[:, None, 3], mask_boxes[None, :, 3])
        disjoint = ((x2 <= x1) | (y2 <= y1)).all(dim=1)
        assert disjoint.any() and (~disjoint).any()
        assert torch.equal(new[disjoint], scores[disjoint])
        assert torch.all(new[~disjoint] > scores[~disjoint])


def test_empty_inputs():
    scores = torch.tensor([0.5])
    bboxes = torch.tensor([[0., 0., 4., 4.]])
    new, ious = calibrate_scores(scores, bboxes, torch.zeros(0, 4))
    assert torch.equal(new, scores) and torch.equal(ious, torch.zeros(1))
    new, _ = calibrate_scores(
        torch.zeros(0), torch.zeros(0, 4), torch.tensor([[0., 0., 4., 4.]]))
    assert new.shape == (0, )
    with pytest.raises(ValueError):
        calibrate_scores(scores, torch.zeros(2, 4), torch.zeros(0, 4))


def test_calibrate_with_mask_threshold():
    prob = torch.zeros(32, 32)
    prob[4:12, 4:12] = 0.9  # segmented lesion: box [4, 4, 12, 12]
    prob[20:30, 20:30] = 0.4  # below the threshold
    scores = torch.tensor([0.5, 0.5])
    bboxes = torch.tensor([[4., 4., 12., 12.], [20., 20., 30., 30.]])
    new, ious = calibrate_with_mask(scores, bboxes, prob, mask_thr=0.5)
    torch.testing.assert_close(ious, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(new, torch.tensor([1.0, 0.5]))
    new, ious = calibrate_with_mask(scores, bboxes, prob, mask_thr=0.3)
    torch.testing.assert_close(new, torch.tensor([1.0, 1.0]))
