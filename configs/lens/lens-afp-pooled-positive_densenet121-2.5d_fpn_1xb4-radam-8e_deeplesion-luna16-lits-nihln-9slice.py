# LENS Table IV, "Positive data pooling": "Data pooling" with only the
# positive samples of the single-type sets ("only sampled positive regions
# from the single-type datasets to joint train with DeepLesion to avoid the
# influence of MAs of other types"): their lesion-free slices are left out
# (use_negatives=False; a test keeps each set otherwise as in the pool).
_base_ = './lens-afp-pooled_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py'

train_dataloader = dict(
    dataset=dict(datasets=[
        {{_base_.deeplesion_train}},
        dict(
            type='DeepLesionMinedDataset',
            data_root='data/lens/luna16/',
            ann_file='DL_info.csv',
            mined_ann_file='lens_extra_slices.json',
            use_negatives=False,
            data_prefix=dict(img='Images_png/'),
            split='train',
            drop_noisy=True,
            test_mode=False,
            pipeline={{_base_.train_pipeline}}),
        dict(
            type='DeepLesionMinedDataset',
            data_root='data/lens/lits/',
            ann_file='DL_info.csv',
            mined_ann_file='lens_extra_slices.json',
            use_negatives=False,
            data_prefix=dict(img='Images_png/'),
            split='train',
            drop_noisy=True,
            test_mode=False,
            pipeline={{_base_.train_pipeline}}),
        dict(
            type='DeepLesionMinedDataset',
            data_root='data/lens/nih_ln/',
            ann_file='DL_info.csv',
            mined_ann_file='lens_extra_slices.json',
            use_negatives=False,
            data_prefix=dict(img='Images_png/'),
            split='train',
            drop_noisy=True,
            test_mode=False,
            pipeline={{_base_.train_pipeline}})
    ]))
