# LENS Table III, "+ Unlabeled": "+ Cross-dataset" with every slice the
# mining processed ("applying this strategy to all 646K training slices in
# DeepLesion"): the slices without a lesion are negatives, drawn at 1 : 2,
# their uncertain lesions ignored. Table I row (d)'s mining and DeepLesion
# dataset, trained on DeepLesion alone (row (a)'s model).
_base_ = './lens-afp_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice.py'

deeplesion_mined_train = dict(
    type='DeepLesionMinedDataset',
    data_root='data/DeepLesion/',
    ann_file='DL_info.csv',
    mined_ann_file='lens_mined.json',
    use_negatives=True,
    data_prefix=dict(img='Images_png/'),
    split='train',
    drop_noisy=True,
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(dataset=dict(datasets=[deeplesion_mined_train]))
