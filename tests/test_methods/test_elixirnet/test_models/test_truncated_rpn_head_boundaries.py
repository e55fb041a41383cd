# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :class:`TruncatedRPNHead` (ElixirNet, section
"TruncatedRPN", Eq. 1).

What the RPN loss's ``avg_factor`` becomes when the sampled negatives of
truncated locations leave it (minus exactly the dropped anchors, summed over
the levels, never below 1), what the class-balanced location loss divides
by (half over the positive and half over the negative locations; all of it
over the negatives without positives), a threshold exactly at ``p``, the
initial map ``p = loc_prior``, the ``nms_pre`` edge values, the softmax RPN
and rescaling: the cases a small change of the code would get wrong while
``test_truncated_rpn_head.py`` still passes (docs/mutation_testing.md).
"""
import math
import re

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401
import mmlesion.methods.elixirnet  # noqa: F401  (registers TruncatedRPNHead)

IMG = 32
# One scale, one ratio: 8 x 8 anchors at stride 4 (8 x 8 locations) and
# 16 x 16 anchors at stride 8 (4 x 4 locations), centred on (s * i, s * j).
# The GT box is exactly the stride-4 anchor at (16, 16): the only positive
# (IoU 1); its four 4-px neighbours have IoU 1/3 (ignored by the assigner),
# every other anchor is a negative: 59 at stride 4, 16 at stride 8.
GT = [12., 12., 20., 20.]
POS_INDEX = 4 * 8 + 4  # stride-4 location (4, 4)
NUM_NEG = 59 + 16


def _cfg(strides=(4, 8), **kwargs) -> dict:
    cfg = dict(
        type='TruncatedRPNHead',
        in_channels=2,
        feat_channels=4,
        anchor_generator=dict(type='AnchorGenerator',
                              scales=[2],
                              ratios=[1.0],
                              strides=list(strides)),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                        target_means=[0.0] * 4,
                        target_stds=[1.0] * 4),
        loss_cls=dict(type='CrossEntropyLoss',
                      use_sigmoid=True,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        train_cfg=ConfigDict(
            assigner=dict(type='MaxIoUAssigner',
                          pos_iou_thr=0.7,
                          neg_iou_thr=0.3,
                          min_pos_iou=0.3,
                          match_low_quality=True,
                          ignore_iof_thr=-1),
            # more than all anchors: every negative is sampled, so the
            # targets do not depend on the random draw
            sampler=dict(type='RandomSampler',
                         num=256,
                         pos_fraction=0.5,
                         neg_pos_ub=-1,
                         add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        test_cfg=ConfigDict(nms_pre=1000,
                            max_per_img=1000,
                            nms=dict(type='nms', iou_threshold=1.0),
                            min_bbox_size=-1))
    cfg.update(kwargs)
    return cfg


def _head(**kwargs):
    head = MODELS.build(_cfg(**kwargs))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, param in sorted(head.named_parameters()):
            param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
    return head


def _feats(batch=1, strides=(4, 8), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(batch, 2, IMG // s, IMG // s, generator=gen)
        for s in strides)


def _metas(batch=1, scale=1.):
    return [
        dict(img_shape=(IMG, IMG),
             pad_shape=(IMG, IMG),
             scale_factor=(scale, scale)) for _ in range(batch)
    ]


def _gts(batch=1):
    return [
        InstanceData(bboxes=torch.tensor([GT]),
                     labels=torch.zeros(1, dtype=torch.long))
        for _ in range(batch)
    ]


def _loc_maps(batch=1, strides=(4, 8), value=-5.):
    """Location logits, the same value everywhere."""
    return [torch.full((batch, 1, IMG // s, IMG // s), value) for s in strides]


def _record_avg_factor(head):
    """Wrap ``loss_by_feat_single`` to record its ``avg_factor`` and label
    weights per level."""
    calls = []
    inner = head.loss_by_feat_single

    def wrapped(*args, **kwargs):
        calls.append(dict(weights=args[4], avg_factor=kwargs['avg_factor']))
        return inner(*args, **kwargs)

    head.loss_by_feat_single = wrapped
    return calls


# ---------------------------------------------------------------------- #
# construction
# ---------------------------------------------------------------------- #
def test_threshold_and_prior_ranges_are_closed_and_open():
    """Eq. (1)'s threshold is a probability: [0, 1] both ends included;
    ``loc_prior`` is a sigmoid value: (0, 1) both ends excluded."""
    for thr in (0.0, 1.0, 'mean'):
        assert MODELS.build(_cfg(truncate_thr=thr)).truncate_thr == thr
    msg = re.escape("TruncatedRPNHead: truncate_thr must be 'mean' or a "
                    "float in [0, 1], got 'Mean'")
    with pytest.raises(ValueError, match=msg):
        MODELS.build(_cfg(truncate_thr='Mean'))
    for thr in (-1e-6, 1.000001):
        msg = re.escape('TruncatedRPNHead: a float truncate_thr must lie '
                        f'in [0, 1] (sigmoid range), got {thr}')
        with pytest.raises(ValueError, match=msg):
            MODELS.build(_cfg(truncate_thr=thr))
    for prior in (1e-6, 0.999999):
        assert MODELS.build(_cfg(loc_prior=prior)).loc_prior == prior
    for prior in (0.0, 1.0, 1.5):
        msg = re.escape('TruncatedRPNHead: loc_prior must lie in (0, 1), '
                        f'got {prior}')
        with pytest.raises(ValueError, match=msg):
            MODELS.build(_cfg(loc_prior=prior))


def test_defaults_are_the_papers_mean_threshold_and_a_unit_loc_loss():
    """ElixirNet: the threshold is the mean of the map, the feature is
    weighted by p; the location loss is a sigmoid cross-entropy of weight 1
    (the RPN objectness loss's scale)."""
    head = MODELS.build(_cfg())
    assert head.truncate_thr == 'mean'
    assert head.weight_features is True and head.truncate_in_loss is True
    assert head.loc_prior == 0.5
    assert type(head.loss_loc).__name__ == 'CrossEntropyLoss'
    assert head.loss_loc.use_sigmoid and head.loss_loc.loss_weight == 1.0
    assert MODELS.build(_cfg(loss_loc=None)).loss_loc is None


@pytest.mark.parametrize('prior', [0.5, 0.2, 0.9])
def test_init_weights_starts_the_map_at_loc_prior(prior):
    """``p`` starts at ``loc_prior`` everywhere: bias = logit(loc_prior)."""
    head = MODELS.build(_cfg(loc_prior=prior))
    head.init_weights()
    bias = head.conv_loc.bias
    assert bias.shape == (1, )
    assert bias.item() == pytest.approx(math.log(prior / (1 - prior)))
    p = head.forward_single(torch.zeros(1, 2, 3, 3))[2].sigmoid()
    torch.testing.assert_close(p, torch.full_like(p, prior))


# ---------------------------------------------------------------------- #
# truncation
# ---------------------------------------------------------------------- #
def test_probability_exactly_at_a_fixed_threshold_is_kept():
    """``p >= threshold`` (the class docstring): p = 0.5 exactly (logit 0)
    survives threshold 0.5, p = 0.5 - 2.5e-7 (logit -1e-6) does not."""
    head = MODELS.build(_cfg(truncate_thr=0.5))
    logits = torch.tensor([0., -1e-6, 1.])
    assert logits.sigmoid()[1] < 0.5
    keep = head.location_keep_mask(logits.reshape(1, 1, 3))
    assert keep.reshape(-1).tolist() == [True, False, True]


def test_anchor_keep_mask_is_location_major():
    """The k anchors of a location are kept or dropped together."""
    head = MODELS.build(
        _cfg(truncate_thr=0.5,
             anchor_generator=dict(type='AnchorGenerator',
                                   scales=[2, 4],
                                   ratios=[0.5, 1.0, 2.0],
                                   strides=[4, 8])))
    logits = torch.tensor([[[-1., 1.], [1., -1.]]])
    keep = head._anchor_keep_mask(logits)
    assert keep.tolist() == [False] * 6 + [True] * 12 + [False] * 6


# ---------------------------------------------------------------------- #
# RPN losses with truncation: avg_factor
# ---------------------------------------------------------------------- #
def test_avg_factor_without_truncation_counts_every_sampled_anchor():
    head = _head(truncate_thr=0.0)
    calls = _record_avg_factor(head)
    cls, reg, _ = head(_feats())
    head.loss_by_feat(cls, reg, _loc_maps(), _gts(), _metas())
    assert [c['avg_factor'] for c in calls] == [1 + NUM_NEG] * 2


def test_avg_factor_loses_exactly_the_dropped_negatives_of_every_level():
    """Kept: the first row of the stride-4 map (8 negative locations) and
    location (0, 0) of the stride-8 map; dropped: the other 51 + 15
    negatives; the positive is truncated but kept."""
    head = _head(truncate_thr=0.5)
    calls = _record_avg_factor(head)
    cls, reg, _ = head(_feats())
    locs = _loc_maps()
    locs[0][0, 0, 0] = 5.
    locs[1][0, 0, 0, 0] = 5.
    head.loss_by_feat(cls, reg, locs, _gts(), _metas())
    assert [c['avg_factor'] for c in calls] == [1 + 8 + 1] * 2
    w0, w1 = calls[0]['weights'][0], calls[1]['weights'][0]
    assert w0[POS_INDEX] == 1
    assert w0[:8].tolist() == [1.] * 8
    assert int(w0.sum()) == 1 + 8 and int(w1.sum()) == 1 and w1[0] == 1


def test_avg_factor_of_one_positive_with_every_negative_truncated():
    """Every negative dropped: the objectness loss is the positive's BCE
    divided by 1 (the one sampled anchor left)."""
    head = _head(truncate_thr=0.5)
    calls = _record_avg_factor(head)
    cls, reg, _ = head(_feats())
    losses = head.loss_by_feat(cls, reg, _loc_maps(), _gts(), _metas())
    assert [c['avg_factor'] for c in calls] == [1, 1]
    expected = F.softplus(-cls[0][0, 0].reshape(-1)[POS_INDEX])
    torch.testing.assert_close(sum(losses['loss_rpn_cls']), expected)


def test_avg_factor_never_below_one():
    """No positive and every negative dropped: avg_factor 1, loss 0."""
    head = _head(truncate_thr=0.5)
    calls = _record_avg_factor(head)
    cls, reg, _ = head(_feats())
    empty = InstanceData(bboxes=torch.zeros(0, 4),
                         labels=torch.zeros(0, dtype=torch.long))
    losses = head.loss_by_feat(cls, reg, _loc_maps(), [empty], _metas())
    assert [c['avg_factor'] for c in calls] == [1, 1]
    assert sum(losses['loss_rpn_cls']).item() == 0


def test_truncate_in_loss_off_keeps_the_plain_avg_factor():
    head = _head(truncate_thr=0.5, truncate_in_loss=False)
    calls = _record_avg_factor(head)
    cls, reg, _ = head(_feats())
    head.loss_by_feat(cls, reg, _loc_maps(), _gts(), _metas())
    assert [c['avg_factor'] for c in calls] == [1 + NUM_NEG] * 2


def test_ignored_gt_boxes_reach_the_assigner():
    """An uncertain box (``gt_instances_ignore``) over the stride-4 anchor
    (4, 4) - (IoF 1) removes that negative from the sampled anchors."""
    cfg = _cfg(truncate_thr=0.0)
    cfg['train_cfg'].assigner.ignore_iof_thr = 0.5
    head = MODELS.build(cfg)
    calls = _record_avg_factor(head)
    cls, reg, _ = head(_feats())
    ignore = InstanceData(bboxes=torch.tensor([[0., 0., 8., 8.]]),
                          labels=torch.zeros(1, dtype=torch.long))
    head.loss_by_feat(cls, reg, _loc_maps(), _gts(), _metas(), [ignore])
    assert [c['avg_factor'] for c in calls] == [NUM_NEG] * 2
    assert calls[0]['weights'][0, 1 * 8 + 1] == 0


def test_truncate_targets_counts_every_image_and_level():
    head = MODELS.build(_cfg())
    labels = [torch.ones(2, 4, dtype=torch.long), torch.ones(2, 1).long()]
    weights = [torch.ones(2, 4), torch.ones(2, 1)]
    keep = [
        torch.tensor([[True, False, True, True], [False, False, True,
                                                  True]]).reshape(2, 1, 2, 2),
        torch.tensor([[False], [True]]).reshape(2, 1, 1, 1)
    ]
    new, dropped = head.truncate_targets(labels, weights, keep)
    assert dropped == 3 + 1
    assert new[0].tolist() == [[1., 0., 1., 1.], [0., 0., 1., 1.]]
    assert new[1].tolist() == [[0.], [1.]]
    assert new[0].dtype == torch.float32


def test_single_level_head_loss_and_predict():
    """A one-level TRPN (LENS-like single map) trains and predicts, and
    without the location maps says what is missing."""
    head = _head(strides=(4, ), truncate_thr=0.0)
    feats = _feats(strides=(4, ))
    cls, reg, loc = head(feats)
    losses = head.loss_by_feat(cls, reg, loc, _gts(), _metas())
    assert len(losses['loss_rpn_cls']) == 1
    props = head.predict_by_feat(cls, reg, loc, batch_img_metas=_metas())
    assert len(props[0]) == 64
    msg = re.escape(
        'TruncatedRPNHead._predict_by_feat_single needs the location '
        'maps; call predict_by_feat(cls_scores, bbox_preds, '
        'loc_preds, ...) with the three outputs of forward().')
    with pytest.raises(ValueError, match=msg):
        head.predict_by_feat(cls, reg, batch_img_metas=_metas())


def test_decoded_box_regression_matches_plain_rpn():
    """With ``reg_decoded_bbox`` (IoU-type losses) the anchors reach the
    loss: threshold 0 gives mmdet's RPNHead's losses."""
    kw = dict(reg_decoded_bbox=True,
              loss_bbox=dict(type='GIoULoss', loss_weight=1.0))
    trpn = _head(truncate_thr=0.0, weight_features=False, loss_loc=None, **kw)
    plain_cfg = _cfg(**kw)
    plain_cfg['type'] = 'RPNHead'
    plain = MODELS.build(plain_cfg)
    plain.load_state_dict(trpn.state_dict(), strict=False)
    feats = _feats(batch=2)
    outs = trpn(feats)
    torch.manual_seed(0)
    got = trpn.loss_by_feat(*outs, _gts(2), _metas(2))
    torch.manual_seed(0)
    exp = plain.loss_by_feat(*plain(feats), _gts(2), _metas(2))
    for key in ('loss_rpn_cls', 'loss_rpn_bbox'):
        torch.testing.assert_close(torch.stack(got[key]),
                                   torch.stack(exp[key]))
    assert sum(got['loss_rpn_bbox']) > 0


# ---------------------------------------------------------------------- #
# class-balanced location loss
# ---------------------------------------------------------------------- #
def _loc_targets(pos_locs, n=2, hw=4, anchors=2, zero_weight_pos=()):
    """Anchor labels/weights of one level with the given (image, location)
    pairs positive at their first anchor; ``zero_weight_pos`` are positive
    labels with weight 0 (not sampled)."""
    labels = torch.ones(n, hw * anchors, dtype=torch.long)
    weights = torch.ones(n, hw * anchors)
    for img, loc in pos_locs:
        labels[img, loc * anchors] = 0
    for img, loc in zero_weight_pos:
        labels[img, loc * anchors + 1] = 0
        weights[img, loc * anchors + 1] = 0
    return labels, weights


def _balanced(logits, pos, pos_w, neg_w):
    return (pos_w * F.softplus(-logits[pos]).sum() +
            neg_w * F.softplus(logits[~pos]).sum())


def test_location_loss_weighs_positives_and_negatives_half_each():
    """Two positive and six negative locations over two images: each
    positive weighs 0.5 / 2, each negative 0.5 / 6; an anchor labelled
    positive with weight 0 is not a positive; one positive anchor of a
    location's k makes it positive."""
    head = MODELS.build(_cfg())
    labels, weights = _loc_targets([(0, 0), (1, 3)], zero_weight_pos=[(0, 1)])
    logits = torch.randn(2,
                         1,
                         2,
                         2,
                         generator=torch.Generator().manual_seed(1))
    (loss, ) = head.loss_by_loc([logits], [labels], [weights])
    pos = torch.zeros(8, dtype=torch.bool)
    pos[[0, 7]] = True
    expected = _balanced(logits.reshape(-1), pos, 0.5 / 2, 0.5 / 6)
    torch.testing.assert_close(loss, expected)


def test_location_loss_per_level_terms_sum_to_the_balanced_mean():
    """The counts are over the whole batch and every level: one positive on
    level 0 and none on level 1 still weigh half the loss."""
    head = MODELS.build(_cfg())
    gen = torch.Generator().manual_seed(2)
    l0, w0 = _loc_targets([(1, 2)])
    l1, w1 = _loc_targets([], hw=1)
    lg0 = torch.randn(2, 1, 2, 2, generator=gen)
    lg1 = torch.randn(2, 1, 1, 1, generator=gen)
    loss0, loss1 = head.loss_by_loc([lg0, lg1], [l0, l1], [w0, w1])
    pos0 = torch.zeros(8, dtype=torch.bool)
    pos0[6] = True
    torch.testing.assert_close(loss0,
                               _balanced(lg0.reshape(-1), pos0, 0.5, 0.5 / 9))
    torch.testing.assert_close(
        loss1,
        _balanced(lg1.reshape(-1), torch.zeros(2, dtype=torch.bool), 0.5,
                  0.5 / 9))


def test_location_loss_without_positives_is_the_negative_mean():
    head = MODELS.build(_cfg())
    labels, weights = _loc_targets([], zero_weight_pos=[(1, 1)])
    logits = torch.randn(2,
                         1,
                         2,
                         2,
                         generator=torch.Generator().manual_seed(3))
    (loss, ) = head.loss_by_loc([logits], [labels], [weights])
    torch.testing.assert_close(loss, F.softplus(logits).mean())


def test_location_loss_with_one_negative_location():
    """Seven positive locations and one negative: the negative alone
    weighs 0.5."""
    head = MODELS.build(_cfg())
    pos_locs = [(i, j) for i in range(2) for j in range(4) if (i, j) != (1, 0)]
    labels, weights = _loc_targets(pos_locs)
    logits = torch.randn(2,
                         1,
                         2,
                         2,
                         generator=torch.Generator().manual_seed(4))
    (loss, ) = head.loss_by_loc([logits], [labels], [weights])
    pos = torch.ones(8, dtype=torch.bool)
    pos[4] = False
    torch.testing.assert_close(
        loss, _balanced(logits.reshape(-1), pos, 0.5 / 7, 0.5))


def test_location_loss_through_loss_by_feat():
    """End to end: the single positive location (4, 4) weighs 0.5, the 79
    others 0.5 / 79 (the ignored neighbours have no positive anchor)."""
    head = _head()
    cls, reg, loc = head(_feats())
    losses = head.loss_by_feat(cls, reg, loc, _gts(), _metas())
    logits = torch.cat([lp.reshape(-1) for lp in loc])
    pos = torch.zeros(80, dtype=torch.bool)
    pos[POS_INDEX] = True
    torch.testing.assert_close(sum(losses['loss_rpn_loc']),
                               _balanced(logits, pos, 0.5, 0.5 / 79))


# ---------------------------------------------------------------------- #
# proposals
# ---------------------------------------------------------------------- #
def _identity_head(**kwargs):
    """Proposals are exactly the kept (clipped) anchors: zero deltas, NMS
    that suppresses nothing (IoU 1), no size filter."""
    head = _head(**kwargs)
    with torch.no_grad():
        head.rpn_reg.weight.zero_()
        head.rpn_reg.bias.zero_()
    return head


def _num_props(head, cfg=None, feats=None, **kwargs):
    feats = _feats() if feats is None else feats
    return len(
        head.predict_by_feat(*head(feats),
                             batch_img_metas=_metas(),
                             cfg=cfg,
                             **kwargs)[0])


def test_nms_pre_absent_zero_or_one():
    """No ``nms_pre`` (or 0): every kept anchor; 1: one per level."""
    head = _identity_head(truncate_thr=0.0)
    base = dict(max_per_img=1000, nms=dict(type='nms', iou_threshold=1.0))
    assert _num_props(head, ConfigDict(base)) == 80
    assert _num_props(head, ConfigDict(base, nms_pre=0)) == 80
    assert _num_props(head, ConfigDict(base, nms_pre=1)) == 2
    assert _num_props(head, ConfigDict(base, nms_pre=64)) == 80
    assert _num_props(head, ConfigDict(base, nms_pre=63)) == 63 + 16


def test_explicit_cfg_overrides_test_cfg():
    head = _identity_head(truncate_thr=0.0)
    assert _num_props(head) == 80
    cfg = ConfigDict(head.test_cfg, max_per_img=7)
    assert _num_props(head, cfg) == 7


def test_softmax_objectness_matches_plain_rpn():
    """A softmax RPN (2 channels per anchor): the lesion score is the first
    softmax column, as in mmdet's RPNHead."""
    kw = dict(loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False))
    trpn = _head(truncate_thr=0.0, weight_features=False, **kw)
    plain_cfg = _cfg(**kw)
    plain_cfg['type'] = 'RPNHead'
    plain = MODELS.build(plain_cfg)
    plain.load_state_dict(trpn.state_dict(), strict=False)
    feats = _feats(seed=5)
    got = trpn.predict_by_feat(*trpn(feats), batch_img_metas=_metas())[0]
    exp = plain.predict_by_feat(*plain(feats), batch_img_metas=_metas())[0]
    assert len(got) == 80
    torch.testing.assert_close(got.scores, exp.scores)
    torch.testing.assert_close(got.bboxes, exp.bboxes)


