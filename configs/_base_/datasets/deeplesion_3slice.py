# DeepLesion, 3 slices at 2 mm around the key slice, HU window
# [-1024, 1050] -> [-1, 1] (Improved RetinaNet Sec. 3.1; ElixirNet Sec. 4
# groups 3 neighbouring slices as the 3 input channels).
# The model's data_preprocessor: the image is already normalised, so
#   DetDataPreprocessor(mean=None, std=None, bgr_to_rgb=False,
#                       pad_size_divisor=32, pad_value=-1.)
# (pad with -1 = air in this window). mmengine accepts only 1 or 3 values
# for mean/std: mean=[0] * 9 raises, mean=[0.], std=[1.] works for any N.
# Point `data_root` at the official release (see data/README.md), e.g.
#   --cfg-options train_dataloader.dataset.data_root=/data/DeepLesion/ ...
custom_imports = dict(imports=['mmlesion'], allow_failed_imports=False)

dataset_type = 'DeepLesionDataset'
data_root = 'data/DeepLesion/'
num_slices = 3
slice_interval_mm = 2.0
hu_window = (-1024., 1050.)
hu_out_range = (-1., 1.)
# 'instances' (raw lesions in original-image coordinates) is read by
# FROCMetric; spacing / slice_interval for size and thickness breakdowns.
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'flip', 'flip_direction', 'instances', 'spacing',
             'slice_interval', 'num_slices')

train_pipeline = [
    dict(
        type='LoadDeepLesionSlices',
        num_slices=num_slices,
        interval_mm=slice_interval_mm),
    dict(type='WindowHU', window=hu_window, out_range=hu_out_range),
    dict(type='LoadAnnotations', with_bbox=True),
    # Optional, as LENS Sec. IV-A: crop the air border and resample to
    # 0.8 mm/px. ResampleToSpacing composes scale_factor; use it INSTEAD of
    # the Resize below (a later Resize would overwrite scale_factor).
    # dict(type='ClipBlackBorder', threshold_hu=-768.),
    # dict(type='ResampleToSpacing', spacing=0.8),
    dict(type='Resize', scale=(512, 512), keep_ratio=True),
    # Improved RetinaNet Sec. 3.1: horizontal and vertical flips, each 50 %.
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    # Rotation / shear up to 0.1 rad (5.73 deg), translation up to 10 %,
    # scale 0.8-1.2 (LENS); border filled with the image minimum (air).
    dict(
        type='MultiSliceRandomAffine',
        max_rotate_degree=5.73,
        max_shear_degree=5.73,
        max_translate_ratio=0.1,
        scaling_ratio_range=(0.8, 1.2)),
    dict(type='PackDetInputs', meta_keys=meta_keys)
]
test_pipeline = [
    # mmdet's inference APIs: slice paths, arrays, volume + key slice
    dict(type='LesionInferencerLoader'),
    dict(
        type='LoadDeepLesionSlices',
        num_slices=num_slices,
        interval_mm=slice_interval_mm),
    dict(type='WindowHU', window=hu_window, out_range=hu_out_range),
    # dict(type='ResampleToSpacing', spacing=0.8),  # instead of Resize
    dict(type='Resize', scale=(512, 512), keep_ratio=True),
    # Ground truth stays in original-image coordinates for the metric.
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=meta_keys)
]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='DL_info.csv',
        data_prefix=dict(img='Images_png/'),
        split='train',
        drop_noisy=True,
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='DL_info.csv',
        data_prefix=dict(img='Images_png/'),
        split='val',
        drop_noisy=True,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='DL_info.csv',
        data_prefix=dict(img='Images_png/'),
        split='test',
        drop_noisy=True,
        test_mode=True,
        pipeline=test_pipeline))

val_evaluator = dict(type='FROCMetric')
test_evaluator = val_evaluator
