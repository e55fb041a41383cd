# Demo-sized FPN baseline (faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py) for
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
# schedule and backbone; projects/elixirnet/tools/eval_elixirnet_demo.py trains
# and compares them.
_base_ = '../../demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'

# The main demo model (ResNet-18 with 16 base channels, random init,
# 32-channel FPN / RPN / RoI features, 256 x 256 input), with the ElixirNet
# anchors and a fixed 12-epoch Adam schedule.
model = dict(
    rpn_head=dict(anchor_generator=dict(scales=[2, 3, 4, 6, 12])))

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
        type='AtomicCheckpointHook', interval=max_epochs, max_keep_ckpts=1,
        save_best=None, rule=None))
