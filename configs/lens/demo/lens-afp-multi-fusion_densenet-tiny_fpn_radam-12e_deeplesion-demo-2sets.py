# LENS demo, Table I row (c): AFP + multi-dataset + proposal fusion, on the
# two synthetic sets (partially + fully labelled), CPU-sized: a tiny 2.5D
# DenseNet (growth 8, blocks 2-2-2, from scratch, init_cfg=None), 32-channel
# FPN, 128-d shared FCs. RAdam at lr 1e-3 (the paper's 1e-4 is for an
# ImageNet-initialised DenseNet-121; from scratch the tiny model needs more),
# 12 epochs, x0.1 after 8 and 10 (the paper's 4/8 and 6/8 of the schedule).
_base_ = [
    '../../_base_/models/lens_densenet121_fpn.py',
    '../../_base_/datasets/lens_demo_2sets_9slice.py',
    '../../_base_/schedules/schedule_lens_radam_8e.py',
    '../../_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.lens'],
    allow_failed_imports=False)
default_scope = 'mmdet'

channels = 32
model = dict(
    num_datasets=2,
    dataset_names=['demo_partial', 'demo_lung'],
    backbone=dict(
        growth_rate=8,
        block_config=(2, 2, 2),
        num_init_features=16,
        bn_size=2,
        init_cfg=None),
    neck=dict(in_channels=[32, 32, 32], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(in_channels=channels, fc_out_channels=128)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        proposal_fusion=dict(max_per_img=300)),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=300),
        proposal_fusion=dict(max_per_img=300),
        rcnn=dict(max_per_img=50),
        expert_fusion=dict(experts=None, max_per_img=50)))

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=12)
optim_wrapper = dict(
    optimizer=dict(type='RAdam', lr=1e-3),
    clip_grad=dict(max_norm=10., norm_type=2))
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[8, 10],
        gamma=0.1)
]
default_hooks = dict(
    random_state=dict(type='RandomStateHook'),
    logger=dict(type='LoggerHook', interval=25),
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=12, max_keep_ckpts=1))
