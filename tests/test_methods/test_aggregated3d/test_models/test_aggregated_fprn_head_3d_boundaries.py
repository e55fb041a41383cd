# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundary tests of the aggregated false positive reduction branch (FPRN)
of the 3D Aggregated Faster R-CNN (Sec. III-C, III-D, Fig. 3, Table I):
its settings, Diameter Alignment, Local Magnification's geometry, the
sampling of training RoIs and the loss."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmlesion.methods.aggregated3d.models.dense_block_3d import Bottleneck3D
from mmlesion.methods.aggregated3d.models.aggregated_fprn_head_3d import (
    LocalMagnification, diameter_alignment, rois_from_instances)
from tests.helpers.aggregated3d import tiny_aggregated3d_cfg


def _head(**kwargs):
    cfg = dict(type='AggregatedFPRNHead3D', in_channels=4, fc_channels=8)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _feats(batch=2, channels=4):
    return [torch.randn(batch, channels, 8, 8, 8),
            torch.randn(batch, channels, 4, 4, 4),
            torch.randn(batch, channels, 2, 2, 2)]


def test_default_settings_table1():
    """Table I / Sec. III-C/D defaults: strides 4, 8, 16, RoI Align to 2^3
    with 2 samples per bin and axis, a 3^3 window magnified by stride-1
    deconvolutions, DA and magnification on, sigmoid cross-entropy."""
    head = MODELS.build(dict(type='AggregatedFPRNHead3D'))
    assert head.strides == [4, 8, 16]
    assert head.roi_size == 2 and head.sampling_ratio == 2
    assert head.crop_size == 3
    assert head.magnify.stride == 1 and head.magnify.num_stages == 2
    assert head.use_diameter_alignment is True and head.use_magnify is True
    assert head.loss_cls.use_sigmoid and head.loss_cls.loss_weight == 1.0
    assert head.train_cfg is None and not hasattr(head, 'assigner')
    assert isinstance(head.classifier[1], nn.ReLU)
    assert head.classifier[1].inplace is True
    bottlenecks = [m for m in head.magnify.modules()
                   if isinstance(m, Bottleneck3D)]
    assert len(bottlenecks) == 4
    norms = [m for m in head.magnify.modules()
             if isinstance(m, nn.BatchNorm3d)]
    assert norms and norms[0].num_features == 32
    # the options are kept as given
    head = _head(strides=(2, 4, 8), roi_size=3, sampling_ratio=1,
                 crop_size=4, magnify_stride=2,
                 init_cfg=dict(type='Normal', std=0.01))
    assert head.strides == [2, 4, 8] and head.roi_size == 3
    assert head.sampling_ratio == 1 and head.crop_size == 4
    assert head.magnify.stride == 2
    assert head.init_cfg == dict(type='Normal', std=0.01)
    assert head.classifier[0].in_features == 3 * 4 * 27
    # another norm layer reaches every bottleneck of the magnifier
    head = _head(norm_cfg=dict(type='GN', num_groups=2))
    gn = [m for m in head.magnify.modules() if isinstance(m, nn.GroupNorm)]
    bn = [m for m in head.magnify.modules() if isinstance(m, nn.BatchNorm3d)]
    assert len(gn) == 8 and not bn
    # without magnification: no magnifier at all
    head = _head(use_magnify=False)
    assert head.magnify is None
    assert not any(isinstance(m, LocalMagnification) for m in head.modules())


def test_crop_and_roi_size_at_least_one():
    """A window or RoI Align output of one voxel is allowed, zero is not,
    each checked on its own."""
    with pytest.raises(ValueError, match='^crop_size and roi_size must be >= 1$'):
        _head(crop_size=0)
    with pytest.raises(ValueError, match='^crop_size and roi_size must be >= 1$'):
        _head(roi_size=0)
    head = _head(crop_size=1, roi_size=1)
    assert head.crop_size == 1 and head.roi_size == 1
    rois = torch.tensor([[0, 4., 4, 4, 10, 10, 10]])
    assert head(_feats(1), rois, torch.tensor([0])).shape == (1, )


