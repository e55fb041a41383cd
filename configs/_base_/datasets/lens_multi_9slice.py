# LENS data (Sec. VI-A): DeepLesion + LUNA16 + LiTS + NIH-LN as 2D slice
# datasets in the DeepLesion release layout (DL_info.csv + Images_png/; the
# volume converters in tools/dataset_converters/ export the single-type
# sets so). Same preprocessing for all: 9 slices at 2 mm, one wide window
# (-1024 to 3071 HU), black border clipped, 0.8 mm/px, random resize
# 0.8-1.2 and shift of up to 8 px (as a fraction of a 512 px slice).
# Batches come from one dataset, positives : negatives 2 : 1 per epoch
# (LENSDatasetBatchSampler); the dataset order is the model's dataset order.
# Any subset: list the wanted *_train dicts below in a child config, e.g.
#   train_dataloader = dict(dataset=dict(
#       datasets=[{{_base_.deeplesion_train}}, {{_base_.luna16_train}}],
#       dataset_names=['deeplesion', 'luna16']))
#   model = dict(num_datasets=2, dataset_names=['deeplesion', 'luna16'])

num_slices = 9
slice_interval_mm = 2.0
hu_window = (-1024., 3071.)
hu_out_range = (-1., 1.)
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'flip', 'flip_direction', 'instances', 'spacing',
             'slice_interval', 'num_slices', 'crop_offset')

train_pipeline = [
    dict(
        type='LoadDeepLesionSlices',
        num_slices=num_slices,
        interval_mm=slice_interval_mm),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='ClipBlackBorder', threshold_hu=-768.),
    dict(type='WindowHU', window=hu_window, out_range=hu_out_range),
    dict(type='ResampleToSpacing', spacing=0.8),
    dict(
        type='MultiSliceRandomAffine',
        max_rotate_degree=0.,
        max_shear_degree=0.,
        max_translate_ratio=8. / 512,
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
    # the border is clipped as in training (Sec. VI-A: in all images),
    # without looking at the annotations; the detectors add the crop's
    # offset back to their boxes (mmlesion/models/detectors/uncropped.py)
    dict(type='ClipBlackBorder', threshold_hu=-768., keep_annotations=False),
    dict(type='WindowHU', window=hu_window, out_range=hu_out_range),
    dict(type='ResampleToSpacing', spacing=0.8),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=meta_keys)
]


def _source(root, split='train', test_mode=False, pipeline=train_pipeline):
    return dict(
        type='DeepLesionDataset',
        data_root=root,
        ann_file='DL_info.csv',
        data_prefix=dict(img='Images_png/'),
        split=split,
        drop_noisy=True,
        test_mode=test_mode,
        pipeline=pipeline)


# Negative slices (no lesion, or only uncertain ones) are kept: the sampler
# draws them at 1 : 2. The single-type exports list lesion-free slices and
# their ignored findings (e.g. LUNA16's annotations_excluded.csv) in
# lens_extra_slices.json (tools/dataset_converters/*.py --export-2d):
# negatives and ignored instances of DeepLesionMinedDataset.
deeplesion_train = _source('data/DeepLesion/')
luna16_train = dict(
    _source('data/lens/luna16/'),
    type='DeepLesionMinedDataset',
    mined_ann_file='lens_extra_slices.json')
lits_train = dict(luna16_train, data_root='data/lens/lits/')
nih_ln_train = dict(luna16_train, data_root='data/lens/nih_ln/')
del _source

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='LENSDatasetBatchSampler', pos_neg_ratio=2.0),
    dataset=dict(
        type='LENSMultiDataset',
        datasets=[deeplesion_train, luna16_train, lits_train, nih_ln_train],
        dataset_names=['deeplesion', 'luna16', 'lits', 'nih_ln']))
# Evaluation on DeepLesion (dataset 0): the 2D official protocol here; the 3D
# manual-test-set protocol (docs/protocols.md §2) stacks the 2D boxes.
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='DeepLesionDataset',
        data_root='data/DeepLesion/',
        ann_file='DL_info.csv',
        data_prefix=dict(img='Images_png/'),
        split='val',
        drop_noisy=True,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], split='test'))
val_evaluator = dict(type='FROCMetric')
test_evaluator = val_evaluator
