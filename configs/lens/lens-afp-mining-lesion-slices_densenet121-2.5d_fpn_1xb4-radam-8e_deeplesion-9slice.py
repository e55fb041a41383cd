# LENS Table III, "+ Cross-dataset": "+ Intra-patient" with the uncertain
# lesions that the single-type experts of row (c) find (Sec. V-C), ignored
# in the loss: the three strategies, the file of Table I row (d):
#   python tools/lens_mine_annotations.py <(c) config> <(c) checkpoint> \
#       --out data/DeepLesion/lens_mined.json
# Only the slices that show a lesion (annotated or mined) are trained on.
_base_ = './lens-afp_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice.py'

deeplesion_mined_train = dict(
    type='DeepLesionMinedDataset',
    data_root='data/DeepLesion/',
    ann_file='DL_info.csv',
    mined_ann_file='lens_mined.json',
    use_negatives=False,
    data_prefix=dict(img='Images_png/'),
    split='train',
    drop_noisy=True,
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(dataset=dict(datasets=[deeplesion_mined_train]))
