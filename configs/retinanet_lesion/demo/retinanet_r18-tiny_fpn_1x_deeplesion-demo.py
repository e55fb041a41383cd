# Demo-sized Table 1 row "original RetinaNet" (see
# retinanet_r50_fpn_1xb4-adam-plateau-50e_deeplesion.py) for the generated demo data
# (python tools/misc/generate_demo_data.py --out data/demo_deeplesion,
# 256 x 256 slices): ResNet-18 with 16 base channels, 32-channel FPN and
# heads, random init (init_cfg=None), a fixed 12-epoch Adam schedule (no
# plateau / early stopping, so that every row trains for the same number of
# steps), CPU friendly. The other demo rows inherit this file:
#   retinanet-optanchors_r18-tiny_fpn_1x_deeplesion-demo.py
#   improved-retinanet_r18-tiny_densefpn_1x_deeplesion-demo.py
#   improved-retinanet_r18-tiny_densefpn-ag_1x_deeplesion-demo.py
# projects/retinanet_lesion/tools/eval_retinanet_lesion_demo.py trains and compares
# them.
_base_ = '../retinanet_r50_fpn_1xb4-adam-plateau-50e_deeplesion.py'
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.retinanet_lesion'],
    allow_failed_imports=False)
default_scope = 'mmdet'

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
    bbox_head=dict(in_channels=32, feat_channels=32, stacked_convs=2))

train_pipeline = [
    dict(type='LoadDeepLesionSlices', num_slices=3, interval_mm=2.0),
    dict(type='WindowHU', window=(-1024., 1050.), out_range=(-1., 1.)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(
        type='MultiSliceRandomAffine',
        max_rotate_degree=5.73,
        max_shear_degree=5.73,
        max_translate_ratio=0.1,
        scaling_ratio_range=(0.9, 1.1),
        border_val=-1.),
    dict(type='PackDetInputs', meta_keys={{_base_.meta_keys}})
]
test_pipeline = [
    # mmdet's inference APIs: slice paths, arrays, volume + key slice
    dict(type='LesionInferencerLoader'),
    dict(type='LoadDeepLesionSlices', num_slices=3, interval_mm=2.0),
    dict(type='WindowHU', window=(-1024., 1050.), out_range=(-1., 1.)),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys={{_base_.meta_keys}})
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='FROCMetric', with_coco_map=True, dump_detections=False)
test_evaluator = val_evaluator

# Fixed demo schedule, identical for every row.
max_epochs = 12
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=4)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(
        type='MultiStepLR',
        by_epoch=True,
        begin=0,
        end=max_epochs,
        milestones=[9],
        gamma=0.1)
]
custom_hooks = [dict(type='CheckpointCheckHook'),
                dict(type='DataConventionHook')]  # no early stopping
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(
        _delete_=True,
        type='AtomicCheckpointHook',
        interval=max_epochs,
        max_keep_ckpts=1))
