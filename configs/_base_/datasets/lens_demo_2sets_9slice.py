# LENS demo data: two synthetic sets in the DeepLesion release layout
# (projects/study_demo/synthetic), 9 slices at 2 mm, 256 x 256 px:
#   dataset 0 'demo_partial': the ordinary demo set, partially labelled
#       (some lesions on key slices have no CSV row; demo_meta.json knows
#       them, tools/lens_mine_annotations.py scores mining against them);
#   dataset 1 'demo_lung': a single-type, fully labelled set (another seed,
#       lung nodules only, every lesion of a key slice annotated), the role
#       LUNA16 plays in the paper. Generate it (from a clone) with
#       python projects/study_demo/tools/generate_study_data.py \
#           --out data/demo_lung --seed 1 --lesion-types 5 \
#           --unannotated-prob 0
# Soft-tissue window as the other demo configs.
_base_ = './lens_multi_9slice.py'

demo_hu_window = (-250., 350.)
image_scale = (256, 256)
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
demo_partial_train = dict(
    type='DeepLesionDataset',
    data_root='data/demo_deeplesion/',
    ann_file='DL_info.csv',
    data_prefix=dict(img='Images_png/'),
    split='train',
    drop_noisy=True,
    pipeline=train_pipeline)
demo_lung_train = dict(
    demo_partial_train, data_root='data/demo_lung/')
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='LENSMultiDataset',
        datasets=[demo_partial_train, demo_lung_train],
        dataset_names=['demo_partial', 'demo_lung']))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root='data/demo_deeplesion/', pipeline=test_pipeline))
test_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root='data/demo_deeplesion/', pipeline=test_pipeline))
