# LUNA16 as whole 3D scans (3D Aggregated Faster R-CNN, Sec. IV-A): the
# common annotation file written by the LUNA16 converter
# (tools/dataset_converters/, one JSON for the 888 scans, files under the
# official subset0 .. subset9 folders), 10-fold cross-validation by subset
# (`fold` = the held-out subset; pick it with `--fold k` in tools/train.py
# and tools/test.py, mmlesion.utils.apply_cv_fold; --cfg-options fold=k
# does not reach the datasets), every scan resampled to 1 mm isotropic with
# SimpleITK, random 128^3 crops biased towards nodules for training, whole
# scans (sliding windows in the model) for testing. Excluded findings
# (annotations_excluded.csv) are ignore regions.
# HU window [-1200, 600] -> [-1, 1] (the lung window of the 3D RPNs the paper
# builds on; the paper does not state its window).
# Lung crop (Sec. IV-A, "officially provided segmentation masks"): every
# scan, training and test, is cropped to the box of its lungs in LUNA16's
# seg-lungs-LUNA16/<seriesuid>.mhd plus 10 mm (CropToLungs; world
# coordinates are kept, so candidates come back in scan world coordinates).
# Without the official masks set lung_crop = dict(type='CropToLungs',
# mask_dir=None) to compute them (threshold, components; see
# mmlesion/datasets/volumes/lung_mask.py).
# Training data (the paper is silent, ours): flips on all axes, axial
# quarter turns, scale jitter 0.9-1.1 of each crop, and 6 crops per scan per
# epoch (a lung-cropped scan is 6-8 crops' volume, Sec. IV-A, so an epoch
# sees about every scan's volume once: one pass over the training data; the
# paper's "50 epochs" does not say how many crops an epoch takes). With 799
# training scans per fold and batch 2 an epoch is ~2,400 iterations, and
# the schedules are by epoch (LR steps) or by the run's length (T of Eq. 3).
dataset_type = 'CrossValVolumeDataset'
data_root = 'data/LUNA16/'
ann_file = 'annotations/luna16.json'
fold = 0
crop_size = 128
crops_per_scan = 6
hu_window = (-1200., 600.)
spacing_zyx = (1., 1., 1.)
lung_crop = dict(
    type='CropToLungs', mask_dir=data_root + 'seg-lungs-LUNA16/',
    margin_mm=10.)
augmentation = dict(
    type='Compose',
    transforms=[
        dict(type='RandomFlip3D', prob=0.5, axes=(0, 1, 2)),
        dict(type='RandomRot90Axial'),
        dict(type='RandomZoom3D', scale_range=(0.9, 1.1), pad_value=-1024.),
    ])

train_pipeline = [
    dict(type='LoadCTVolume', spacing_zyx=spacing_zyx),
    lung_crop,
    dict(type='RandomCrop3D', crop_size=crop_size, pos_prob=0.7, margin=8,
         pad_value=-1024.),
    augmentation,
    dict(type='WindowHU', window=hu_window, out_range=(-1., 1.)),
    dict(type='PackVolumeDetInputs')
]
test_pipeline = [
    dict(type='LoadCTVolume', spacing_zyx=spacing_zyx),
    lung_crop,
    dict(type='WindowHU', window=hu_window, out_range=(-1., 1.)),
    dict(type='PackVolumeDetInputs')
]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=ann_file,
        fold=fold,
        split='train',
        crops_per_scan=crops_per_scan,
        filter_cfg=dict(filter_empty_gt=False),
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
        ann_file=ann_file,
        fold=fold,
        split='test',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# LUNA16 protocol (docs/protocols.md §3): CPM over 1/8 .. 8 FPs per scan,
# ground truth from the dataset's instances (ignore = excluded findings).
val_evaluator = dict(type='LUNA16Metric')
test_evaluator = val_evaluator
