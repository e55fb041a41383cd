# Copyright (c) mmlesion contributors. All rights reserved.
"""Tests of TruncatedRPNHead (ElixirNet, section "TruncatedRPN")."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401  (registers TruncatedRPNHead)
from mmlesion.methods.elixirnet.models import TruncatedRPNHead

IMG = 64
STRIDES = [4, 8]


def _head_cfg(**kwargs) -> dict:
    cfg = dict(
        type='TruncatedRPNHead',
        in_channels=4,
        feat_channels=8,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[2, 3, 4, 6, 12],
            ratios=[0.5, 1.0, 2.0],
            strides=STRIDES),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0.0] * 4,
            target_stds=[1.0] * 4),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        train_cfg=ConfigDict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        test_cfg=ConfigDict(
            nms_pre=60,
            max_per_img=40,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0))
    cfg.update(kwargs)
    return cfg


def _feats(seed: int = 0, batch: int = 2):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(batch, 4, IMG // s, IMG // s, generator=gen)
        for s in STRIDES)


def _metas(batch: int = 2):
    return [
        dict(img_shape=(IMG, IMG), pad_shape=(IMG, IMG), scale_factor=(1, 1))
        for _ in range(batch)
    ]


def _gts(batch: int = 2):
    boxes = [[10., 12., 30., 34.], [40., 8., 56., 20.]]
    out = []
    for i in range(batch):
        gt = InstanceData()
        gt.bboxes = torch.tensor([boxes[i % 2]])
        gt.labels = torch.zeros(1, dtype=torch.long)
        out.append(gt)
    return out


def _randomise(head: torch.nn.Module, seed: int = 1) -> None:
    """Weights with std 0.3 so scores and deltas vary across anchors."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(head.named_parameters()):
            param.copy_(torch.randn(param.shape, generator=gen) * 0.3)


def _sorted_rows(boxes: torch.Tensor) -> torch.Tensor:
    boxes = boxes.clone()
    for col in reversed(range(boxes.size(1))):
        boxes = boxes[boxes[:, col].argsort(stable=True)]
    return boxes


def test_bad_threshold_raises():
    with pytest.raises(ValueError, match='truncate_thr'):
        MODELS.build(_head_cfg(truncate_thr='median'))
    with pytest.raises(ValueError, match='truncate_thr'):
        MODELS.build(_head_cfg(truncate_thr=1.5))


def test_forward_shapes():
    head = MODELS.build(_head_cfg())
    assert isinstance(head, TruncatedRPNHead)
    assert head.num_base_priors == 15
    cls_scores, bbox_preds, loc_preds = head(_feats())
    assert len(cls_scores) == len(bbox_preds) == len(loc_preds) == 2
    for s, cls, reg, loc in zip(STRIDES, cls_scores, bbox_preds, loc_preds):
        hw = IMG // s
        assert cls.shape == (2, 15, hw, hw)
        assert reg.shape == (2, 60, hw, hw)
        assert loc.shape == (2, 1, hw, hw)


def test_feature_weighting_changes_scores():
    """Eq. (1): the RPN sees p * I, not I."""
    on = MODELS.build(_head_cfg(weight_features=True))
    off = MODELS.build(_head_cfg(weight_features=False))
    _randomise(on)
    off.load_state_dict(on.state_dict())
    feats = _feats()
    cls_on = on(feats)[0][0]
    cls_off = off(feats)[0][0]
    assert not torch.allclose(cls_on, cls_off)
    # and equals the plain RPN applied to the weighted feature
    x = feats[0]
    p = on.conv_loc(x).sigmoid()
    ref = on.rpn_cls(torch.relu(on.rpn_conv(x * p)))
    torch.testing.assert_close(cls_on, ref)


def test_keep_mask_mean_is_per_image_and_level():
    head = MODELS.build(_head_cfg())
    logits = torch.zeros(2, 1, 4, 4)
    logits[0, 0, :2] = 3.0  # image 0: top half high
    logits[1, 0, :, :1] = -2.0  # image 1: first column low
    keep = head.location_keep_mask(logits)
    assert keep[0, 0, :2].all() and not keep[0, 0, 2:].any()
    assert keep[1, 0, :, 1:].all() and not keep[1, 0, :, :1].any()
    # a constant map keeps everything (>= the mean)
    assert head.location_keep_mask(torch.zeros(1, 1, 3, 3)).all()
    fixed = MODELS.build(_head_cfg(truncate_thr=0.6))
    prob = torch.tensor([[[[0.1, 0.59], [0.6, 0.9]]]])
    keep = fixed.location_keep_mask(torch.logit(prob))
    assert keep.tolist() == [[[[False, False], [True, True]]]]


