# The main job of the README (tools/run_demo.py): a small two-stage baseline,
# mmdet's Faster R-CNN with a ResNet-18 FPN (16 base channels, 32-channel
# FPN; trained from scratch, no pretrained weights), on the synthetic demo
# DeepLesion set, 3 slices at 2 mm. Trains in a few minutes on 2 CPU cores.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/demo_deeplesion_3slice.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmlesion'], allow_failed_imports=False)
default_scope = 'mmdet'

channels = 32
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
        base_channels=16,
        frozen_stages=-1,
        # From scratch: BN statistics must be learned, not frozen.
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=channels),
    rpn_head=dict(
        in_channels=channels,
        feat_channels=channels,
        # Lesions of 4-60 mm are 3-46 px at ~1.4 mm/px: anchors of 16 px at
        # P2 (stride 4) up to 256 px at P6 (mmdet's default 32 px at P2
        # cannot match the small ones).
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[4],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(
            in_channels=channels, fc_out_channels=128, num_classes=1)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=300),
        rcnn=dict(score_thr=0.01, max_per_img=50)))

train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = dict(num_workers=0, persistent_workers=False)

max_epochs = 36
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=12)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10., norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[30],
        gamma=0.1)
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(
        type='AtomicCheckpointHook',
        interval=12,
        max_keep_ckpts=2,
        save_best='froc/sens@4',
        rule='greater'),
    visualization=dict(type='LesionVisualizationHook'))
val_evaluator = dict(type='FROCMetric', with_coco_map=True)
test_evaluator = val_evaluator
auto_scale_lr = dict(enable=False, base_batch_size=2)
