# Demo: a tiny 3D Aggregated Faster R-CNN on the synthetic LUNA16-layout
# volumes (projects/study_demo/tools/generate_demo_volumes.py, converted with
# the LUNA16 converter to data/demo_volumes/luna16/luna16.json). Trains on 2 CPU cores
# in minutes: DenseUNet3D with 4 PreBlock channels, growth 8 and 16-channel
# pyramids, 48^3 crops at 1 mm (3 per scan per epoch, 6 epochs), 48^3
# sliding windows with 16 voxels of overlap (a window sees whole the nodules
# up to 16 voxels; larger ones come back once, possibly cut). (3D convolutions are slow on a
# CPU: one 64^3 iteration of this model takes seconds on 2 cores.)
# A fixed hashed split holds out a quarter of the scans (fold 0 of 4).
# Trained from scratch (no pretrained weights exist for this model).
# No lung crop (CropToLungs) and no augmentation: the synthetic scans are
# targeted reconstructions centred on one lung (the lung fills the field of
# view, so there is little to crop and the computed mask's border rule
# does not apply), and the demo results below were measured without them.
_base_ = [
    '../../_base_/models/aggregated_faster_rcnn_3d.py',
    '../../_base_/datasets/luna16_3d_cv.py',
    '../../_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.aggregated3d'],
    allow_failed_imports=False)
default_scope = 'mmdet'

channels = 16
crop = 48
model = dict(
    backbone=dict(base_channels=4, growth_rate=8, out_channels=channels),
    rpn_head=dict(in_channels=channels),
    fprn_head=dict(in_channels=channels, fc_channels=64),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=200, max_per_img=24),
        fprn=dict(sampler=dict(num=24))),
    test_cfg=dict(
        # every candidate (the tiny model's scores stay low): the synthetic
        # study scores the whole curve; the paper rows use the paper's 0.269
        # on the RPN score
        rpn=dict(nms_pre=200, score_thr=0.0, max_per_img=30),
        window_size=crop,
        overlap=16,
        window_batch_size=2,
        score_thr=0.0,
        max_per_img=100))

data_root = 'data/demo_volumes/luna16/'
ann_file = 'luna16.json'
split = dict(fold=0, num_folds=4, fold_source='hash')
train_pipeline = [
    dict(type='LoadCTVolume', spacing_zyx=(1., 1., 1.)),
    dict(type='RandomCrop3D', crop_size=crop, pos_prob=0.7, margin=4,
         pad_value=-1024.),
    dict(type='WindowHU', window=(-1200., 600.), out_range=(-1., 1.)),
    dict(type='PackVolumeDetInputs')
]
test_pipeline = [
    dict(type='LoadCTVolume', spacing_zyx=(1., 1., 1.)),
    dict(type='WindowHU', window=(-1200., 600.), out_range=(-1., 1.)),
    dict(type='PackVolumeDetInputs')
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='RepeatDataset',
        times=3,
        dataset=dict(
            type='CrossValVolumeDataset',
            data_root=data_root,
            ann_file=ann_file,
            split='train',
            pipeline=train_pipeline,
            **split)))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file=ann_file,
                 pipeline=test_pipeline, **split))
test_dataloader = val_dataloader

max_epochs = 6
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=6)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=20),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[5], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
default_hooks = dict(
    random_state=dict(type='RandomStateHook'),
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='AtomicCheckpointHook', interval=max_epochs))
