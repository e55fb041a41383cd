# The synthetic demo DeepLesion set (tools/misc/generate_demo_data.py, same
# release layout as the real one: 256 x 256 slices at ~1.4 mm/px), 3 slices
# at 2 mm. Small and CPU-friendly: the images keep their size (no upsampling
# to 512), one loader worker.
# HU window: a soft-tissue window [-250, 350] -> [-1, 1] instead of the
# papers' wide [-1024, 1050]. The tiny from-scratch demo models learn the
# low-contrast synthetic lesions much faster with it (val sensitivity at 4
# FPs 0.47 -> 0.67 for the same 24-epoch R18 run); the real-data configs keep
# the papers' windows.
_base_ = './deeplesion_3slice.py'

data_root = 'data/demo_deeplesion/'
image_scale = (256, 256)
demo_hu_window = (-250., 350.)

train_pipeline = [
    dict(
        type='LoadDeepLesionSlices',
        num_slices={{_base_.num_slices}},
        interval_mm={{_base_.slice_interval_mm}}),
    dict(
        type='WindowHU',
        window=demo_hu_window,
        out_range={{_base_.hu_out_range}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PackDetInputs', meta_keys={{_base_.meta_keys}})
]
test_pipeline = [
    # mmdet's inference APIs: slice paths, arrays, volume + key slice
    dict(type='LesionInferencerLoader'),
    dict(
        type='LoadDeepLesionSlices',
        num_slices={{_base_.num_slices}},
        interval_mm={{_base_.slice_interval_mm}}),
    dict(
        type='WindowHU',
        window=demo_hu_window,
        out_range={{_base_.hu_out_range}}),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys={{_base_.meta_keys}})
]

train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = dict(
    num_workers=1, dataset=dict(data_root=data_root, pipeline=test_pipeline))