def test_threshold_zero_is_plain_rpn():
    """No anchor is lost at threshold 0: same proposals and losses as
    mmdet's RPNHead with the same weights; the 'mean' threshold on the same
    weights gives different proposals, so the comparison is sensitive."""
    trpn = MODELS.build(
        _head_cfg(
            truncate_thr=0.0,
            weight_features=False,
            loss_loc=None,
            truncate_in_loss=False))
    plain_cfg = _head_cfg()
    plain_cfg['type'] = 'RPNHead'
    plain = MODELS.build(plain_cfg)
    _randomise(trpn)
    missing, unexpected = plain.load_state_dict(
        trpn.state_dict(), strict=False)
    assert not missing and unexpected == ['conv_loc.weight', 'conv_loc.bias']
    feats, metas = _feats(), _metas()

    outs = trpn(feats)
    props = trpn.predict_by_feat(*outs, batch_img_metas=metas)
    ref = plain.predict_by_feat(*plain(feats), batch_img_metas=metas)
    for got, exp in zip(props, ref):
        assert len(exp) == 40  # max_per_img reached: top-k/NMS matter
        torch.testing.assert_close(got.bboxes, exp.bboxes)
        torch.testing.assert_close(got.scores, exp.scores)

    torch.manual_seed(0)
    losses = trpn.loss_by_feat(*outs, _gts(), metas)
    torch.manual_seed(0)
    ref_losses = plain.loss_by_feat(*plain(feats), _gts(), metas)
    for key in ('loss_rpn_cls', 'loss_rpn_bbox'):
        torch.testing.assert_close(
            torch.stack(losses[key]), torch.stack(ref_losses[key]))
    assert losses['trpn_keep_ratio'].item() == 1.0

    trpn.truncate_thr = 'mean'
    truncated = trpn.predict_by_feat(*outs, batch_img_metas=metas)
    assert any(
        t.bboxes.shape != e.bboxes.shape or not torch.equal(t.bboxes, e.bboxes)
        for t, e in zip(truncated, ref))


def _identity_proposal_head(thr):
    """A head whose proposals are exactly its (clipped) kept anchors:
    zero box deltas, NMS that suppresses nothing, no top-k, no size filter,
    p read from input channel 0."""
    head = MODELS.build(
        _head_cfg(
            truncate_thr=thr,
            test_cfg=ConfigDict(
                nms_pre=-1,
                max_per_img=100000,
                nms=dict(type='nms', iou_threshold=1.0),
                min_bbox_size=-1)))
    _randomise(head)
    with torch.no_grad():
        head.rpn_reg.weight.zero_()
        head.rpn_reg.bias.zero_()
        head.conv_loc.weight.zero_()
        head.conv_loc.bias.zero_()
        head.conv_loc.weight[0, 0] = 1.0
    return head


@pytest.mark.parametrize('thr', ['mean', 0.3, 0.0])
def test_truncation_removes_exactly_the_anchors_below_threshold(thr):
    head = _identity_proposal_head(thr)
    feats = _feats(seed=3, batch=1)
    outs = head(feats)
    metas = _metas(1)
    props = head.predict_by_feat(*outs, batch_img_metas=metas)[0]

    priors = head.prior_generator.grid_priors(
        [f.shape[-2:] for f in feats], device='cpu')
    kept, removed = [], []
    for lvl, (loc, pri) in enumerate(zip(outs[2], priors)):
        prob = loc[0, 0].sigmoid().reshape(-1)
        thr_val = prob.mean() if thr == 'mean' else thr
        loc_keep = (prob >= thr_val).repeat_interleave(15)
        boxes = pri.clone()
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, IMG)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, IMG)
        kept.append(boxes[loc_keep])
        removed.append(boxes[~loc_keep])
    kept = torch.cat(kept)
    removed = torch.cat(removed)
    total = sum(p.size(0) for p in priors)
    if thr == 0.0:
        assert len(removed) == 0 and len(kept) == total
    else:
        assert 0 < len(kept) < total and len(removed) > 0
    if thr == 'mean':
        # the paper: about half of the locations survive
        assert 0.2 < len(kept) / total < 0.8
    # proposals are exactly the kept anchors (decoded with zero deltas)
    assert len(props) == len(kept)
    torch.testing.assert_close(
        _sorted_rows(props.bboxes), _sorted_rows(kept), atol=1e-4, rtol=0)
    if len(removed):
        # no proposal comes from a truncated-only anchor
        kept_set = {tuple(b) for b in kept.round(decimals=3).tolist()}
        only_removed = [
            b for b in removed.round(decimals=3).tolist()
            if tuple(b) not in kept_set
        ]
        assert only_removed
        ious = bbox_overlaps(torch.tensor(only_removed), props.bboxes)
        assert (ious.max(dim=1).values < 1 - 1e-4).all()


