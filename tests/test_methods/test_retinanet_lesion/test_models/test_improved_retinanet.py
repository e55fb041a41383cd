# Copyright (c) mmlesion contributors. All rights reserved.
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope

import mmlesion.methods.retinanet_lesion  # noqa: F401  (registers its components)

init_default_scope('mmdet')

TINY = ConfigDict(
    type='ImprovedRetinaNet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[0., 0., 0.],
        std=[1., 1., 1.],
        bgr_to_rgb=False,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNetWithStem',
        depth=18,
        base_channels=8,
        norm_eval=False,
        init_cfg=None),
    neck=dict(
        type='DenseFPN',
        in_channels=[8, 16, 32, 64],
        out_channels=16,
        num_outs=5,
        stem_channels=8,
        dense_channels=8,
        attention_gates=('laterals', 'skips')),
    bbox_head=dict(
        type='RetinaHead',
        num_classes=1,
        in_channels=16,
        stacked_convs=1,
        feat_channels=16,
        anchor_generator=dict(
            type='AnchorGenerator',
            strides=[4, 8, 16, 32, 64],
            base_sizes=[32, 64, 128, 256, 512],
            ratios=[1 / 3.27, 1 / 1.78, 1.0, 1.78, 3.27],
            scales=[0.425, 0.540, 0.680]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    seg_head=dict(type='LesionSegHead', in_channels=8, feat_channels=8),
    score_calibration=dict(mask_thr=0.5),
    train_cfg=dict(
        assigner=dict(
            type='MaxIoUAssigner',
            pos_iou_thr=0.5,
            neg_iou_thr=0.4,
            min_pos_iou=0,
            ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=200,
        min_bbox_size=0,
        score_thr=0.0,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=20))


def _build(**overrides):
    cfg = copy.deepcopy(TINY)
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _packed(with_mask=True):
    # two 3-slice images of different sizes (the second gets padded)
    packed = demo_mm_inputs(
        2, [(3, 96, 96), (3, 64, 80)],
        num_items=[2, 1],
        num_classes=2,
        with_mask=with_mask)
    for sample in packed['data_samples']:
        sample.gt_instances.labels = sample.gt_instances.labels * 0
    return packed


def test_loss_and_backward():
    model = _build()
    data = model.data_preprocessor(_packed(), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_seg'}
    total = sum(sum(v) if isinstance(v, list) else v for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    for name in ('neck.dense_gates.0.psi.conv.weight',
                 'neck.fpn_gates.0.psi.conv.weight',
                 'neck.dense_skips.1.0.conv.weight',
                 'seg_head.conv_seg.weight', 'backbone.conv1.weight'):
        param = dict(model.named_parameters())[name]
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_loss_needs_masks():
    model = _build()
    data = model.data_preprocessor(_packed(with_mask=False), True)
    with pytest.raises(ValueError, match='gt_instances.masks'):
        model(**data, mode='loss')


def test_predict_rescaled_and_calibrated():
    # mask_thr 0: the whole image is one mask component, every box overlaps
    model = _build(
        return_seg_map=True, score_calibration=dict(mask_thr=0.)).eval()
    plain = _build(score_calibration=None).eval()
    plain.load_state_dict(model.state_dict())
    packed = _packed()
    with torch.no_grad():
        out = model(**model.data_preprocessor(packed, False), mode='predict')
        ref = plain(**plain.data_preprocessor(packed, False), mode='predict')
    for res, base, sample in zip(out, ref, packed['data_samples']):
        pred = res.pred_instances
        assert len(pred) == len(base.pred_instances) > 0
        # boxes in original-image coordinates
        ori_h, ori_w = sample.metainfo['ori_shape']
        assert float(pred.bboxes[:, 2].max()) <= ori_w + 1e-3
        assert float(pred.bboxes[:, 3].max()) <= ori_h + 1e-3
        # sorted by calibrated score, p * (1 + IoU) with the same boxes
        assert torch.all(pred.scores[:-1] >= pred.scores[1:])
        order = torch.argsort(base.pred_instances.scores, descending=True)
        base_sorted = base.pred_instances[order]
        key = lambda inst: {  # noqa: E731
            tuple(b.round(decimals=3).tolist()): s.item()
            for b, s in zip(inst.bboxes, inst.scores)
        }
        calibrated, uncalibrated = key(pred), key(base_sorted)
        assert calibrated.keys() == uncalibrated.keys()
        for box, score in calibrated.items():
            assert score >= uncalibrated[box] - 1e-6
            assert score <= 2 * uncalibrated[box] + 1e-6
        assert torch.all((pred.mask_box_ious > 0) & (pred.mask_box_ious <= 1))
        torch.testing.assert_close(
            pred.scores,
            torch.tensor([uncalibrated[b]
                          for b in calibrated]) * (1 + pred.mask_box_ious))
        assert res.pred_sem_seg.sem_seg.shape == (1, ori_h, ori_w)


def test_calibration_raises_score_of_segmented_detection():
    """Hand case through the detector: a seg map matching a box doubles it."""
    from mmengine.structures import InstanceData
    model = _build()
    results = InstanceData(
        bboxes=torch.tensor([[10., 10., 20., 30.], [40., 40., 50., 50.]]),
        scores=torch.tensor([0.3, 0.4]),
        labels=torch.zeros(2, dtype=torch.long))
    prob = torch.zeros(64, 64)
    prob[10:30, 10:20] = 0.9
    out = model.calibrate([results], [prob])[0]
    torch.testing.assert_close(out.scores, torch.tensor([0.6, 0.4]))
    torch.testing.assert_close(out.mask_box_ious, torch.tensor([1.0, 0.0]))


def test_without_seg_head_and_tensor_mode():
    model = _build(seg_head=None)
    data = model.data_preprocessor(_packed(with_mask=False), True)
    losses = model(**data, mode='loss')
    assert 'loss_seg' not in losses
    full = _build()
    outs = full(data['inputs'], data['data_samples'], mode='tensor')
    cls_scores, bbox_preds, seg_logits = outs
    assert len(cls_scores) == len(bbox_preds) == 5
    assert cls_scores[0].shape[-2:] == (24, 24)  # P2 of the 96 x 96 batch
    assert cls_scores[0].shape[1] == 15  # 5 ratios x 3 scales, 1 class
    assert seg_logits.shape == (2, 1, 96, 96)


def test_bad_configuration():
    with pytest.raises(ValueError, match='score_calibration'):
        _build(score_calibration=dict(threshold=0.5))
    with pytest.raises(ValueError, match='num_dense_levels'):
        _build(num_dense_levels=0)
