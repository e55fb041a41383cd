# Demo-sized Table 1 row "+ dense supervision" (see
# improved-retinanet_r50_densefpn_1xb4-adam-plateau-50e_deeplesion.py): heads on
# P2-P6, DenseFPN up to the input resolution with the C1 / input skip
# connections, the focal-loss segmentation head on the GrabCut masks and the
# mask-box score calibration.
_base_ = './retinanet-optanchors_r18-tiny_fpn_1x_deeplesion-demo.py'

dense_channels = 16
model = dict(
    type='ImprovedRetinaNet',
    backbone=dict(type='ResNetWithStem', out_stem=True),
    neck=dict(
        type='DenseFPN',
        in_channels=[16, 32, 64, 128],
        out_channels=32,
        start_level=0,
        add_extra_convs='on_input',
        num_outs=5,
        input_channels=3,
        stem_channels=16,
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

train_pipeline = [
    dict(type='LoadDeepLesionSlices', num_slices=3, interval_mm=2.0),
    dict(type='WindowHU', window=(-1024., 1050.), out_range=(-1., 1.)),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LoadRecistPoints'),
    dict(type='RecistToMask'),
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=True),
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