def test_forward_checks_levels_and_uses_da_flag():
    """One feature map per stride; the DA flag (Table III ablation) is
    what the forward pass applies."""
    torch.manual_seed(0)
    head = _head().eval()
    feats = _feats()
    with pytest.raises(ValueError, match='2 feature maps for 3 FPRN levels'):
        head(feats[:2], torch.zeros(1, 7), torch.zeros(1))
    rois = torch.tensor([[0, 4., 4, 4, 12, 12, 12],
                         [1, 20., 12, 8, 26, 18, 14]])
    ref = torch.tensor([2, 0])
    with torch.no_grad():
        on = head(feats, rois, ref)
        head.use_diameter_alignment = False
        off = head(feats, rois, ref)
    assert not torch.allclose(on, off)
    with torch.no_grad():
        head.use_magnify = False
        plain_off = head(feats, rois, ref)
        head.use_diameter_alignment = True
        plain_on = head(feats, rois, ref)
    assert not torch.allclose(plain_on, plain_off)


def test_diameter_alignment_per_proposal():
    """Fig. 3: each proposal broadcasts its own reference level's size;
    without DA the size is d / stride_l per level."""
    zyxd = torch.tensor([[8., 16., 32., 8.], [40., 24., 16., 32.],
                         [4., 4., 4., 2.]])
    out = diameter_alignment(zyxd, torch.tensor([0, 2, 1]), (4, 8, 16))
    assert out.shape == (3, 3, 4)
    assert out[..., 3].tolist() == [[2., 2., 2.], [2., 2., 2.],
                                    [0.25, 0.25, 0.25]]
    assert out[1, :, :3].tolist() == [[10., 6., 4.], [5., 3., 2.],
                                      [2.5, 1.5, 1.]]
    out = diameter_alignment(zyxd, torch.tensor([0, 2, 1]), (4, 8, 16),
                             enabled=False)
    assert out[..., 3].tolist() == [[2., 1., 0.5], [8., 4., 2.],
                                    [0.5, 0.25, 0.125]]
    assert out[2, :, :3].tolist() == [[1., 1., 1.], [0.5, 0.5, 0.5],
                                      [0.25, 0.25, 0.25]]


class _PaddedMagnification(LocalMagnification):
    padding = 1


def test_magnification_geometry_with_padding():
    """Table I's deconvolutions by ConvTranspose3d's definition: output edge
    (k - 1) * s + t - 2p, voxel centre c -> s * c + (t - 1) / 2 - p (shown
    with a padded variant, p = 1)."""
    mag = _PaddedMagnification(1, num_bottlenecks=0, stride=2)
    convs = [m for m in mag.modules() if isinstance(m, nn.ConvTranspose3d)]
    assert [c.padding for c in convs] == [(1, 1, 1)] * 2
    with torch.no_grad():
        for c in convs:
            c.weight.fill_(1.)
            c.bias.zero_()
    x = torch.zeros(1, 1, 3, 3, 3)
    x[..., 1, 1, 1] = 1
    out = mag(x)
    assert out.shape[2:] == (6, 6, 6) and mag.output_size(3) == 6
    line = out[0, 0].sum(dim=(0, 1))
    com = (line * torch.arange(len(line))).sum() / line.sum()
    want = mag.map_coords(torch.tensor(1.), aligned=False)
    assert torch.allclose(com, torch.tensor(2.5)) and torch.allclose(
        want, com)
    assert torch.allclose(mag.map_coords(torch.tensor(1.5)), want + 0.5)
    # the default magnifier: 2 stages of a deconv and 2 bottlenecks
    mag = LocalMagnification(4)
    kinds = [type(m).__name__ for m in mag.layers]
    assert kinds == ['ConvTranspose3d', 'Bottleneck3D', 'Bottleneck3D'] * 2
    gn = LocalMagnification(4, norm_cfg=dict(type='GN', num_groups=2))
    assert any(isinstance(m, nn.GroupNorm) for m in gn.modules())
    assert not any(isinstance(m, nn.BatchNorm3d) for m in gn.modules())


