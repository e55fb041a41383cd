# LENS demo, Table I row (d): retrain row (c) with the mined annotations of
# the partially labelled demo set:
#   python tools/lens_mine_annotations.py \
#       configs/lens/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_demo-2sets.py \
#       work_dirs/lens_demo/epoch_12.pth \
#       --out data/demo_deeplesion/lens_mined.json \
#       --demo-meta data/demo_deeplesion/demo_meta.json
_base_ = './lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_demo-2sets.py'

train_dataloader = dict(
    dataset=dict(datasets=[
        {{_base_.demo_partial_mined_train}}, {{_base_.demo_full_train}}
    ]))
