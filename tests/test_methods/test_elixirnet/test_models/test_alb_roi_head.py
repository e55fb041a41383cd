# Copyright (c) mmlesion contributors. All rights reserved.
"""ALBRoIHead alone and inside a tiny Faster R-CNN (ResNet-18 layout with
few channels, no pretrained weights) on fake 3-slice inputs."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import ConfigDict

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.elixirnet.models import ALBRoIHead


def _tiny_faster_rcnn(bbox_head: dict) -> ConfigDict:
    coder = dict(
        type='DeltaXYWHBBoxCoder',
        target_means=[0., 0., 0., 0.],
        target_stds=[0.1, 0.1, 0.2, 0.2])
    bbox_head = dict(
        in_channels=16,
        roi_feat_size=7,
        conv_out_channels=16,
        bbox_coder=coder,
        reg_class_agnostic=False,
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0),
        **bbox_head)
    return ConfigDict(
        type='FasterRCNN',
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[0., 0., 0.],
            std=[255., 255., 255.],
            bgr_to_rgb=False,
            pad_size_divisor=32),
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=8,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            frozen_stages=-1,
            norm_cfg=dict(type='BN', requires_grad=True),
            norm_eval=False,
            style='pytorch',
            init_cfg=None),
        neck=dict(
            type='FPN',
            in_channels=[8, 16, 32, 64],
            out_channels=16,
            num_outs=5),
        rpn_head=dict(
            type='RPNHead',
            in_channels=16,
            feat_channels=16,
            anchor_generator=dict(
                type='AnchorGenerator',
                scales=[8],
                ratios=[0.5, 1.0, 2.0],
                strides=[4, 8, 16, 32, 64]),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        roi_head=dict(
            type='ALBRoIHead',
            bbox_roi_extractor=dict(
                type='SingleRoIExtractor',
                roi_layer=dict(
                    type='RoIAlign', output_size=7, sampling_ratio=0),
                out_channels=16,
                featmap_strides=[4, 8, 16, 32]),
            bbox_head=bbox_head),
        train_cfg=dict(
            rpn=dict(
                assigner=dict(
                    type='MaxIoUAssigner',
                    pos_iou_thr=0.7,
                    neg_iou_thr=0.3,
                    min_pos_iou=0.3,
                    match_low_quality=True,
                    ignore_iof_thr=-1),
                sampler=dict(
                    type='RandomSampler',
                    num=64,
                    pos_fraction=0.5,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=False),
                allowed_border=-1,
                pos_weight=-1,
                debug=False),
            rpn_proposal=dict(
                nms_pre=200,
                max_per_img=50,
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
                    num=32,
                    pos_fraction=0.25,
                    neg_pos_ub=-1,
                    add_gt_as_proposals=True),
                pos_weight=-1,
                debug=False)),
        test_cfg=dict(
            rpn=dict(
                nms_pre=200,
                max_per_img=30,
                nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0),
            rcnn=dict(
                score_thr=0.0,
                nms=dict(type='nms', iou_threshold=0.5),
                max_per_img=20)))


def _fake_inputs(num_classes: int) -> dict:
    """Two fake 3-slice images (96x128 and 64x96) with 2 and 1 boxes."""
    packed = demo_mm_inputs(
        batch_size=2,
        image_shapes=[(3, 96, 128), (3, 64, 96)],
        num_items=[2, 1],
        num_classes=num_classes + 1)
    for sample in packed['data_samples']:
        # demo_mm_inputs draws labels in [1, num_classes): shift to [0, n)
        sample.gt_instances.labels = sample.gt_instances.labels - 1
    return packed


def test_rois_to_num_rois():
    rois = torch.tensor([[0., 1, 1, 5, 5], [0, 2, 2, 6, 6], [2, 0, 0, 3, 3]])
    assert ALBRoIHead.rois_to_num_rois(rois) == [2, 0, 1]
    assert ALBRoIHead.rois_to_num_rois(rois, num_imgs=4) == [2, 0, 1, 0]
    assert ALBRoIHead.rois_to_num_rois(torch.zeros(0, 5), 2) == [0, 0]
    with pytest.raises(ValueError, match='grouped by image'):
        ALBRoIHead.rois_to_num_rois(rois.flip(0))
    with pytest.raises(ValueError, match='out of range'):
        ALBRoIHead.rois_to_num_rois(rois, num_imgs=2)


@pytest.mark.parametrize('bbox_head,num_classes', [
    (dict(type='ALBBBoxHead', num_classes=1), 1),
    (dict(type='RTMBBoxHead', num_classes=8, rtm_channels=8), 8),
])
def test_tiny_faster_rcnn_loss_and_predict(bbox_head, num_classes):
    register_all_modules()  # default scope 'mmdet' for the sub-modules
    torch.manual_seed(0)
    model = MODELS.build(_tiny_faster_rcnn(bbox_head))
    model.init_weights()
    packed = _fake_inputs(num_classes)
    data = model.data_preprocessor(packed, True)

    model.train()
    losses = model(**data, mode='loss')
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls',
            'loss_bbox'} <= set(losses)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    copy.deepcopy(model)  # no non-leaf tensor kept on modules (EMA hooks)
    roi_head = model.roi_head
    stem_grad = roi_head.bbox_head.stem.conv.weight.grad
    assert stem_grad is not None and stem_grad.abs().sum() > 0
    # one graph per image, aligned with the sampled RoIs of that image
    counts = ALBRoIHead.rois_to_num_rois(roi_head.last_rois, 2)
    assert [g.shape[0] for g in roi_head.bbox_head.last_adjacency] == counts
    assert all(n > 0 for n in counts)

    model.eval()
    with torch.no_grad():
        results = model(
            **model.data_preprocessor(packed, False), mode='predict')
    assert len(results) == 2
    for res in results:
        pred = res.pred_instances
        assert pred.bboxes.shape[1] == 4
        assert len(pred.bboxes) == len(pred.scores) == len(pred.labels)
        assert len(pred.bboxes) <= 20
        if len(pred.labels):
            assert int(pred.labels.max()) < num_classes
    proposals_per_img = ALBRoIHead.rois_to_num_rois(roi_head.last_rois, 2)
    assert [g.shape for g in roi_head.bbox_head.last_adjacency
            ] == [(n, n) for n in proposals_per_img]


def test_standard_roi_head_is_refused_clearly():
    register_all_modules()
    cfg = _tiny_faster_rcnn(dict(type='ALBBBoxHead', num_classes=1))
    cfg.roi_head.type = 'StandardRoIHead'
    model = MODELS.build(cfg)
    packed = _fake_inputs(1)
    data = model.data_preprocessor(packed, True)
    with pytest.raises(ValueError, match='ALBRoIHead'):
        model(**data, mode='loss')


def test_refuses_a_head_without_num_rois():
    register_all_modules()
    cfg = _tiny_faster_rcnn(dict(type='ALBBBoxHead', num_classes=1))
    cfg.roi_head.bbox_head = dict(
        type='Shared2FCBBoxHead',
        in_channels=16,
        fc_out_channels=16,
        roi_feat_size=7,
        num_classes=1)
    with pytest.raises(TypeError, match='num_rois'):
        MODELS.build(cfg)