def test_rescale_divides_by_the_scale_factor():
    """``rescale=True`` maps the proposals back to the original image;
    ``_predict_by_feat_single`` does not rescale by default."""
    head = _identity_head(truncate_thr=0.0)
    cls, reg, loc = head(_feats())
    metas = _metas(scale=2.)
    plain = head.predict_by_feat(cls, reg, loc, batch_img_metas=metas)[0]
    scaled = head.predict_by_feat(cls,
                                  reg,
                                  loc,
                                  batch_img_metas=metas,
                                  rescale=True)[0]
    torch.testing.assert_close(scaled.bboxes, plain.bboxes / 2)
    assert plain.bboxes.max() == IMG
    priors = head.prior_generator.grid_priors([c.shape[-2:] for c in cls],
                                              device='cpu')
    direct = head._predict_by_feat_single([c[0]
                                           for c in cls], [r[0] for r in reg],
                                          [lp[0] for lp in loc], priors,
                                          metas[0], None)
    torch.testing.assert_close(direct.bboxes, plain.bboxes)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_loss_on_cuda_builds_the_anchors_there():
    head = _head().cuda()
    feats = tuple(f.cuda() for f in _feats())
    gts = [g.to('cuda') for g in _gts()]
    losses = head.loss_by_feat(*head(feats), gts, _metas())
    assert sum(losses['loss_rpn_cls']).is_cuda


