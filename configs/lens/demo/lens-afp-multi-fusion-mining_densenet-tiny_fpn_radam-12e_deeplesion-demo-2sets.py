# LENS demo, Table I row (d): retrain row (c) with the mined annotations of
# the partially labelled demo set:
#   python tools/lens_mine_annotations.py \
#       configs/lens/demo/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py \
#       work_dirs/lens_demo/epoch_12.pth \
#       --out data/demo_deeplesion/lens_mined.json \
#       --demo-meta data/demo_deeplesion/demo_meta.json
_base_ = './lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py'

demo_partial_mined_train = dict(
    type='DeepLesionMinedDataset',
    data_root='data/demo_deeplesion/',
    ann_file='DL_info.csv',
    mined_ann_file='lens_mined.json',
    data_prefix=dict(img='Images_png/'),
    split='train',
    drop_noisy=True,
    pipeline={{_base_.train_pipeline}})
train_dataloader = dict(
    dataset=dict(
        datasets=[demo_partial_mined_train, {{_base_.demo_lung_train}}]))
