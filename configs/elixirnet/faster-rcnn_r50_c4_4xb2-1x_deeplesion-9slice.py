# Plain mmdet Faster R-CNN R50-C4 on DeepLesion, 9 slices (see
# faster-rcnn_r50_c4_4xb2-1x_deeplesion-3slice.py): three 3-slice groups through
# the shared ImageNet stem, fused (SliceGroupResNet, see
# faster-rcnn_r50_fpn_4xb2-1x_deeplesion-9slice.py).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50-caffe-c4.py',
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
    backbone=dict(
        type='SliceGroupResNet',
        num_slice_groups=3,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    # "Five anchor scales (2, 3, 4, 6, 12) and three aspect ratios of
    # (0.5, 1, 2)" (Sec. Experiments); "unless otherwise noted, settings
    # are the same for all experiments": the baselines share them, so each
    # ablation row changes one component only (strides: the detector's).
    rpn_head=dict(
        anchor_generator=dict(scales=[2, 3, 4, 6, 12],
                              ratios=[0.5, 1.0, 2.0])),
    roi_head=dict(
        shared_head=dict(
            style='pytorch',
            init_cfg=dict(
                type='Pretrained', checkpoint='torchvision://resnet50')),
        bbox_head=dict(num_classes=1)),
    # mmcv's batched_nms runs one NMS per level once more than split_thr
    # (default 10000) boxes come in, and then writes float32 scores into a
    # float16 tensor: under AMP that fails (index_put dtype mismatch). The
    # C4 RPN keeps 12000 boxes of a single level, so one NMS call over all of
    # them (split_thr > nms_pre; the split path starts at split_thr boxes)
    # gives the same proposals.
    train_cfg=dict(
        rpn_proposal=dict(
            nms=dict(type='nms', iou_threshold=0.7, split_thr=12001))))

val_evaluator = dict(
    type='FROCMetric', fp_rates=(0.5, 1, 2, 3, 4, 8, 16), with_coco_map=True)
test_evaluator = val_evaluator
default_hooks = dict(
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3,
        save_best='froc/sens@3', rule='greater'))