def test_nms_pre_equal_to_the_kept_count_is_no_top_k():
    """``nms_pre`` applies only when fewer than the kept anchors: at the
    count itself the proposals, in order, are those without ``nms_pre``
    (here all scores tie, so a top-k would reorder them)."""
    head = _identity_head(truncate_thr=0.0)
    with torch.no_grad():
        head.rpn_cls.weight.zero_()
        head.rpn_cls.bias.zero_()
    base = dict(max_per_img=1000, nms=dict(type='nms', iou_threshold=1.0))
    outs = head(_feats())
    got = head.predict_by_feat(*outs,
                               batch_img_metas=_metas(),
                               cfg=ConfigDict(base, nms_pre=64))[0]
    exp = head.predict_by_feat(*outs,
                               batch_img_metas=_metas(),
                               cfg=ConfigDict(base))[0]
    assert len(got) == 80
    assert torch.equal(got.bboxes, exp.bboxes)


def test_location_loss_weights_in_the_logits_dtype():
    """The per-location weights follow the logits' dtype: with a loss that
    keeps it (focal loss) and float16 logits (mixed precision), the loss is
    float16, computed as with float16 weights."""
    head = MODELS.build(
        _cfg(loss_loc=dict(type='FocalLoss',
                           use_sigmoid=True,
                           gamma=2.0,
                           alpha=0.25,
                           loss_weight=1.0)))
    labels, weights = _loc_targets([(0, 0), (0, 2), (1, 1)])
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 1, 2, 2, generator=gen).half()
    (loss, ) = head.loss_by_loc([logits], [labels], [weights])
    lab = torch.ones(8, dtype=torch.long)
    lab[[0, 2, 5]] = 0
    weight = torch.full((8, ), 0.5 / 5)
    weight[lab == 0] = 0.5 / 3
    expected = head.loss_loc(logits.reshape(-1, 1),
                             lab,
                             weight.half(),
                             avg_factor=1.0)
    assert loss.dtype == torch.float16
    assert torch.equal(loss, expected)
