# Demo-sized FPN baseline (faster_rcnn_r50_fpn_1x_deeplesion_3slice.py) for
# the generated demo data (python tools/misc/generate_demo_data.py --out
# data/demo_deeplesion): ResNet-18 with 16 base channels, random init
# (init_cfg=None), 32-channel FPN / RPN / RoI features, 256 x 256 input, a
# fixed 12-epoch Adam schedule; trains on 2 CPU cores in minutes.
# Every ElixirNet demo config inherits this file, so they share data,
# schedule and backbone; tools/analysis_tools/eval_elixirnet_demo.py trains
# and compares them.
_base_ = './faster_rcnn_r50_fpn_1x_deeplesion_3slice.py'

data_root = 'data/demo_deeplesion/'
img_scale = (256, 256)

model = dict(
    backbone=dict(
        depth=18,
        base_channels=16,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=128)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))

train_pipeline = [
    dict(type='LoadDeepLesionSlices', num_slices=3, interval_mm=2.0),
    dict(type='WindowHU', window=(-1024., 1050.), out_range=(-1., 1.)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackDetInputs', meta_keys={{_base_.meta_keys}})
]
test_pipeline = [
    dict(type='LoadDeepLesionSlices', num_slices=3, interval_mm=2.0),
    dict(type='WindowHU', window=(-1024., 1050.), out_range=(-1., 1.)),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys={{_base_.meta_keys}})
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(dump_detections=False)
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
