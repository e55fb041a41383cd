# DeepLesion as 3D (Sec. V, Table V "3D-AG"): the same model with the
# DeepLesion anchors ({3, 5, 7}, {10, 13, 17}, {22, 30, 40} mm at strides 4,
# 8, 16), trained on 64 x 128 x 128 crops of the 1 mm scan
# chunks (padding with air where a chunk is thinner), evaluated with the
# LUNA16 hit rule. Data: tools/dataset_converters/deeplesion_to_3d.py
# (multi-annotated lesions merged, small-lesion diameters
# min(box long side, long diameter), training lesions >= 48 mm dropped).
# HU window [-1024, 1050] -> [-1, 1] (the paper gives none for DeepLesion;
# the wide window of the DeepLesion papers in this repository).
_base_ = './aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py'
# Sec. III-E schedule, as on LUNA16: the RPN stage first (rpn3d-focal_
# denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d.py), then this model
# from its checkpoint ("from scratch" in Sec. V-B: no pretrained weights)
load_from = ('work_dirs/rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_'
             'deeplesion3d/epoch_50.pth')

data_root = 'data/DeepLesion3D/'
hu_window = (-1024., 1050.)
crop = (64, 128, 128)
model = dict(
    rpn_head=dict(
        anchor_generator=dict(
            sizes=[[3, 5, 7], [10, 13, 17], [22.0, 30.0, 40.0]])),
    # windows see whole the lesions up to 48 mm (those kept for training)
    test_cfg=dict(window_size=crop, overlap=48))
train_pipeline = [
    dict(type='LoadCTVolume', spacing_zyx=(1., 1., 1.)),
    dict(type='RandomCrop3D', crop_size=crop, pos_prob=0.7, margin=8,
         pad_value=-1024.),
    dict(type='WindowHU', window=hu_window, out_range=(-1., 1.)),
    dict(type='PackVolumeDetInputs')
]
test_pipeline = [
    dict(type='LoadCTVolume', spacing_zyx=(1., 1., 1.)),
    dict(type='WindowHU', window=hu_window, out_range=(-1., 1.)),
    dict(type='PackVolumeDetInputs')
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CTVolumeDataset',
        data_root=data_root,
        ann_file='deeplesion3d_train.json',
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
test_dataset = dict(
    type='CTVolumeDataset',
    data_root=data_root,
    test_mode=True,
    pipeline=test_pipeline)
val_dataloader = dict(
    dataset=dict(
        _delete_=True, ann_file='deeplesion3d_val.json', **test_dataset))
test_dataloader = dict(
    dataset=dict(
        _delete_=True, ann_file='deeplesion3d_test.json', **test_dataset))
# Tables V and VI with LUNA16's hit rule ("we adopt LUNA16's criterion for
# the evaluation", Sec. V-B) on the test chunks, an FP rate being per chunk
# (the paper's "FPs per image"): sensitivity at 0.5 .. 16 FPs and their mean
# ("Avg."), the FROC score (the CPM over 1/8 .. 8 FPs, "FROC"); the test
# also per lesion type and diameter bin (Table VI, read at 4 FPs), ground
# truth filtered and every mark kept (docs/protocols.md §1 "Subsets", as
# "in [7]"). The "*" rows are the *-lt48mm configs.
val_evaluator = dict(
    type='LUNA16Metric',
    fp_rates=(0.125, 0.25, 0.5, 1, 2, 4, 8, 16),
    mean_rates=(0.5, 1, 2, 4, 8, 16))
test_evaluator = dict(val_evaluator, breakdowns=True)
