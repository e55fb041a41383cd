# LENS Table IV, "Ignored as GT": Table I row (d) with the uncertain lesions
# of cross-dataset mining (Sec. V-C) taken as ground truth instead of ignored
# ("treating the mined uncertain lesions as ignored is better than regarding
# them as true lesions"); the same mining file, everything else as (d).
_base_ = './lens-afp-multi-fusion-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py'

deeplesion_mined_train = dict(
    type='DeepLesionMinedDataset',
    data_root='data/DeepLesion/',
    ann_file='DL_info.csv',
    mined_ann_file='lens_mined.json',
    uncertain_as_gt=True,
    data_prefix=dict(img='Images_png/'),
    split='train',
    drop_noisy=True,
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(
    dataset=dict(datasets=[
        deeplesion_mined_train, {{_base_.luna16_train}},
        {{_base_.lits_train}}, {{_base_.nih_ln_train}}
    ]))