def test_stride2_magnified_roi_reads_its_own_voxel():
    """Sec. III-D x4 variant: with identity taps the 12^3 crop is the window
    upsampled x4 (nearest), and the RoI Align of a one-voxel RoI [c, c+1)
    reads, with the aligned box mapping x -> 4x, only voxel c (a sample
    mapped without the half-voxel offset would reach the next voxel)."""
    torch.manual_seed(0)
    head = _head(magnify_stride=2).eval()
    with torch.no_grad():
        for m in head.magnify.modules():
            if isinstance(m, nn.ConvTranspose3d):
                m.weight.zero_()
                m.bias.zero_()
                for i in (0, 1):
                    for j in (0, 1):
                        for k in (0, 1):
                            m.weight[:, :, i, j, k] = torch.eye(4)
            elif isinstance(m, Bottleneck3D):
                m.conv2.conv.weight.zero_()
    feat = torch.randn(2, 4, 8, 8, 8)
    corners_zyx = torch.tensor([[2., 3., 4.], [5., 1., 6.]])
    rois_f = torch.cat([corners_zyx + 0.5, torch.ones(2, 1)], 1)
    batch = torch.tensor([1, 0])
    with torch.no_grad():
        mag = head._level_features(feat, rois_f, 0, batch)
    for n, (z, y, x) in enumerate(corners_zyx.long().tolist()):
        voxel = feat[batch[n], :, z, y, x]
        assert torch.allclose(mag[n], voxel[:, None, None, None].expand(
            -1, 2, 2, 2), atol=1e-5), n


def test_magnified_window_crop_exact_voxels():
    """Sec. III-D: the fixed window holds the level's voxel values exactly
    (RoI Align of the window at one sample per voxel); the RoIs of both
    images read their own image."""
    torch.manual_seed(0)
    head = _head(crop_size=3).eval()
    seen = []
    head.magnify.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    feat = torch.randn(2, 4, 8, 8, 8)
    # centre voxel (z, y, x) = (4, 2, 5): window voxels 3..5, 1..3, 4..6
    rois_f = torch.tensor([[4.5, 2.5, 5.5, 1.], [4.5, 2.5, 5.5, 1.]])
    with torch.no_grad():
        head._level_features(feat, rois_f, 0, torch.tensor([1, 0]))
    crops = seen[0]
    assert torch.allclose(crops[0], feat[1, :, 3:6, 1:4, 4:7], atol=1e-6)
    assert torch.allclose(crops[1], feat[0, :, 3:6, 1:4, 4:7], atol=1e-6)


def test_stride1_magnified_path_with_one_sample_per_bin():
    """Sec. III-D, Table I's 5^3: with single-tap deconvolutions (an exact
    one-voxel shift) and identity bottlenecks the magnified path reads the
    plain path's RoI features, here with ``sampling_ratio=1`` on both."""
    torch.manual_seed(0)
    head = _head(sampling_ratio=1).eval()
    deconvs = [m for m in head.magnify.modules()
               if isinstance(m, nn.ConvTranspose3d)]
    with torch.no_grad():
        for conv, tap in zip(deconvs, (0, 1)):
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[:, :, tap, tap, tap] = torch.eye(4)
        for m in head.magnify.modules():
            if isinstance(m, Bottleneck3D):
                m.conv2.conv.weight.zero_()
    feat = torch.randn(1, 4, 8, 8, 8)
    rois_f = torch.tensor([[3.3, 4.6, 2.8, 0.8], [5.1, 2.2, 4.4, 0.6]])
    batch = torch.zeros(2, dtype=torch.long)
    with torch.no_grad():
        mag = head._level_features(feat, rois_f, 0, batch)
        head.use_magnify = False
        plain = head._level_features(feat, rois_f, 0, batch)
        head.sampling_ratio = 2
        plain2 = head._level_features(feat, rois_f, 0, batch)
    assert torch.allclose(mag, plain, atol=1e-5)
    assert not torch.allclose(mag, plain2, atol=1e-3)


def test_plain_path_roi_align_settings():
    """Without magnification: RoI Align (aligned, 1.0 scale) of the
    DA-aligned RoI with ``sampling_ratio`` samples per bin."""
    head = _head(use_magnify=False, sampling_ratio=1)
    feat = torch.arange(8.).view(1, 1, 2, 2, 2).expand(1, 4, 2, 2, 2) \
        .repeat(2, 1, 1, 1, 1)
    feat[1] *= -1
    # the box [0, 2)^3: one sample per bin at the voxel centres
    rois_f = torch.tensor([[1., 1., 1., 2.]])
    out = head._level_features(feat, rois_f, 0, torch.tensor([1]))
    assert torch.allclose(out[0, 0], -torch.arange(8.).view(2, 2, 2))
    head.sampling_ratio = 2
    out2 = head._level_features(feat, rois_f, 0, torch.tensor([1]))
    assert not torch.allclose(out2, out)


