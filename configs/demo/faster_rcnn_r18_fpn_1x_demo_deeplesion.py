# The main job of the README: a small two-stage baseline (mmdet's Faster
# R-CNN, ResNet-18 FPN with 64 channels, trained from scratch: no
# pretrained weights) on the synthetic demo DeepLesion set, 3 slices at 2 mm.
# Trains in a few minutes on 2 CPU cores (tools/run_demo.py).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/demo_deeplesion_3slice.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmlesion'], allow_failed_imports=False)
default_scope = 'mmdet'

channels = 64
model = dict(
    # Images are windowed to [-1, 1] by WindowHU: no mean/std; pad with air.
    data_preprocessor=dict(
        mean=[0., 0., 0.],
        std=[1., 1., 1.],
        bgr_to_rgb=False,
        pad_size_divisor=32,
        pad_value=-1.),
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        # From scratch: BN statistics must be learned, not frozen.
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=channels),
    rpn_head=dict(
        in_channels=channels,
        feat_channels=channels,
        # Lesions of 3-60 mm are 2-40 px at 1.5 mm/px: anchors of 16 px at
        # P2 (stride 4) up to 256 px at P6.
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[4],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            in_channels=channels, fc_out_channels=256, num_classes=1)),
    train_cfg=dict(
        rpn=dict(assigner=dict(pos_iou_thr=0.5, neg_iou_thr=0.3)),
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=256))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=300),
        rcnn=dict(score_thr=0.01, max_per_img=50)))

max_epochs = 10
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[8],
        gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(
        type='CheckpointHook',
        interval=5,
        max_keep_ckpts=2,
        save_best='froc/sens@4',
        rule='greater'),
    visualization=dict(type='LesionVisualizationHook'))
val_evaluator = dict(type='FROCMetric', with_coco_map=True)
test_evaluator = val_evaluator
auto_scale_lr = dict(enable=False, base_batch_size=4)
