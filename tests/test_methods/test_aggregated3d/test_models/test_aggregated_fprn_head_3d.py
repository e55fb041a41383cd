# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch

from mmdet.registry import MODELS
from mmlesion.methods.aggregated3d.models.aggregated_fprn_head_3d import (
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


def _identity_magnifier(head, taps):
    """Deconvolutions reduced to the given taps (identity over channels,
    every other tap and the bias zero), bottlenecks to the identity (last
    conv zero: the residual branch adds nothing)."""
    from mmlesion.methods.aggregated3d.models.dense_block_3d import Bottleneck3D
    deconvs = [m for m in head.magnify.modules()
               if isinstance(m, torch.nn.ConvTranspose3d)]
    assert len(deconvs) == len(taps) == 2
    eye = torch.eye(deconvs[0].in_channels)
    with torch.no_grad():
        for conv, stage_taps in zip(deconvs, taps):
            conv.weight.zero_()
            conv.bias.zero_()
            for t in stage_taps:
                conv.weight[:, :, t, t, t] = eye
        for m in head.magnify.modules():
            if isinstance(m, Bottleneck3D):
                m.conv2.conv.weight.zero_()


@pytest.mark.parametrize('taps', [((0, ), (1, )), ((1, ), (0, ))])
def test_stride1_magnified_path_reads_the_rois_own_features(taps):
    """Sec. III-D, Table I's 5^3: a stride-1 2x2x2 deconvolution maps voxel
    centre c to c + 0.5 (no zoom), so with single-tap deconvolutions (taps
    0 then 1: an exact one-voxel shift) and identity bottlenecks the
    magnified path returns the plain path's RoI features for every RoI
    inside its window (RoIs read 5/3 too large would not)."""
    torch.manual_seed(0)
    head = MODELS.build(dict(type='AggregatedFPRNHead3D', in_channels=4,
                             fc_channels=8, magnify_stride=1)).eval()
    _identity_magnifier(head, taps)
    feats = [torch.randn(2, 4, 16, 16, 16), torch.randn(2, 4, 8, 8, 8),
             torch.randn(2, 4, 4, 4, 4)]
    gen = torch.Generator().manual_seed(1)
    num, strides = 24, torch.tensor([4., 8., 16.])
    ref = torch.randint(0, 3, (num, ), generator=gen)
    # DA size d / stride_ref <= 0.9 feature voxels on every level: inside
    # the 3^3 window around the nearest voxel (the RoI centre is at most
    # half a voxel from the window centre)
    d = strides[ref] * (0.3 + 0.6 * torch.rand(num, generator=gen))
    ctr = 8 + 48 * torch.rand(num, 3, generator=gen)
    rois = torch.cat([torch.randint(0, 2, (num, 1), generator=gen).float(),
                      ctr - d[:, None] / 2, ctr + d[:, None] / 2], 1)
    from mmlesion.structures import bbox3d_to_zyxd
    aligned = diameter_alignment(bbox3d_to_zyxd(rois[:, 1:]), ref,
                                 head.strides)
    batch = rois[:, 0].long()
    for lvl, feat in enumerate(feats):
        mag = head._level_features(feat, aligned[:, lvl], lvl, batch)
        head.use_magnify = False
        plain = head._level_features(feat, aligned[:, lvl], lvl, batch)
        head.use_magnify = True
        assert plain.abs().sum() > 0
        assert torch.allclose(mag, plain, atol=1e-5), lvl
    logits = head(feats, rois, ref)
    head.use_magnify = False
    assert torch.allclose(logits, head(feats, rois, ref), atol=1e-5)


def test_stride2_magnified_path_reads_the_rois_own_features():
    """The x4 variant: a stride-2 2x2x2 deconvolution maps voxel centre c
    to 2c + 0.5 (box coordinate x -> 2x with aligned RoI Align), a pure
    zoom. Each output voxel of a stride-2 kernel-2 deconvolution has one
    input voxel; with every tap the identity the 12^3 crop is the window
    upsampled x4 (nearest), whose RoI Align samples at the window's voxel
    centres equal the plain path's."""
    torch.manual_seed(0)
    head = MODELS.build(dict(type='AggregatedFPRNHead3D', in_channels=4,
                             fc_channels=8, magnify_stride=2,
                             sampling_ratio=1)).eval()
    all_taps = (0, 1)
    from mmlesion.methods.aggregated3d.models.dense_block_3d import Bottleneck3D
    with torch.no_grad():
        for m in head.magnify.modules():
            if isinstance(m, torch.nn.ConvTranspose3d):
                m.weight.zero_()
                m.bias.zero_()
                for i in all_taps:
                    for j in all_taps:
                        for k in all_taps:
                            m.weight[:, :, i, j, k] = torch.eye(4)
            elif isinstance(m, Bottleneck3D):
                m.conv2.conv.weight.zero_()
    feat = torch.randn(1, 4, 10, 10, 10)
    # boxes [c, c + 2) per axis: 2^3 bins, one sample each, at the voxel
    # centres c and c + 1 (inside the 3^3 window on any rounding)
    corner_xyz = torch.tensor([[2., 3., 4.], [5., 5., 2.], [6., 1., 3.]])
    ctr_zyx = (corner_xyz + 1).flip(1)
    rois_f = torch.cat([ctr_zyx, torch.full((3, 1), 2.)], 1)  # (z, y, x, d)
    batch = torch.zeros(3, dtype=torch.long)
    mag = head._level_features(feat, rois_f, 0, batch)
    head.use_magnify = False
    plain = head._level_features(feat, rois_f, 0, batch)
    assert torch.allclose(mag, plain, atol=1e-5)


@pytest.mark.parametrize('stride', [1, 2])
def test_map_coords_follows_conv_transpose(stride):
    """map_coords is ConvTranspose3d's geometry: an impulse at voxel c,
    deconvolved with uniform taps, has its centre of mass at the mapped
    voxel-centre index (aligned=False: box coordinate = index)."""
    mag = LocalMagnification(1, num_bottlenecks=0, stride=stride)
    with torch.no_grad():
        for m in mag.modules():
            if isinstance(m, torch.nn.ConvTranspose3d):
                m.weight.fill_(1.)
                m.bias.zero_()
    for c in range(3):
        x = torch.zeros(1, 1, 3, 3, 3)
        x[..., c, c, c] = 1
        out = mag(x)[0, 0].sum(dim=(0, 1))  # along W
        com = (out * torch.arange(len(out))).sum() / out.sum()
        want = mag.map_coords(torch.tensor(float(c)), aligned=False)
        assert torch.allclose(com, want), (c, com, want)
        # aligned box coordinates: index + 0.5
        assert torch.allclose(
            mag.map_coords(torch.tensor(c + 0.5)), want + 0.5)
    # stride 1 shifts by one voxel over the two stages, no scale; stride 2
    # zooms aligned box coordinates by 4 (the window [0, 3) -> [0, 12))
    x = torch.tensor([0., 1.5, 3.])
    want = x + 1 if stride == 1 else 4 * x
    assert torch.allclose(mag.map_coords(x), want)
