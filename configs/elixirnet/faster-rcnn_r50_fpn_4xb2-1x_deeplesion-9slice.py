# Plain mmdet Faster R-CNN R50-FPN on DeepLesion, 9 slices (the 9-slice
# baseline of ElixirNet Table 5). 3DCE / MULAN input: the 9 slices are read as
# three 3-slice images that share the ImageNet stem (conv1, bn1, relu of
# torchvision://resnet50, loaded unchanged) and are fused by a 1x1 conv that
# starts as the identity on the centre group (SliceGroupResNet); the rest is
# mmdet's R50 as in the 3-slice config (frozen_stages=1). The alternative, a
# 9-channel conv1 trained from scratch: faster_rcnn_r50-9ch_fpn_1x_...
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/deeplesion_9slice.py',
    '../_base_/schedules/schedule_elixirnet_1x.py',
    '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmlesion'], allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(
    # mmengine's ImgDataPreprocessor accepts 1 or 3 mean/std values only;
    # the input is already windowed, so normalisation is simply off.
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=None,
        std=None,
        bgr_to_rgb=False,
        pad_size_divisor=32,
        pad_value=-1.),  # pad with air
    backbone=dict(type='SliceGroupResNet', num_slice_groups=3),
    # "Five anchor scales (2, 3, 4, 6, 12) and three aspect ratios of
    # (0.5, 1, 2)" (Sec. Experiments); "unless otherwise noted, settings
    # are the same for all experiments": the baselines share them, so each
    # ablation row changes one component only (strides: the detector's).
    rpn_head=dict(
        anchor_generator=dict(scales=[2, 3, 4, 6, 12],
                              ratios=[0.5, 1.0, 2.0])),
    roi_head=dict(bbox_head=dict(num_classes=1)))

val_evaluator = dict(
    type='FROCMetric', fp_rates=(0.5, 1, 2, 3, 4, 8, 16), with_coco_map=True)
test_evaluator = val_evaluator
default_hooks = dict(
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3,
        save_best='froc/sens@3', rule='greater'))
