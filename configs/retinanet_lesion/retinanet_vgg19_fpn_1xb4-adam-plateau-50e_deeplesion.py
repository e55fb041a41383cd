# Improved RetinaNet (Zlocha et al. 2019), Table 1 row "original RetinaNet":
# RetinaNet with its default configuration (heads on P3-P7, anchor sizes
# 32..512, ratios 1:2, 1:1, 2:1, scales 2^0, 2^(1/3), 2^(2/3)) on the
# paper's backbone, VGG-19 (Sec. 2.1: "Our specific network follows the
# structure of VGG-19 [...] We also explored ResNet-50 as used originally,
# but its performance was worse on DeepLesion"), ImageNet weights of
# torchvision's vgg19; one class 'lesion', 3 DeepLesion slices at 2 mm
# windowed to [-1024, 1050] HU -> [-1, 1], the paper's augmentation
# (Sec. 3.1) and training schedule (Sec. 2.3). The next rows inherit this
# file, each adding one step of the ablation:
#   retinanet-optanchors_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion.py   (+ anchors)
#   improved-retinanet_vgg19_densefpn_1xb4-adam-plateau-50e_deeplesion.py (+ dense)
#   improved-retinanet_vgg19_densefpn-ag_1xb4-adam-plateau-50e_deeplesion.py (+ AGs)
# retinanet_r50_fpn_1xb4-adam-plateau-50e_deeplesion.py is the ResNet-50 extra.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/deeplesion_3slice.py',
    '../_base_/schedules/schedule_adam_plateau.py',
    '../_base_/default_runtime.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.retinanet_lesion'],
    allow_failed_imports=False)
default_scope = 'mmdet'

model = dict(
    # CT input is windowed to [-1, 1] already: no mean/std, no BGR swap;
    # batch padding with -1 (air).
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[0., 0., 0.],
        std=[1., 1., 1.],
        bgr_to_rgb=False,
        pad_size_divisor=32,
        pad_value=-1.),
    # LesionVGG: torchvision's vgg19 features; stages 1..4 (pooled, strides
    # 4..32) are C2..C5 as keras-retinanet's VGG backbone takes block3..5
    # pools for C3..C5; the FPN starts at C3 as mmdet's RetinaNet.
    backbone=dict(
        _delete_=True,
        type='LesionVGG',
        depth=19,
        in_channels=3,
        out_indices=(1, 2, 3, 4),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.pytorch.org/models/'
            'vgg19-dcbb9e9d.pth')),
    neck=dict(in_channels=[128, 256, 512, 512], start_level=1),
    bbox_head=dict(
        num_classes=1,
        # "We follow the loss used in original RetinaNet" (Sec. 2.3): smooth
        # L1 with beta 1/9 (keras-retinanet's sigma = 3, Detectron's 0.11);
        # mmdet's RetinaNet config uses L1.
        loss_bbox=dict(
            _delete_=True, type='SmoothL1Loss', beta=1.0 / 9.0,
            loss_weight=1.0)))

# Sec. 3.1: 512 x 512 input, flips in both directions (each 50 %), random
# affine with rotation / shear up to 0.1 rad (= 5.73 deg, mmdet takes
# degrees) and scaling / translation up to 10 %; the border is filled with
# -1 (air after windowing).
train_pipeline = [
    dict(type='LoadDeepLesionSlices', num_slices=3, interval_mm=2.0),
    dict(type='WindowHU', window=(-1024., 1050.), out_range=(-1., 1.)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(512, 512), keep_ratio=True),
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
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))

# keras-retinanet's mAP at IoU 0.5 (froc/mAP@0.5, monitored by the plateau
# scheduler and early stopping), the DeepLesion FROC sensitivities at
# 0.5..16 FPs per image and the COCO mAP.
val_evaluator = dict(type='FROCMetric', with_coco_map=True, ap_iou_thr=0.5)
test_evaluator = val_evaluator

# Sec. 2.3 early stopping (schedules/schedule_adam_plateau.py) and the
# checkpoint check of the runtime base.
custom_hooks = [
    {{_base_.early_stopping_hook}},
    dict(type='CheckpointCheckHook'),
    dict(type='DataConventionHook')
]
default_hooks = dict(
    checkpoint=dict(
        type='AtomicCheckpointHook',
        interval=1,
        max_keep_ckpts=3,
        # the epoch the paper selects: best validation mAP, the metric its
        # early stopping watches (Sec. 2.3), which reproduce tests (@best)
        save_best={{_base_.plateau_monitor}},
        rule='greater'))
