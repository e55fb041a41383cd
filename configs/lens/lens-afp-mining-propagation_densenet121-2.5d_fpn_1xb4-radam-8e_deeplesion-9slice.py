# LENS Table III, "+ Cross-slice": Table I row (a) (DeepLesion alone, Table
# III's "No mining") retrained with the missing annotations that cross-slice
# box propagation (Sec. V-A) mines from the proposals of the four-dataset
# model of row (c):
#   python tools/lens_mine_annotations.py <(c) config> <(c) checkpoint> \
#       --strategies propagation --out data/DeepLesion/lens_mined_propagation.json
# Only the slices that show a lesion (annotated or mined) are trained on
# (use_negatives=False): the unlabelled slices come with "+ Unlabeled".
_base_ = './lens-afp_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice.py'

deeplesion_mined_train = dict(
    type='DeepLesionMinedDataset',
    data_root='data/DeepLesion/',
    ann_file='DL_info.csv',
    mined_ann_file='lens_mined_propagation.json',
    use_negatives=False,
    data_prefix=dict(img='Images_png/'),
    split='train',
    drop_noisy=True,
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(dataset=dict(datasets=[deeplesion_mined_train]))
