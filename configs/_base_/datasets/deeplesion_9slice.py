# DeepLesion, 9 slices at 2 mm around the key slice (the 9-slice input of
# MULAN-style 2.5D detectors); everything else as deeplesion_3slice.py.
# The model's data_preprocessor: the image is already normalised, so
#   DetDataPreprocessor(mean=None, std=None, bgr_to_rgb=False,
#                       pad_size_divisor=32, pad_value=-1.)
# (pad with -1 = air in this window). mmengine accepts only 1 or 3 values
# for mean/std: mean=[0] * 9 raises, mean=[0.], std=[1.] works for any N.
_base_ = './deeplesion_3slice.py'

num_slices = 9

train_pipeline = [
    dict(
        type='LoadDeepLesionSlices',
        num_slices=num_slices,
        interval_mm={{_base_.slice_interval_mm}}),
    dict(
        type='WindowHU',
        window={{_base_.hu_window}},
        out_range={{_base_.hu_out_range}}),
    dict(type='LoadAnnotations', with_bbox=True),
    # dict(type='ClipBlackBorder', threshold_hu=-768.),
    # dict(type='ResampleToSpacing', spacing=0.8),  # instead of Resize
    dict(type='Resize', scale=(512, 512), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    # mmlesion's affine: one border value for all 9 channels (mmdet's
    # RandomAffine fills channels 3 and 7 with 0 through OpenCV's 4-value
    # border).
    dict(
        type='MultiSliceRandomAffine',
        max_rotate_degree=5.73,
        max_shear_degree=5.73,
        max_translate_ratio=0.1,
        scaling_ratio_range=(0.8, 1.2)),
    dict(type='PackDetInputs', meta_keys={{_base_.meta_keys}})
]
test_pipeline = [
    # mmdet's inference APIs: slice paths, arrays, volume + key slice
    dict(type='LesionInferencerLoader'),
    dict(
        type='LoadDeepLesionSlices',
        num_slices=num_slices,
        interval_mm={{_base_.slice_interval_mm}}),
    dict(
        type='WindowHU',
        window={{_base_.hu_window}},
        out_range={{_base_.hu_out_range}}),
    # dict(type='ResampleToSpacing', spacing=0.8),  # instead of Resize
    dict(type='Resize', scale=(512, 512), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys={{_base_.meta_keys}})
]

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