def test_truncation_before_nms_pre():
    """Truncated anchors must not take nms_pre slots."""
    head = _identity_proposal_head('mean')
    head.test_cfg.nms_pre = 30
    feats = _feats(seed=4, batch=1)
    outs = head(feats)
    props = head.predict_by_feat(*outs, batch_img_metas=_metas(1))[0]
    # each level contributes nms_pre proposals (both have > 30 kept anchors)
    assert len(props) == 2 * 30


def test_truncate_targets_keeps_positives():
    head = MODELS.build(_head_cfg())
    # one level, one image, 2 locations x 15 anchors
    labels = torch.ones(1, 30, dtype=torch.long)  # background
    weights = torch.zeros(1, 30)
    labels[0, 3] = 0  # positive at truncated location 0
    weights[0, [3, 5, 7, 20, 21]] = 1.0  # 5 sampled: 1 pos, 4 neg
    keep = torch.tensor([False, True]).reshape(1, 1, 1, 2)
    new, dropped = head.truncate_targets([labels], [weights], [keep])
    assert dropped == 2  # negatives 5 and 7 at location 0
    assert new[0][0, 3] == 1.0  # positive kept although truncated
    assert new[0][0, 5] == 0 and new[0][0, 7] == 0
    assert new[0][0, 20] == 1 and new[0][0, 21] == 1


