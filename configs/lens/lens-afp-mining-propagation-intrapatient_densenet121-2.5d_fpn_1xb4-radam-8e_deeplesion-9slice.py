# LENS Table III, "+ Intra-patient": "+ Cross-slice" with the lesions that
# intra-patient lesion matching (Sec. V-B) adds, mined after propagation
# from the same proposals of the row (c) model:
#   python tools/lens_mine_annotations.py <(c) config> <(c) checkpoint> \
#       --strategies propagation intra_patient \
#       --out data/DeepLesion/lens_mined_propagation_intrapatient.json
# Only the slices that show a lesion (annotated or mined) are trained on.
_base_ = './lens-afp_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-9slice.py'

deeplesion_mined_train = dict(
    type='DeepLesionMinedDataset',
    data_root='data/DeepLesion/',
    ann_file='DL_info.csv',
    mined_ann_file='lens_mined_propagation_intrapatient.json',
    use_negatives=False,
    data_prefix=dict(img='Images_png/'),
    split='train',
    drop_noisy=True,
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(dataset=dict(datasets=[deeplesion_mined_train]))
