# LENS Table I row (d): retrain (c) with the mined annotations (Sec. V):
#   python tools/lens_mine_annotations.py <(c) config> <(c) checkpoint> \
#       --out data/DeepLesion/lens_mined.json
# writes the file this config reads: mined lesions become ground truth,
# uncertain lesions ignored regions, the other processed slices negatives.
_base_ = './lens-afp-multi-fusion_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py'

deeplesion_mined_train = dict(
    type='DeepLesionMinedDataset',
    data_root='data/DeepLesion/',
    ann_file='DL_info.csv',
    mined_ann_file='lens_mined.json',
    data_prefix=dict(img='Images_png/'),
    split='train',
    drop_noisy=True,
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(
    dataset=dict(datasets=[
        deeplesion_mined_train, {{_base_.luna16_train}},
        {{_base_.lits_train}}, {{_base_.nih_ln_train}}
    ]))