def test_loss_and_gradients():
    feats = tuple(f.requires_grad_() for f in _feats())
    metas = _metas()
    # 1) gradient through the feature weighting alone (no auxiliary loss)
    head = MODELS.build(_head_cfg(loss_loc=None))
    _randomise(head)
    losses = head.loss_by_feat(*head(feats), _gts(), metas)
    assert set(losses) == {
        'loss_rpn_cls', 'loss_rpn_bbox', 'trpn_keep_ratio'
    }
    total = sum(sum(v) for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert head.conv_loc.weight.grad.abs().sum() > 0
    assert 0 < losses['trpn_keep_ratio'].item() < 1

    # 2) the auxiliary location loss alone also reaches p, and pushes p up
    # at locations with a positive anchor and down elsewhere
    head = MODELS.build(_head_cfg(weight_features=False))
    _randomise(head)
    outs = head(feats)
    for lp in outs[2]:
        lp.retain_grad()
    losses = head.loss_by_feat(*outs, _gts(), metas)
    assert len(losses['loss_rpn_loc']) == 2
    sum(losses['loss_rpn_loc']).backward()
    assert head.conv_loc.weight.grad.abs().sum() > 0
    assert head.rpn_cls.weight.grad is None  # loc loss only touches p
    pos_found = False
    for lvl, lp in enumerate(outs[2]):
        anchors = head.prior_generator.single_level_grid_priors(
            lp.shape[-2:], lvl, device='cpu')
        for img, gt in enumerate(_gts()):
            iou = bbox_overlaps(anchors, gt.bboxes).max(dim=1).values
            strong = (iou >= 0.7).reshape(-1, 15).any(dim=1)
            grad = lp.grad[img, 0].reshape(-1)
            if strong.any():
                pos_found = True
                assert (grad[strong] < 0).all()  # descent raises p there
            far = iou.reshape(-1, 15).max(dim=1).values == 0
            assert (grad[far] > 0).all()  # and lowers it far from lesions
    assert pos_found


def test_loss_with_empty_gt_and_truncation():
    head = MODELS.build(_head_cfg())
    _randomise(head)
    empty = InstanceData()
    empty.bboxes = torch.zeros(0, 4)
    empty.labels = torch.zeros(0, dtype=torch.long)
    losses = head.loss_by_feat(*head(_feats(batch=1)), [empty], _metas(1))
    assert sum(losses['loss_rpn_cls']) > 0
    assert sum(losses['loss_rpn_bbox']) == 0
    assert sum(losses['loss_rpn_loc']) > 0

    # truncation in the loss drops negatives: the classification loss
    # differs from the untruncated one on the same sampled anchors
    plain_cfg = _head_cfg(truncate_in_loss=False)
    untrunc = MODELS.build(plain_cfg)
    untrunc.load_state_dict(head.state_dict())
    feats, gts, metas = _feats(), _gts(), _metas()
    torch.manual_seed(0)
    a = head.loss_by_feat(*head(feats), gts, metas)
    torch.manual_seed(0)
    b = untrunc.loss_by_feat(*untrunc(feats), gts, metas)
    assert not torch.allclose(
        torch.stack(a['loss_rpn_cls']), torch.stack(b['loss_rpn_cls']))


def test_predict_requires_loc_maps():
    head = MODELS.build(_head_cfg())
    cls, reg, _ = head(_feats(batch=1))
    with pytest.raises(ValueError, match='location'):
        head.predict_by_feat(cls, reg, batch_img_metas=_metas(1))


def test_in_two_stage_detector_loss_and_predict():
    """Plugs into mmdet's FasterRCNN through config alone (3-slice input)."""
    from mmdet.testing import demo_mm_inputs
    head = _head_cfg(in_channels=16, feat_channels=16)
    head['anchor_generator']['strides'] = [8, 16]
    head.pop('train_cfg')
    head.pop('test_cfg')
    model_cfg = dict(
        type='FasterRCNN',
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[0.0] * 3,
            std=[255.0] * 3,
            bgr_to_rgb=False,
            pad_size_divisor=32),
        backbone=dict(
            type='ResNet',
            depth=18,
            num_stages=3,
            strides=(1, 2, 2),
            dilations=(1, 1, 1),
            out_indices=(1, 2),
            base_channels=8,
            norm_cfg=dict(type='BN'),
            init_cfg=None),
        neck=dict(
            type='FPN', in_channels=[16, 32], out_channels=16, num_outs=2),
        rpn_head=head,
        roi_head=dict(
            type='StandardRoIHead',
            bbox_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(
                    type='RoIAlign', output_size=7, sampling_ratio=0),
                out_channels=16,
                featmap_strides=[8, 16]),
            bbox_head=dict(
                type='Shared2FCBBoxHead',
                in_channels=16,
                fc_out_channels=32,
                roi_feat_size=7,
                num_classes=1,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0.0] * 4,
                    target_stds=[0.1, 0.1, 0.2, 0.2]),
                loss_cls=dict(type='CrossEntropyLoss', loss_weight=1.0),
                loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
        train_cfg=dict(
            rpn=_head_cfg()['train_cfg'],
            rpn_proposal=dict(
                nms_pre=200,
                max_per_img=100,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0),
            rcnn=dict(
                assigner=dict(
                    type='MaxIoUAssigner',
                    pos_iou_thr=0.5,
                    neg_iou_thr=0.5,
                    min_pos_iou=0.5,
                    match_low_quality=False,
                    ignore_iof_thr=-1),
                sampler=dict(
                    type='RandomSampler',
                    num=64,
                    pos_fraction=0.25,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=True),
                pos_weight=-1,
                debug=False)),
        test_cfg=dict(
            rpn=dict(
                nms_pre=200,
                max_per_img=50,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0),
            rcnn=dict(
                score_thr=0.0,
                nms=dict(type='nms', iou_threshold=0.5),
                max_per_img=20)))
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(ConfigDict(copy.deepcopy(model_cfg)))
    data = demo_mm_inputs(
        batch_size=2, image_shapes=(3, 96, 96), num_items=[1, 2],
        num_classes=2)
    for sample in data['data_samples']:
        sample.gt_instances.labels[:] = 0
    model.train()
    batch = model.data_preprocessor(data, True)
    losses = model(**batch, mode='loss')
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_rpn_loc',
            'trpn_keep_ratio', 'loss_cls', 'loss_bbox'} <= set(losses)
    total, _ = model.parse_losses(losses)
    total.backward()
    assert model.rpn_head.conv_loc.weight.grad is not None
    model.eval()
    with torch.no_grad():
        batch = model.data_preprocessor(data, False)
        results = model(**batch, mode='predict')
    assert len(results) == 2
    assert results[0].pred_instances.bboxes.shape[1] == 4
