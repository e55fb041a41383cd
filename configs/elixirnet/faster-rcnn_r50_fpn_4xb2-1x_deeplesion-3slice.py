# Plain mmdet Faster R-CNN R50-FPN on DeepLesion, 3 slices: the "FPN"
# baseline of ElixirNet (Tables 1 and 5, first row of the ablation). mmdet's
# own model config with one class and CT input (windowed to [-1, 1], no
# mean/std); the paper's anchors (scales 2/3/4/6/12, ratios 0.5/1/2).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/deeplesion_3slice.py',
    '../_base_/schedules/schedule_elixirnet_1x.py',
    '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmlesion'], allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[0., 0., 0.],
        std=[1., 1., 1.],
        bgr_to_rgb=False,
        pad_size_divisor=32,
        pad_value=-1.),  # pad with air
    # "Five anchor scales (2, 3, 4, 6, 12) and three aspect ratios of
    # (0.5, 1, 2)" (Sec. Experiments); "unless otherwise noted, settings
    # are the same for all experiments": the baselines share them, so each
    # ablation row changes one component only (strides: the detector's).
    rpn_head=dict(
        anchor_generator=dict(scales=[2, 3, 4, 6, 12],
                              ratios=[0.5, 1.0, 2.0])),
    roi_head=dict(bbox_head=dict(num_classes=1)))

# ElixirNet reports sensitivity at 0.5, 1, 2, 3, 4, 8, 16 FPs and COCO mAP.
val_evaluator = dict(
    type='FROCMetric', fp_rates=(0.5, 1, 2, 3, 4, 8, 16), with_coco_map=True)
test_evaluator = val_evaluator
default_hooks = dict(
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3,
        save_best='froc/sens@3', rule='greater'))
