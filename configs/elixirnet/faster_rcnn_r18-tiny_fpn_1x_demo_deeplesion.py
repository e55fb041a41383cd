# Demo-sized FPN baseline (faster_rcnn_r50_fpn_1x_deeplesion_3slice.py) for
# the generated demo data (python tools/misc/generate_demo_data.py --out
# data/demo_deeplesion; data pipeline of configs/_base_/datasets/
# demo_deeplesion_3slice.py): ResNet-18 with 16 base channels, random init
# (init_cfg=None), 32-channel FPN / RPN / RoI features, 256 x 256 input, a
# fixed 12-epoch Adam schedule; trains on 2 CPU cores in minutes.
# Anchors: the ElixirNet set (scales 2/3/4/6/12, ratios 0.5/1/2). mmdet's
# default (one scale of 8, i.e. 32 px at P2) cannot match the 2-40 px
# lesions of the demo images, and with the same anchors the demo rows
# differ only by the ElixirNet modules.
# Every ElixirNet demo config inherits this file, so they share data,
# schedule and backbone; tools/analysis_tools/eval_elixirnet_demo.py trains
# and compares them.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/demo_deeplesion_3slice.py',
    '../_base_/schedules/schedule_elixirnet_1x.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmlesion'], allow_failed_imports=False)
default_scope = 'mmdet'

channels = 32
model = dict(
    # windowed CT input: no mean/std; pad with air (-1)
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[0., 0., 0.],
        std=[1., 1., 1.],
        bgr_to_rgb=False,
        pad_size_divisor=32,
        pad_value=-1.),
    backbone=dict(
        depth=18,
        base_channels=16,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=channels),
    rpn_head=dict(
        in_channels=channels,
        feat_channels=channels,
        anchor_generator=dict(scales=[2, 3, 4, 6, 12])),
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

val_evaluator = dict(
    type='FROCMetric',
    fp_rates=(0.5, 1, 2, 3, 4, 8, 16),
    with_coco_map=True,
    dump_detections=False)
test_evaluator = val_evaluator

# Fixed demo schedule, identical for every ElixirNet demo row (no best-
# checkpoint selection, so every row trains for the same number of steps).
max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10., norm_type=2))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='MultiStepLR',
        by_epoch=True,
        begin=0,
        end=max_epochs,
        milestones=[9],
        gamma=0.1)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(
        type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1,
        save_best=None))
