# Copyright (c) mmlesion contributors. All rights reserved.
"""Tests of the after-run mechanism checks of the studies: the TruncatedRPN
mask probe and the attention-gate probe, on hand-set weights whose answer
is known."""
import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
import mmlesion.methods.elixirnet  # noqa: F401  (registers TruncatedRPNHead)
from projects.retinanet_lesion.gate_probe import AttentionGateProbe, boxes_to_mask
from projects.study_demo.mechanism_probe import annotations_before_resize
from projects.elixirnet.trpn_probe import TRPNTruncationProbe
from mmlesion.methods.retinanet_lesion.models.attention_gate import AttentionGate

IMG = 64
STRIDES = (4, 8)
REGION = (16, 40)  # pixels where the location map is high


def _trpn_head():
    cfg = dict(
        type='TruncatedRPNHead',
        in_channels=4,
        feat_channels=8,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[2, 3, 4, 6, 12],
            ratios=[0.5, 1.0, 2.0],
            strides=list(STRIDES)),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0] * 4,
            target_stds=[1.0] * 4),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0))
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = MODELS.build(cfg)
    head.init_weights()
    # p = sigmoid(10 * channel 0 - 5): high where channel 0 is 1
    with torch.no_grad():
        head.conv_loc.weight.zero_()
        head.conv_loc.weight[0, 0] = 10.
        head.conv_loc.bias.fill_(-5.)
    return head.eval()


