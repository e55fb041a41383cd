# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch

from mmdet.registry import MODELS
from mmlesion.models.roi_heads.aggregated_fprn_head_3d import (
    LocalMagnification, diameter_alignment)


def test_diameter_alignment_fig3():
    """Fig. 3 (a): {60.56, 52.46, 57.56; 17.23} from "Resolution 16" has
    size 1.08 on every level, centres divided by each level's stride."""
    zyxd = torch.tensor([[60.56, 52.46, 57.56, 17.23]], dtype=torch.float64)
    out = diameter_alignment(zyxd, torch.tensor([2]), (4, 8, 16))
    assert out.shape == (1, 3, 4)
    assert torch.allclose(out[0, :, 3].round(decimals=2),
                          torch.full((3, ), 1.08, dtype=torch.float64))
    for lvl, stride in enumerate((4, 8, 16)):
        assert torch.allclose(out[0, lvl, :3], zyxd[0, :3] / stride)
    # Fig. 3 (b): a proposal from "Resolution 4" broadcasts its size upwards
    small = torch.tensor([[60.56, 52.46, 57.56, 5.0]], dtype=torch.float64)
    out = diameter_alignment(small, torch.tensor([0]), (4, 8, 16))
    assert torch.allclose(out[0, :, 3], torch.full((3, ), 1.25,
                                                   dtype=torch.float64))
    # without DA: the standard d / stride per level
    out = diameter_alignment(zyxd, torch.tensor([2]), (4, 8, 16), False)
    assert torch.allclose(out[0, :, 3], 17.23 / torch.tensor(
        [4., 8., 16.], dtype=torch.float64))


def test_local_magnification_shapes_and_sharing():
    # Table I: 3^3 -> 5^3 (stride-1 deconvs, the default)
    mag = LocalMagnification(8)
    assert mag(torch.randn(5, 8, 3, 3, 3)).shape == (5, 8, 5, 5, 5)
    assert mag.output_size(3) == 5 and mag.output_size(4) == 6
    # the named x4 variant: 3^3 -> 12^3
    mag = LocalMagnification(8, stride=2)
    assert mag(torch.randn(5, 8, 3, 3, 3)).shape == (5, 8, 12, 12, 12)
    assert mag.output_size(3) == 12
    with pytest.raises(ValueError, match='stride'):
        LocalMagnification(8, stride=3)
    head = MODELS.build(dict(type='AggregatedFPRNHead3D', in_channels=8,
                             fc_channels=16))
    # one magnifier for all levels; FC 3 levels x 8 ch x 2^3 -> 16 -> 1
    assert sum(isinstance(m, LocalMagnification)
               for m in head.modules()) == 1
    assert head.classifier[0].in_features == 3 * 8 * 8
    paper = MODELS.build(dict(type='AggregatedFPRNHead3D'))
    assert paper.classifier[0].in_features == 768
    assert paper.classifier[0].out_features == 256
    assert paper.classifier[2].out_features == 1


@pytest.mark.parametrize('da,mag', [(True, True), (False, True),
                                    (True, False), (False, False)])
def test_forward_variants(da, mag):
    torch.manual_seed(0)
    head = MODELS.build(dict(type='AggregatedFPRNHead3D', in_channels=4,
                             fc_channels=8, use_diameter_alignment=da,
                             use_magnify=mag))
    feats = [torch.randn(2, 4, 8, 8, 8, requires_grad=True),
             torch.randn(2, 4, 4, 4, 4), torch.randn(2, 4, 2, 2, 2)]
    rois = torch.tensor([[0, 4., 4, 4, 10, 10, 10],
                         [1, 10., 12, 8, 16, 18, 14],
                         [1, 0., 0, 0, 30, 30, 30]])
    logits = head(feats, rois, torch.tensor([0, 0, 2]))
    assert logits.shape == (3, )
    logits.sum().backward()
    assert feats[0].grad[0].abs().sum() > 0 and feats[0].grad[1].abs().sum(
    ) > 0
    assert head(feats, rois[:0], torch.tensor([], dtype=torch.long)).shape \
        == (0, )


@pytest.mark.parametrize('stride, size', [(1, 5), (2, 12)])
def test_magnified_crop_sees_only_its_window(stride, size):
    """With magnification the RoI is read from a crop_size^3 window around
    its centre: features far from it do not change the logit."""
    torch.manual_seed(0)
    head = MODELS.build(dict(type='AggregatedFPRNHead3D', in_channels=4,
                             fc_channels=8, magnify_stride=stride)).eval()
    shapes = []
    head.magnify.register_forward_hook(
        lambda m, i, out: shapes.append(tuple(out.shape[2:])))
    feats = [torch.randn(1, 4, 8, 8, 8), torch.randn(1, 4, 4, 4, 4),
             torch.randn(1, 4, 2, 2, 2)]
    rois = torch.tensor([[0, 2., 2, 2, 6, 6, 6]])  # level-0 centre (1,1,1)
    ref = head(feats, rois, torch.tensor([0]))
    assert shapes == [(size, ) * 3] * 3  # one magnified crop per level
    feats[0][..., 4:, 4:, 4:] += 100  # outside the 3^3 window on level 0
    assert torch.allclose(head(feats, rois, torch.tensor([0])), ref)
    feats[0][..., 1, 1, 1] += 100  # the centre voxel
    assert not torch.allclose(head(feats, rois, torch.tensor([0])), ref)
