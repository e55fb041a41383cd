# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundary tests of the 3D RPN of the 3D Aggregated Faster R-CNN (Sec.
III-B, Sec. IV-B): the per-level heads, the IoU+ 0.5 / IoU- 0.02 labelling,
the losses, the proposal settings and the reference level of a box."""
import math

import pytest
import torch
import torch.nn as nn
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmlesion.methods.aggregated3d.models.aggregated_rpn_head_3d import nms_3d_first
from mmlesion.methods.aggregated3d.models.dense_block_3d import Bottleneck3D
from mmlesion.structures import nms_3d
from tests.helpers.aggregated3d import tiny_aggregated3d_cfg


def _head(**kwargs):
    cfg = tiny_aggregated3d_cfg()
    head_cfg = dict(cfg.rpn_head)
    head_cfg.update(train_cfg=cfg.train_cfg.rpn, test_cfg=cfg.test_cfg.rpn)
    head_cfg.update(kwargs)
    head = MODELS.build(head_cfg)
    head.init_weights()
    return head


def _outputs(batch=1, sizes=((8, 8, 8), (4, 4, 4), (2, 2, 2)), num=2,
             fill=0.):
    cls = [torch.full((batch, *s, num), fill) for s in sizes]
    reg = [torch.zeros(batch, *s, num, 4) for s in sizes]
    return cls, reg


def _cube(ctr, d):
    ctr = torch.as_tensor(ctr, dtype=torch.float32)
    return torch.cat([ctr - d / 2, ctr + d / 2])


def test_default_head_is_table1_detector():
    """Table I's "Detector" per level (Sec. III-B): two bottlenecks, then
    BN-ReLU-Conv1x1x1 with 5 outputs per anchor; 3 levels of 32 channels,
    anchors {4, 6}, {8, 12}, {16, 24} at strides 4, 8, 16 (Sec. IV-B)."""
    head = MODELS.build(dict(type='AggregatedRPNHead3D'))
    assert head.num_levels == 3 and len(head.heads) == 3
    assert head.strides == [4, 8, 16]
    assert head.prior_generator.sizes == [[4, 6], [8, 12], [16, 24]]
    assert head.prior_prob == 0.5
    assert head.train_cfg is None and head.test_cfg is None
    assert not hasattr(head, 'assigner')
    assert type(head.loss_cls).__name__ == 'AdaptiveFocalLoss'
    assert type(head.loss_bbox).__name__ == 'SmoothL1Loss'
    assert head.loss_bbox.beta == 1.0 and head.loss_bbox.loss_weight == 1.0
    assert type(head.bbox_coder).__name__ == 'DeltaZYXDBBoxCoder'
    for level in head.heads:
        assert len(level) == 5
        assert all(isinstance(m, Bottleneck3D) for m in level[:2])
        assert isinstance(level[2], nn.BatchNorm3d)
        assert level[2].num_features == 32
        assert isinstance(level[3], nn.ReLU) and level[3].inplace
        conv = level[4]
        assert isinstance(conv, nn.Conv3d)
        assert conv.in_channels == 32 and conv.out_channels == 2 * 5
        assert conv.kernel_size == (1, 1, 1) and conv.bias is not None
        assert level[0].conv1.conv.in_channels == 32
    # another norm layer on request; another number of bottlenecks
    head = MODELS.build(dict(type='AggregatedRPNHead3D', in_channels=8,
                             num_bottlenecks=1,
                             norm_cfg=dict(type='GN', num_groups=2)))
    assert len(head.heads[0]) == 4
    assert isinstance(head.heads[0][1], nn.GroupNorm)
    assert not any(isinstance(m, nn.BatchNorm3d) for m in head.modules())
    # the settings are kept as given
    cfg = tiny_aggregated3d_cfg()
    init_cfg = dict(type='Normal', std=0.01)
    head = MODELS.build(dict(type='AggregatedRPNHead3D', in_channels=8,
                             train_cfg=cfg.train_cfg.rpn,
                             test_cfg=cfg.test_cfg.rpn, init_cfg=init_cfg))
    assert head.train_cfg == cfg.train_cfg.rpn
    assert head.test_cfg == cfg.test_cfg.rpn
    assert head.init_cfg == init_cfg
    assert type(head.assigner).__name__ == 'IgnoreRegionMaxIoUAssigner'


def test_levels_must_match_anchor_generator():
    """One head per pyramid level (Sec. III-B): the level counts agree."""
    with pytest.raises(ValueError, match='2 levels but the anchor'):
        MODELS.build(dict(type='AggregatedRPNHead3D', in_channels=8,
                          num_levels=2))
    head = _head()
    cls, _ = _outputs()
    with pytest.raises(ValueError, match='2 feature maps for 3 RPN heads'):
        head([torch.zeros(1, 8, 4, 4, 4)] * 2)
    assert len(head.get_anchors(cls)) == 3


def test_init_weights_objectness_prior_only():
    """Sec. III-B: the objectness bias is -log((1 - p) / p); the deltas'
    biases keep their own initialisation."""
    head = _head(prior_prob=0.2)
    assert head.prior_prob == 0.2
    for level in head.heads:
        bias = level[-1].bias.view(-1, 5)
        assert torch.allclose(bias[:, 0],
                              torch.full((2, ), -math.log(4.)))
        assert not torch.isclose(bias[:, 1:],
                                 torch.tensor(-math.log(4.))).any()
    head = _head(prior_prob=0.5)
    for level in head.heads:
        assert (level[-1].bias.view(-1, 5)[:, 0] == 0).all()


def test_forward_layout_per_anchor():
    """Per anchor the conv's 5 channels are (logit, dz, dy, dx, dd), laid
    out (B, D, H, W, A) and (B, D, H, W, A, 4) (Sec. III-B)."""
    head = _head()
    for level in head.heads:
        conv = level[-1]
        with torch.no_grad():
            conv.weight.zero_()
            conv.bias.copy_(torch.arange(10.))
    feats = [torch.randn(2, 8, 3, 4, 5), torch.randn(2, 8, 2, 3, 1),
             torch.randn(2, 8, 1, 1, 2)]
    cls, reg = head(feats)
    assert [tuple(c.shape) for c in cls] == [(2, 3, 4, 5, 2), (2, 2, 3, 1, 2),
                                             (2, 1, 1, 2, 2)]
    assert [tuple(r.shape) for r in reg] == [
        (2, 3, 4, 5, 2, 4), (2, 2, 3, 1, 2, 4), (2, 1, 1, 2, 2, 4)]
    for c, r in zip(cls, reg):
        assert (c[..., 0] == 0).all() and (c[..., 1] == 5).all()
        assert (r[..., 0, :] == torch.tensor([1., 2, 3, 4])).all()
        assert (r[..., 1, :] == torch.tensor([6., 7, 8, 9])).all()
    # the anchor's position: a feature change at one voxel moves its logit
    head = _head().eval()
    feats = [torch.randn(1, 8, 3, 4, 5), torch.randn(1, 8, 2, 3, 1),
             torch.randn(1, 8, 1, 1, 2)]
    with torch.no_grad():
        for level in head.heads:  # a 1x1x1 readout of the input only
            for m in level[:2]:
                m.conv2.conv.weight.zero_()
        ref = head(feats)[0][0]
        feats[0][0, :, 2, 1, 3] += 5
        diff = (head(feats)[0][0] - ref).abs().sum(-1)[0]
    assert diff[2, 1, 3] > 0
    diff[2, 1, 3] = 0
    assert (diff == 0).all()


def _anchor_targets(head, anchors, gts, ignores=None):
    gts = [InstanceData(bboxes=torch.stack(g) if g else torch.zeros(0, 6))
           for g in gts]
    if ignores is not None:
        ignores = [None if i is None else InstanceData(
            bboxes=torch.stack(i) if i else torch.zeros(0, 6))
            for i in ignores]
    return head.get_targets(anchors, gts, ignores)


def test_get_targets_iou_05_002_labelling():
    """Sec. IV-B: IoU >= IoU+ 0.5 positive, < IoU- 0.02 negative, in
    between ignored (label 0, weight 0)."""
    head = _head()
    gt = torch.tensor([0., 0., 0., 8., 8., 8.])
    # boxes sharing the gt's corner, 8 x 8 x L: IoU = 8 / L
    lengths = [16., 16.5, 400., 402.]  # IoU 0.5, 0.485, 0.02, 0.0199
    anchors = torch.stack([torch.tensor([0., 0., 0., v, 8., 8.])
                           for v in lengths] + [_cube([60., 60., 60.], 8.)])
    labels, weights, targets = _anchor_targets(head, anchors, [[gt]])
    assert labels.dtype == torch.long and labels.shape == (1, 5)
    assert labels[0].tolist() == [1, 0, 0, 0, 0]
    assert weights[0].tolist() == [1., 0., 0., 1., 1.]
    assert weights.dtype == torch.float32
    assert targets.shape == (1, 5, 4)
    assert torch.allclose(targets[0, 0], head.bbox_coder.encode(
        anchors[:1], gt[None])[0])
    assert (targets[0, 1:] == 0).all()


def test_get_targets_matches_each_anchor_to_its_gt():
    """Regression targets encode each positive anchor against the ground
    truth it overlaps most; images are assigned independently."""
    head = _head()
    g1, g2 = _cube([10., 10., 10.], 6.), _cube([30., 30., 30.], 12.)
    anchors = torch.stack([_cube([31., 30., 29.], 12.), _cube([30., 30., 30.],
                                                             3.),
                           _cube([10.5, 10., 9.5], 6.)])
    labels, weights, targets = _anchor_targets(
        head, anchors, [[g1, g2], [], [g2]])
    assert labels.shape == (3, 3) and labels.dtype == torch.long
    assert weights.dtype == torch.float32
    assert labels.tolist() == [[1, 0, 1], [0, 0, 0], [1, 0, 0]]
    assert weights[1].tolist() == [1., 1., 1.]
    want = head.bbox_coder.encode(anchors[[0, 2]], torch.stack([g2, g1]))
    assert torch.allclose(targets[0, [0, 2]], want)
    assert (want.abs() > 0.01).any(1).all()
    assert torch.equal(targets[1], torch.zeros(3, 4))
    assert torch.allclose(targets[2, 0], want[0])


def test_get_targets_ignored_regions():
    """Anchors on ignored boxes (e.g. LUNA16's excluded findings) are
    neither positive nor negative, also in an image without lesions."""
    head = _head()
    ign = _cube([40., 40., 40.], 8.)
    anchors = torch.stack([_cube([40., 40., 40.], 8.),
                           _cube([10., 10., 10.], 8.)])
    labels, weights, targets = _anchor_targets(
        head, anchors, [[], [], []], [[ign], None, []])
    assert labels.dtype == torch.long and weights.dtype == torch.float32
    assert targets.shape == (3, 2, 4)
    assert labels.tolist() == [[0, 0]] * 3
    assert weights.tolist() == [[0., 1.], [1., 1.], [1., 1.]]
    assert (targets == 0).all()
    # None for the whole batch: no ignored anchors
    labels, weights, _ = _anchor_targets(head, anchors, [[ign]])
    assert labels.tolist() == [[1, 0]] and weights.tolist() == [[1., 1.]]


def _expected_losses(head, cls, reg, gts):
    anchors = torch.cat(head.get_anchors(cls))
    labels, weights, targets = head.get_targets(anchors, gts)
    logits = torch.stack([torch.cat([c[i].flatten() for c in cls])
                          for i in range(len(gts))])
    deltas = torch.stack([torch.cat([r[i].reshape(-1, 4) for r in reg])
                          for i in range(len(gts))])
    return labels, weights, targets, logits, deltas


def test_loss_by_feat_matches_the_definitions():
    """Sec. III-B: classification over the anchors of the whole batch
    (ignored anchors weight 0), smooth L1 on the positives averaged over
    their number."""
    head = _head()
    torch.manual_seed(0)
    sizes = ((8, 8, 8), (4, 4, 4), (2, 2, 2))
    cls = [torch.randn(2, *s, 2) for s in sizes]
    reg = [torch.randn(2, *s, 2, 4) for s in sizes]
    # exact matches with the 6 mm anchor at (10, 10, 10) and the 12 mm
    # anchor at (12, 12, 12): 2 positives
    gts = [InstanceData(bboxes=_cube([10., 10., 10.], 6.)[None]),
           InstanceData(bboxes=_cube([12., 12., 12.], 12.)[None])]
    labels, weights, targets, logits, deltas = _expected_losses(
        head, cls, reg, gts)
    assert int(labels.sum()) == 2 and (weights == 0).any()
    losses = head.loss_by_feat(cls, reg, gts)
    want_cls = head.loss_cls(logits.reshape(-1), labels.reshape(-1),
                             weight=weights.reshape(-1))
    assert torch.allclose(losses['loss_rpn_cls'], want_cls)
    unweighted = head.loss_cls(logits.reshape(-1), labels.reshape(-1))
    assert not torch.allclose(want_cls, unweighted)
    pos = labels.reshape(-1) > 0
    diff = (deltas.reshape(-1, 4)[pos] - targets.reshape(-1, 4)[pos]).abs()
    sl1 = torch.where(diff < 1, 0.5 * diff**2, diff - 0.5)
    assert torch.allclose(losses['loss_rpn_bbox'], sl1.sum() / 2)
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox'}
    # one positive: averaged over 1
    losses = head.loss_by_feat([c[:1] for c in cls], [r[:1] for r in reg],
                               gts[:1])
    sl1_0 = sl1[:1].sum()
    assert torch.allclose(losses['loss_rpn_bbox'], sl1_0)


def test_loss_by_feat_passes_ignored_boxes():
    """Anchors on ignored boxes carry no classification loss (Sec. IV-B's
    ignored anchors; LUNA16's excluded findings)."""
    head = _head()
    torch.manual_seed(1)
    sizes = ((8, 8, 8), (4, 4, 4), (2, 2, 2))
    cls = [torch.randn(1, *s, 2) for s in sizes]
    reg = [torch.randn(1, *s, 2, 4) for s in sizes]
    gts = [InstanceData(bboxes=_cube([10., 10., 10.], 6.)[None])]
    ignores = [InstanceData(bboxes=_cube([24., 24., 24.], 12.)[None])]
    anchors = torch.cat(head.get_anchors(cls))
    labels, weights, _ = head.get_targets(anchors, gts, ignores)
    logits = torch.cat([c[0].flatten() for c in cls])
    want = head.loss_cls(logits, labels.reshape(-1),
                         weight=weights.reshape(-1))
    losses = head.loss_by_feat(cls, reg, gts, ignores)
    assert torch.allclose(losses['loss_rpn_cls'], want)
    assert not torch.allclose(head.loss_by_feat(cls, reg, gts)[
        'loss_rpn_cls'], want)


def test_loss_by_feat_without_positives_keeps_the_graph():
    """No positive anchor: zero regression loss that still backpropagates
    (zero gradient); OHEM (Table II) is a drop-in classification loss."""
    head = _head(loss_cls=dict(type='OHEMBinaryLoss'))
    cls, reg = _outputs(fill=0.3)
    reg = [r.requires_grad_() for r in reg]
    gt = [InstanceData(bboxes=_cube([50., 50., 50.], 6.)[None])]
    losses = head.loss_by_feat(cls, reg, gt)
    assert losses['loss_rpn_bbox'].item() == 0
    losses['loss_rpn_bbox'].backward()
    assert reg[0].grad is not None and (reg[0].grad == 0).all()
    assert losses['loss_rpn_cls'].item() > 0


def _deltas_to(head, anchors, box):
    return head.bbox_coder.encode(anchors, box[None].expand(len(anchors), 6))


def test_predict_by_feat_default_settings():
    """Without a config: nms_pre 1000 per level, score_thr 0 (strictly
    above), NMS IoU 0.1, at most 100 proposals."""
    head = _head(test_cfg=None)
    cls, reg = _outputs()
    anchors = head.get_anchors(cls)
    # level 0 (1024 anchors): ranks 1..999 decode to box B, rank 1000 to
    # D, ranks 1001.. to C (never among the top 1000)
    order = torch.arange(1024)
    cls[0].view(-1)[order] = 10 - order.float() / 1000
    B = _cube([16., 16., 16.], 8.)
    D = _cube([40., 40., 40.], 4.)
    C = _cube([60., 60., 60.], 4.)
    F = _cube([20.5, 16., 16.], 8.)  # IoU with B: 3.5 / 12.5 = 0.28
    G = _cube([22.9, 16., 16.], 8.)  # IoU with B: 1.1 / 14.9 = 0.074
    E = _cube([5., 5., 60.], 4.)
    a0 = anchors[0]
    d0 = torch.cat([_deltas_to(head, a0[:999], B),
                    _deltas_to(head, a0[999:1000], D),
                    _deltas_to(head, a0[1000:], C)])
    reg[0].view(-1, 4)[:] = d0
    # level 1: F (suppressed by B at 0.1), G (kept)
    cls[1].view(-1)[:] = -1.
    cls[1].view(-1)[0] = 0.
    reg[1].view(-1, 4)[:] = _deltas_to(head, anchors[1], F)
    reg[1].view(-1, 4)[0] = _deltas_to(head, anchors[1][:1], G)[0]
    # level 2: E with a probability of exactly 0 (not above score_thr 0)
    cls[2].view(-1)[:] = -1.
    cls[2].view(-1)[0] = -1e4
    reg[2].view(-1, 4)[:] = _deltas_to(head, anchors[2], F)
    reg[2].view(-1, 4)[0] = _deltas_to(head, anchors[2][:1], E)[0]
    props = head.predict_by_feat(cls, reg)[0]
    assert props.bboxes.shape == (3, 6)
    assert torch.allclose(props.bboxes, torch.stack([B, D, G]), atol=1e-4)
    assert props.level_ids.tolist() == [0, 0, 1]
    assert props.level_ids.dtype == torch.long
    assert props.labels.tolist() == [0, 0, 0]
    assert props.labels.dtype == torch.long
    assert torch.allclose(props.logits, torch.tensor([10., 9.001, 0.]))
    assert torch.allclose(props.scores, props.logits.sigmoid())
    # a given threshold (strictly above): G's 0.5 is out
    props = head.predict_by_feat(cls, reg, dict(score_thr=0.5))[0]
    assert torch.allclose(props.bboxes, torch.stack([B, D]), atol=1e-4)
    # nms_pre 1: the top anchor of each level
    props = head.predict_by_feat(cls, reg, dict(nms_pre=1))[0]
    assert torch.allclose(props.bboxes, torch.stack([B, G]), atol=1e-4)
    # the head's test_cfg when no config is given
    head.test_cfg = dict(nms_pre=999)
    props = head.predict_by_feat(cls, reg)[0]
    assert torch.allclose(props.bboxes, torch.stack([B, G]), atol=1e-4)


def test_predict_by_feat_at_most_100_by_default():
    """Proposal settings (Sec. III-B): 100 proposals at most without a
    config, the best first; ``max_per_img=0`` keeps none."""
    head = _head(test_cfg=None)
    torch.manual_seed(0)
    cls, reg = _outputs(batch=2)
    cls = [torch.randn_like(c) for c in cls]
    results = head.predict_by_feat(cls, reg)
    assert [len(r) for r in results] == [100, 100]
    assert not torch.equal(results[0].bboxes, results[1].bboxes)
    assert len(head.predict_by_feat(cls, reg, dict(max_per_img=0))[0]) == 0
    one = head.predict_by_feat(cls, reg, dict(max_per_img=1))[0]
    assert torch.equal(one.bboxes, results[0].bboxes[:1])


def test_predict_by_feat_nms_pre_equal_to_level_size():
    """``nms_pre`` equal to a level's anchors keeps them all, in the
    anchors' order (equal scores: the first anchor wins the NMS)."""
    head = _head()
    cls, reg = _outputs(sizes=((2, 2, 2), (1, 1, 1), (1, 1, 1)))
    props = head.predict_by_feat(cls, reg, dict(nms_pre=16, iou_thr=0.,
                                                max_per_img=1))[0]
    first = head.get_anchors(cls)[0][0]
    assert torch.allclose(props.bboxes[0], first)


def test_cached_anchors_keeps_four_layouts():
    """The anchors of the last four feature-map layouts are remembered,
    the oldest dropped first."""
    head = _head()
    layouts = [((n, n, n), (1, 1, 1), (1, 1, 1)) for n in (1, 2, 3, 4, 5)]
    first = head._cached_anchors(_outputs(sizes=layouts[0])[0])
    assert head._cached_anchors(_outputs(sizes=layouts[0])[0]) is first
    for sizes in layouts[1:4]:
        head._cached_anchors(_outputs(sizes=sizes)[0])
    cache = head.__dict__['_anchor_cache']
    assert len(cache) == 4
    assert head._cached_anchors(_outputs(sizes=layouts[0])[0]) is first
    head._cached_anchors(_outputs(sizes=layouts[4])[0])
    assert len(cache) == 4
    assert [k[0][0] for k in cache] == [(2, 2, 2), (3, 3, 3), (4, 4, 4),
                                        (5, 5, 5)]
    assert all(k[1] == 'cpu' for k in cache)
    anchors = head._cached_anchors(_outputs(sizes=layouts[4])[0])
    assert len(anchors[0]) == 125 * 2
    # layouts that differ in one axis only have their own anchors
    for d in (2, 3, 4):
        anchors = head._cached_anchors(_outputs(sizes=((d, 5, 5), (1, 1, 1),
                                                       (1, 1, 1)))[0])
        assert len(anchors[0]) == d * 25 * 2


def test_anchors_float32_whatever_the_default_dtype():
    """Anchors are float32 voxel coordinates, also when torch's default
    dtype is another one."""
    head = _head()
    cls, _ = _outputs()
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        anchors = head.get_anchors(cls)
    finally:
        torch.set_default_dtype(old)
    assert all(a.dtype == torch.float32 for a in anchors)


def test_nearest_level_log_scale_boundaries():
    """Reference level of a box (Sec. III-B, Fig. 3): the level of the
    anchor diameter nearest in log scale (boundaries at the geometric
    means sqrt(6 * 8) = 6.93 and sqrt(12 * 16) = 13.86)."""
    head = _head()
    diam = torch.tensor([1., 6.9, 7.0, 13.8, 13.9, 100.])
    boxes = torch.cat([torch.zeros(6, 3), diam[:, None].expand(-1, 3)], 1)
    assert head.nearest_level(boxes).tolist() == [0, 0, 1, 1, 2, 2]
    # a diameter below 1e-3 counts as 1e-3 (sub-voxel anchors)
    head = _head(anchor_generator=dict(
        type='CubeAnchorGenerator3D', strides=[4, 8, 16],
        sizes=[[0.0005], [0.0015], [16]]))
    diam = torch.tensor([0., 1e-4, 0.9e-3, 0.02, 0.3, 50.])
    boxes = torch.cat([torch.zeros(6, 3), diam[:, None].expand(-1, 3)], 1)
    assert head.nearest_level(boxes).tolist() == [1, 1, 1, 1, 2, 2]


def test_nms_3d_first_input_checks():
    """Each malformed input is refused on its own."""
    boxes = torch.rand(3, 6)
    with pytest.raises(ValueError, match='needs'):
        nms_3d_first(boxes, torch.rand(4), 0.1)
    with pytest.raises(ValueError, match='needs'):
        nms_3d_first(boxes[None], torch.rand(1), 0.1)
    with pytest.raises(ValueError, match='needs'):
        nms_3d_first(boxes[:, :5], torch.rand(3), 0.1)
    empty = nms_3d_first(boxes, torch.rand(3), 0.1, 0)
    assert empty.dtype == torch.long and empty.shape == (0, )
    none = nms_3d_first(boxes[:0], torch.rand(0), 0.1)
    assert none.dtype == torch.long and none.shape == (0, )
    # IoU never exceeds 1: a threshold of 1 suppresses nothing, each box
    # kept once, by score
    gen = torch.Generator().manual_seed(2)
    ctr = torch.rand(10, 3, generator=gen) * 4
    boxes = torch.cat([ctr - 3, ctr + 3], 1)
    scores = torch.rand(10, generator=gen)
    assert torch.equal(nms_3d_first(boxes, scores, 1.0),
                       scores.argsort(descending=True))
    # a zero-volume box overlaps nothing, itself included: kept once
    boxes = torch.tensor([[0., 0, 0, 4, 4, 4], [0., 0, 0, 4, 4, 4],
                          [9., 9, 9, 9, 9, 9]])
    scores = torch.tensor([0.9, 0.8, 0.5])
    assert nms_3d_first(boxes, scores, 0.1).tolist() == [0, 2]
    assert torch.equal(nms_3d_first(boxes, scores, 0.1),
                       nms_3d(boxes, scores, 0.1)[1])
    # default block size: a large input in several blocks
    gen = torch.Generator().manual_seed(3)
    ctr = torch.rand(200, 3, generator=gen) * 40
    boxes = torch.cat([ctr - 3, ctr + 3], 1)
    scores = torch.rand(200, generator=gen)
    assert torch.equal(nms_3d_first(boxes, scores, 0.1),
                       nms_3d(boxes, scores, 0.1)[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_anchors_and_levels_on_the_device_of_the_outputs():
    """Anchors, proposals and reference levels (Sec. III-B, Fig. 3) live
    on the device of the head's outputs."""
    head = _head().cuda()
    cls, reg = _outputs()
    cls, reg = [c.cuda() for c in cls], [r.cuda() for r in reg]
    assert all(a.is_cuda for a in head.get_anchors(cls))
    props = head.predict_by_feat(cls, reg, dict(max_per_img=5))[0]
    assert props.bboxes.is_cuda and len(props) == 5
    boxes = torch.tensor([[0., 0, 0, 5, 5, 5], [0., 0, 0, 30, 30, 30]])
    levels = head.nearest_level(boxes.cuda())
    assert levels.is_cuda and levels.tolist() == [0, 2]