def _feats(batch: int = 1):
    feats = []
    for s in STRIDES:
        f = torch.zeros(batch, 4, IMG // s, IMG // s)
        a, b = REGION[0] // s, REGION[1] // s
        f[:, 0, a:b, a:b] = 1.
        feats.append(f)
    return feats


def test_trpn_probe_lesion_inside_kept_region():
    probe = TRPNTruncationProbe(_trpn_head(), iou_thr=0.7)
    # a 24 px box centred on an anchor centre (28, 28) inside the region
    probe.update(_feats(), [torch.tensor([[16., 16., 40., 40.]])])
    out = probe.summary()
    region = sum(((REGION[1] - REGION[0]) // s)**2 for s in STRIDES)
    total = sum((IMG // s)**2 for s in STRIDES)
    assert out['keep_ratio'] == pytest.approx(region / total)
    assert out['lesion_locations'] > 0
    assert out['lesion_loc_kept'] == 1.
    assert out['gt_covered_all'] == 1. and out['gt_covered_kept'] == 1.
    bg = total - out['lesion_locations']
    assert out['background_removed'] == pytest.approx(
        (bg - (region - out['lesion_locations'])) / bg)
    hi, lo = torch.sigmoid(torch.tensor([5., -5.])).tolist()
    assert out['mean_p_lesion'] == pytest.approx(hi)
    high_bg = region - out['lesion_locations']  # kept, but no lesion
    assert out['mean_p_background'] == pytest.approx(
        (high_bg * hi + (bg - high_bg) * lo) / bg)


def test_trpn_probe_lesion_outside_is_lost():
    probe = TRPNTruncationProbe(_trpn_head(), iou_thr=0.7)
    # two images: one lesion far from the high region, one image without
    probe.update(_feats(2), [torch.tensor([[44., 44., 60., 60.]]),
                             torch.zeros(0, 4)])
    out = probe.summary()
    assert out['gts'] == 1 and out['gt_covered_all'] == 1.
    assert out['lesion_loc_kept'] == 0. and out['gt_covered_kept'] == 0.
    assert out['mean_p_lesion'] < 0.01
    with pytest.raises(TypeError, match='TruncatedRPNHead'):
        TRPNTruncationProbe(nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match='iou_thr'):
        TRPNTruncationProbe(_trpn_head(), iou_thr=0.)


class _Gated(nn.Module):
    """alpha = sigmoid(relu(10 x) - 5): ~1 where x = 1, ~0 where x = 0."""

    def __init__(self):
        super().__init__()
        self.gate = AttentionGate(1, 1, 1)
        with torch.no_grad():
            self.gate.theta_x.conv.weight.fill_(10.)
            self.gate.phi_g.conv.weight.zero_()
            self.gate.phi_g.conv.bias.zero_()
            self.gate.psi.conv.weight.fill_(1.)
            self.gate.psi.conv.bias.fill_(-5.)

    def forward(self, x):
        return self.gate(x, torch.zeros_like(x))[0]


def _gate_summary(box):
    model = _Gated()
    x = torch.zeros(1, 1, 16, 16)
    x[..., 4:8, 4:8] = 1.  # map at stride 2 of a 32 px input: box 8-16 px
    with AttentionGateProbe(model) as probe:
        model(x)
    probe.update([torch.tensor([box])], (32, 32))
    model(x)  # outside the `with`: no hook any more
    with pytest.raises(RuntimeError, match='no attention map'):
        probe.update([torch.tensor([box])], (32, 32))
    return probe.summary()['gate']


def test_gate_probe_on_and_off_the_lesion():
    on = _gate_summary([8., 8., 16., 16.])
    assert on['auc'] == pytest.approx(1.) and on['pixels_in'] == 16
    assert on['mean_in'] > 0.99 and on['mean_out'] < 0.01
    off = _gate_summary([20., 20., 28., 28.])
    # inside: 16 low pixels; outside: 16 high, 224 low (ties count half)
    assert off['auc'] == pytest.approx(0.5 * 224 / 240)
    assert off['mean_in'] < 0.01
    with pytest.raises(ValueError, match='no AttentionGate'):
        AttentionGateProbe(nn.Conv2d(1, 1, 1))


def test_boxes_to_mask_and_pipeline_order():
    mask = boxes_to_mask(torch.tensor([[0., 0., 8., 8.]]), (4, 4), (16, 16))
    assert mask.sum() == 4 and mask[:2, :2].all()
    resize = dict(type='Resize', scale=(256, 256))
    ann = dict(type='LoadAnnotations', with_bbox=True)
    assert annotations_before_resize([ann, resize])
    assert not annotations_before_resize([resize, ann])
    with pytest.raises(ValueError, match='LoadAnnotations'):
        annotations_before_resize([resize])


def test_lesion_map_probe_threshold():
    from projects.retinanet_lesion.seg_probe import LesionMapProbe
    probe = LesionMapProbe(mask_thr=0.5)
    low = torch.full((16, 16), 0.1)
    high = low.clone()
    high[4:8, 4:8] = 0.9  # a component inside the first box only
    boxes = torch.tensor([[4., 4., 8., 8.], [10., 10., 14., 14.]])
    probe.update([low, high], [boxes, boxes])
    out = probe.summary()
    assert out['max_prob'] == pytest.approx(0.9)
    assert out['images_above_thr'] == 0.5  # the low map cannot calibrate
    assert out['boxes_above_thr'] == 0.25 and out['boxes'] == 4
    assert out['mean_in'] > out['mean_out'] == pytest.approx(0.1)
    with pytest.raises(ValueError, match='mask_thr'):
        LesionMapProbe(1.)


class _RTMHead(nn.Module):
    """The parts of an RTMBBoxHead the probe reads: 2 region channels, 1
    RTM channel, 2 lesion types + background."""

    def __init__(self, rtm_weight: float):
        super().__init__()
        self.out_channels = 2
        self.rtm = nn.Identity()
        self.fc_cls = nn.Linear(3, 3)
        with torch.no_grad():
            self.fc_cls.weight.copy_(torch.tensor(
                [[1., 0., rtm_weight], [0., 1., -rtm_weight], [0., 0., 0.]]))
            self.fc_cls.bias.zero_()


def test_rtm_probe_ablates_the_rtm_feature():
    from projects.elixirnet.rtm_probe import RTMProbe
    # RoI 0: type 0 without f_E, type 1 with it; RoI 1: type 0 either way
    feats = torch.tensor([[1., 0.5, -1.], [3., 0., 0.]])
    head = _RTMHead(rtm_weight=1.)
    probe = RTMProbe(head, score_thr=0.)
    with probe:
        head.fc_cls(feats)
    head.fc_cls(feats)  # outside: not captured
    out = probe.summary()
    assert out['rois'] == 2 and out['label_changed'] == 0.5
    assert out['confident_label_changed'] == 0.5
    assert out['weight_norm_ratio'] == pytest.approx(2 ** 0.5 / 2 ** 0.5)
    assert out['feature_norm_ratio'] == pytest.approx(
        (1 / (1.25 ** 0.5) + 0.) / 2)
    # the second RoI does not move: the largest change comes from the first
    p = torch.tensor([[1., 0.5, 0.], [0., 1.5, 0.]]).softmax(-1)
    assert out['mean_abs_prob_change'] == pytest.approx(
        float((p[0] - p[1]).abs().max()) / 2, rel=1e-5)
    # an RTM the classifier does not read changes nothing
    head = _RTMHead(rtm_weight=0.)
    probe = RTMProbe(head, score_thr=0.9)
    with probe:
        head.fc_cls(feats)
    out = probe.summary()
    assert out['label_changed'] == 0. and out['weight_norm_ratio'] == 0.
    assert out['mean_abs_prob_change'] == 0.
    with pytest.raises(ValueError, match='no RoI'):
        RTMProbe(head).summary()
    with pytest.raises(ValueError, match='no Relation Transfer'):
        RTMProbe(nn.Linear(2, 2))
