# Improved RetinaNet (Zlocha et al. 2019), Table 1 row "+ dense supervision"
# (Sec. 2.2, Fig. 1a): the optimised-anchor RetinaNet with
#  - the heads moved from P3-P7 to P2-P6 (anchor sizes stay 32..512),
#  - the pyramid extended by two upsampling steps to P1 (skip: C1, the first
#    pooled VGG-19 stage, stride 2, 64 channels, via a 1x1 conv) and the
#    input resolution P0 (skip: the input via two 3x3 convs): DenseFPN; the
#    detector passes the input image to the neck, LesionVGG returns C1..C5,
#  - a segmentation head on P0 trained with focal loss on the GrabCut masks
#    from the RECIST diameters (RecistToMask -> gt_masks, union per image),
#  - the score calibration p * (1 + IoU(box of the predicted mask component,
#    regressed box)) at inference.
# ResNet-50 extra: improved-retinanet_r50_densefpn_1xb4-adam-plateau-50e_deeplesion.py
_base_ = './retinanet-optanchors_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion.py'

dense_channels = 64
model = dict(
    type='ImprovedRetinaNet',
    backbone=dict(out_indices=(0, 1, 2, 3, 4)),
    neck=dict(
        type='DenseFPN',
        in_channels=[128, 256, 512, 512],
        out_channels=256,
        start_level=0,
        add_extra_convs='on_input',
        num_outs=5,
        input_channels=3,
        stem_channels=64,
        dense_channels=dense_channels,
        attention_gates=()),
    bbox_head=dict(anchor_generator=dict(strides=[4, 8, 16, 32, 64])),
    seg_head=dict(
        type='LesionSegHead',
        in_channels=dense_channels,
        feat_channels=dense_channels,
        num_convs=1,
        loss_seg=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_normalizer='foreground'),
    num_dense_levels=2,
    neck_with_input=True,
    score_calibration=dict(mask_thr=0.5, connectivity=8, min_area=1))

# GrabCut masks are made on the windowed key slice in original coordinates,
# before any geometric transform; Resize, RandomFlip and
# MultiSliceRandomAffine then move the BitmapMasks with the boxes. They are
# read from `cache_dir` when it holds them (written once by
# tools/dataset_converters/recist_to_masks.py THIS_CONFIG --split train
# --out data/DeepLesion/recist_masks; the same masks, about a quarter less
# work per sample); without it they are made for every sample, with a
# warning. With another data root, point it there too: --cfg-options
# train_dataloader.dataset.pipeline.4.cache_dir=/data/DeepLesion/recist_masks/
train_pipeline = [
    dict(type='LoadDeepLesionSlices', num_slices=3, interval_mm=2.0),
    dict(type='WindowHU', window=(-1024., 1050.), out_range=(-1., 1.)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LoadRecistPoints'),
    dict(type='RecistToMask', cache_dir='data/DeepLesion/recist_masks/'),
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