def _fprn_train_head(sampler=None):
    cfg = tiny_aggregated3d_cfg()
    train_cfg = dict(cfg.train_cfg.fprn)
    if sampler is not None:
        train_cfg['sampler'] = sampler
    return _head(train_cfg=train_cfg)


def _box(x1, x2, rest=(0., 0., 8., 8.)):
    return torch.tensor([x1, rest[0], rest[1], x2, rest[2], rest[3]])


def test_sample_labels_levels_and_gt_first():
    """Sec. III-C training RoIs: proposals plus the ground truth (first,
    at its nearest level), IoU >= 0.3 positive, < 0.1 negative, in between
    not sampled; positives then negatives; labels 1 and 0."""
    head = _fprn_train_head()
    assert head.train_cfg['sampler']['num'] == 32
    assert type(head.assigner).__name__ == 'IgnoreRegionMaxIoUAssigner'
    assert type(head.sampler).__name__ == 'RandomSampler'
    gt = _box(0., 8.)
    props = InstanceData(
        bboxes=torch.stack([_box(0., 8.), _box(6., 16.), _box(40., 48.),
                            _box(2., 20.)]),
        level_ids=torch.tensor([2, 1, 0, 1]))
    # IoU with gt: 1, 0.125 (ignored), 0, 6 / 20 = 0.3 (positive)
    empty_props = InstanceData(bboxes=torch.stack([_box(0., 8.)]),
                               level_ids=torch.tensor([1]))
    out = head.sample([props, empty_props],
                      [InstanceData(bboxes=gt[None]),
                       InstanceData(bboxes=torch.zeros(0, 6))],
                      lambda b: torch.full((len(b), ), 7))
    assert len(out) == 2
    first = out[0]
    assert torch.equal(first.bboxes, torch.stack([gt, _box(0., 8.),
                                                  _box(2., 20.),
                                                  _box(40., 48.)]))
    assert first.level_ids.tolist() == [7, 2, 1, 0]
    assert first.labels.tolist() == [1, 1, 1, 0]
    assert first.labels.dtype == torch.long
    # no lesion: every proposal a negative, no ground truth added
    assert out[1].labels.tolist() == [0]
    assert out[1].level_ids.tolist() == [1]


def test_sample_ignored_regions_and_samplers_without_gt():
    """Proposals on ignored boxes (LUNA16's excluded findings) are not
    negatives; a sampler that adds no ground truth keeps the proposals'
    own levels."""
    head = _fprn_train_head()
    props = InstanceData(
        bboxes=torch.stack([_box(40., 48.), _box(20., 28.)]),
        level_ids=torch.tensor([0, 2]))
    gt = InstanceData(bboxes=_box(0., 8.)[None])
    out = head.sample([props], [gt], lambda b: torch.full((len(b), ), 5),
                      [InstanceData(bboxes=_box(40., 48.)[None])])[0]
    assert out.labels.tolist() == [1, 0]
    assert out.level_ids.tolist() == [5, 2]
    assert torch.equal(out.bboxes[1], _box(20., 28.))
    head = _fprn_train_head(sampler=dict(type='PseudoSampler'))
    out = head.sample([props], [gt], lambda b: torch.full((len(b), ), 5))[0]
    assert out.labels.tolist() == [0, 0]
    assert out.level_ids.tolist() == [0, 2]


