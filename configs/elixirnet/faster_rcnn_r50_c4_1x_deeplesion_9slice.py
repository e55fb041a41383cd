# Plain mmdet Faster R-CNN R50-C4 on DeepLesion, 9 slices (see
# faster_rcnn_r50_c4_1x_deeplesion_3slice.py): three 3-slice groups through
# the shared ImageNet stem, fused (SliceGroupResNet, see
# faster_rcnn_r50_fpn_1x_deeplesion_9slice.py).
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
    roi_head=dict(
        shared_head=dict(
            style='pytorch',
            init_cfg=dict(
                type='Pretrained', checkpoint='torchvision://resnet50')),
        bbox_head=dict(num_classes=1)))

val_evaluator = dict(
    type='FROCMetric', fp_rates=(0.5, 1, 2, 3, 4, 8, 16), with_coco_map=True)
test_evaluator = val_evaluator
default_hooks = dict(
    checkpoint=dict(
        type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3,
        save_best='froc/sens@3', rule='greater'))
