# The ablation study of the 3D Aggregated Faster R-CNN on synthetic volumes
# (projects/aggregated3d/tools/eval_aggregated3d_demo.py; its rows are this config
# plus overrides: RPN alone, +FPRN, +DA, +Magnify, +ABS). The tiny demo model
# (aggregated3d_denseunet3d-tiny_luna16-demo.py) made cheap enough for
# 3 seeds x 7 runs on a shared 2-core CPU (an hour with the seeds side by
# side on a loaded machine):
# - data: the study volumes (projects.study_demo.study_data, preset
#   'luna16vol': 70 small chest scans, nodules 5-20 mm among vessel-like
#   look-alikes), a hashed half held out (about 35 scans with about 75
#   nodules: a verdict needs at least 60), the other half trained on;
# - 32^3 training crops (2 crops per scan per epoch; see the README for
#   what an epoch is) and 64^3 test windows (one
#   to four windows per scan; 16 voxels of overlap > 16 mm is not needed
#   here: a window keeps the detections centred in its core, and every
#   nodule is at most 20 mm, seen whole by a 64^3 window);
# - no validation during training: each row is tested once, at its end
#   (the study runner's test).
# Schedules are set per row by the study tool (RPN stage, then each row).
_base_ = './aggregated3d_denseunet3d-tiny_luna16-demo.py'

crop = 32
window = 64
data_root = 'data/study_volumes/luna16/'
ann_file = 'luna16.json'
split = dict(fold=0, num_folds=2, fold_source='hash')
crops_per_scan = 2

model = dict(
    test_cfg=dict(window_size=window, overlap=16, window_batch_size=1))

train_pipeline = [
    dict(type='LoadCTVolume', spacing_zyx=(1., 1., 1.)),
    dict(type='RandomCrop3D', crop_size=crop, pos_prob=0.7, margin=4,
         pad_value=-1024.),
    dict(type='WindowHU', window=(-1200., 600.), out_range=(-1., 1.)),
    dict(type='PackVolumeDetInputs')
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='CrossValVolumeDataset',
        data_root=data_root,
        ann_file=ann_file,
        split='train',
        crops_per_scan=crops_per_scan,
        pipeline=train_pipeline,
        **split))
val_dataloader = dict(
    dataset=dict(data_root=data_root, ann_file=ann_file, **split))
test_dataloader = val_dataloader
val_evaluator = dict(num_bootstrap=0)
test_evaluator = val_evaluator

max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=1, val_begin=1000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=20),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[3], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