def test_loss_is_mean_sigmoid_cross_entropy():
    """Sec. III-C: the FPRN loss is sigmoid cross-entropy averaged over the
    sampled RoIs; ``fprn_acc`` counts a logit above 0 as a lesion."""
    torch.manual_seed(0)
    head = _head().eval()
    feats = _feats()
    samples = [
        InstanceData(bboxes=torch.tensor([[4., 4, 4, 10, 10, 10],
                                          [1., 2, 3, 9, 8, 7]]),
                     level_ids=torch.tensor([0, 1]),
                     labels=torch.tensor([1, 0])),
        InstanceData(bboxes=torch.tensor([[10., 12, 8, 16, 18, 14]]),
                     level_ids=torch.tensor([2]),
                     labels=torch.tensor([1]))
    ]
    rois = torch.tensor([[0, 4., 4, 4, 10, 10, 10], [0, 1., 2, 3, 9, 8, 7],
                         [1, 10., 12, 8, 16, 18, 14]])
    assert torch.equal(rois_from_instances(samples), rois)
    logits = head(feats, rois, torch.tensor([0, 1, 2]))
    losses = head.loss(feats, samples)
    assert set(losses) == {'loss_fprn_cls', 'fprn_acc'}
    want = F.binary_cross_entropy_with_logits(logits,
                                              torch.tensor([1., 0., 1.]))
    assert torch.allclose(losses['loss_fprn_cls'], want)
    acc = ((logits > 0).long() == torch.tensor([1, 0, 1])).float().mean()
    assert torch.allclose(losses['fprn_acc'], acc)
    # one RoI: averaged over 1
    one = head.loss([f[1:] for f in feats], samples[1:])
    want = F.binary_cross_entropy_with_logits(logits[2:],
                                              torch.tensor([1.]))
    assert torch.allclose(one['loss_fprn_cls'], want)
    # a logit of exactly 0 is not a lesion
    with torch.no_grad():
        head.classifier[2].weight.zero_()
        head.classifier[2].bias.zero_()
    losses = head.loss(feats, samples)
    assert torch.allclose(losses['fprn_acc'], torch.tensor(1 / 3))
    assert torch.allclose(losses['loss_fprn_cls'],
                          torch.log(torch.tensor(2.)))
    # a logit of 0.5 is a lesion
    with torch.no_grad():
        head.classifier[2].bias.fill_(0.5)
    losses = head.loss(feats, samples)
    assert torch.allclose(losses['fprn_acc'], torch.tensor(2 / 3))


@MODELS.register_module(force=True)
class _AvgFactorProbeLoss(torch.nn.Module):
    """Records the ``avg_factor`` it is given."""

    def forward(self, pred, target, avg_factor=None, **kwargs):
        self.avg_factor = avg_factor
        return pred.sum()


def test_loss_averages_over_the_sampled_rois():
    """The loss is normalised by the number of sampled RoIs (any loss
    config receives it as ``avg_factor``)."""
    head = _head(loss_cls=dict(type='_AvgFactorProbeLoss'))
    samples = [InstanceData(bboxes=torch.tensor([[4., 4, 4, 10, 10, 10],
                                                 [1., 2, 3, 9, 8, 7]]),
                            level_ids=torch.tensor([0, 1]),
                            labels=torch.tensor([1, 0]))]
    head.loss(_feats(1), samples)
    assert head.loss_cls.avg_factor == 2


def test_loss_without_rois_is_zero_with_a_graph():
    """No sampled RoI: a zero loss connected to every parameter."""
    head = _head()
    samples = [InstanceData(bboxes=torch.zeros(0, 6),
                            level_ids=torch.zeros(0, dtype=torch.long),
                            labels=torch.zeros(0, dtype=torch.long))]
    losses = head.loss(_feats(1), samples)
    assert set(losses) == {'loss_fprn_cls'}
    assert losses['loss_fprn_cls'].item() == 0
    losses['loss_fprn_cls'].backward()
    assert all(p.grad is not None for p in head.parameters())


def test_rois_from_instances():
    """Per-image boxes stacked as ``[batch_idx, x1, y1, z1, x2, y2, z2]``."""
    assert rois_from_instances([]).shape == (0, 7)
    rois = rois_from_instances([
        InstanceData(bboxes=torch.zeros(0, 6)),
        InstanceData(bboxes=torch.ones(2, 6)),
        InstanceData(bboxes=torch.full((1, 6), 3.))])
    assert rois.tolist() == [[1.] * 7, [1.] * 7, [2.] + [3.] * 6]


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_magnified_rois_on_the_device_of_the_features():
    """The magnified crops' RoIs (Sec. III-D) are indexed on the device of
    the features."""
    head = _head().cuda().eval()
    rois = torch.tensor([[0, 4., 4, 4, 10, 10, 10],
                         [1, 10., 12, 8, 16, 18, 14]]).cuda()
    feats = [f.cuda() for f in _feats()]
    logits = head(feats, rois, torch.tensor([0, 1]).cuda())
    assert logits.is_cuda and logits.shape == (2, )
