# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import TASK_UTILS
import mmlesion.methods.aggregated3d  # noqa: F401  (the ZYXD coder, the assigner)
from mmlesion.structures import bbox3d_to_zyxd


def test_anchor1_per_level():
    gen = TASK_UTILS.build(
        dict(type='CubeAnchorGenerator3D', strides=[4, 8, 16],
             sizes=[[4, 6], [8, 12], [16, 24]]))
    assert gen.num_base_priors == [2, 2, 2]
    sizes = [(32, 32, 32), (16, 16, 16), (8, 8, 8)]  # a 128^3 crop
    anchors = gen.grid_priors(sizes)
    assert [a.shape[0] for a in anchors] == [32**3 * 2, 16**3 * 2, 8**3 * 2]
    for level, (stride, diam) in enumerate(zip([4, 8, 16], gen.sizes)):
        zyxd = bbox3d_to_zyxd(anchors[level])
        assert set(zyxd[:, 3].unique().tolist()) == set(diam)
        # centres on the cell centres, covering the crop
        assert zyxd[:, :3].min().item() == stride / 2
        assert zyxd[:, :3].max().item() == 128 - stride / 2
    # order (z, y, x, anchor): second cell along x, first anchor
    assert anchors[0][2].tolist() == [4., 0., 0., 8., 4., 4.]
    assert anchors[0][2 * 32].tolist() == [0., 4., 0., 4., 8., 4.]
    with pytest.raises(ValueError, match='strides'):
        TASK_UTILS.build(dict(type='CubeAnchorGenerator3D', strides=[4],
                              sizes=[[4], [8]]))


def test_coder_round_trip():
    coder = TASK_UTILS.build(
        dict(type='DeltaZYXDBBoxCoder', stds=(0.1, 0.1, 0.1, 0.2)))
    anchors = torch.tensor([[0., 0., 0., 4., 4., 4.],
                            [10., 20., 30., 22., 32., 42.]])
    gts = torch.tensor([[1., 0.5, -1., 6., 5.5, 4.],
                        [12., 18., 33., 20., 26., 41.]])
    deltas = coder.encode(anchors, gts)
    # hand case, first anchor: centre (2,2,2) d 4 -> gt centre x 3.5,
    # y 3, z 1.5, d 5 -> (dz, dy, dx, dd) = (-0.125, .25, .375, log 1.25)
    expected = torch.tensor([-0.125, 0.25, 0.375,
                             torch.log(torch.tensor(1.25))])
    expected = expected / torch.tensor([0.1, 0.1, 0.1, 0.2])
    assert torch.allclose(deltas[0], expected, atol=1e-6)
    assert torch.allclose(coder.decode(anchors, deltas), gts, atol=1e-5)
    with pytest.raises(ValueError, match='decode'):
        coder.decode(anchors, deltas[:, :3])


def test_max_iou_assigner_with_3d_overlaps():
    assigner = TASK_UTILS.build(
        dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.02,
             min_pos_iou=0., match_low_quality=True,
             iou_calculator=dict(type='BboxOverlaps3D')))
    priors = torch.tensor([[0., 0., 0., 4., 4., 4.],        # IoU 1 with gt0
                           [1., 0., 0., 5., 4., 4.],        # 48/80 = 0.6
                           [2., 2., 2., 6., 6., 6.],        # 8/120: ignored
                           [30., 30., 30., 34., 34., 34.],  # negative
                           [50., 50., 50., 56., 56., 56.]])  # low-quality
    gt = InstanceData(
        bboxes=torch.tensor([[0., 0., 0., 4., 4., 4.],
                             [52., 52., 52., 60., 60., 60.]]),
        labels=torch.tensor([0, 0]))
    result = assigner.assign(InstanceData(priors=priors), gt)
    # 5th prior: IoU 64/(216+512-64) < 0.5 but best for gt1 -> positive
    assert result.gt_inds.tolist() == [1, 1, -1, 0, 2]
