# LENS demo, Table I row (a): MULAN with the RPN replaced by AFP, one dataset
# (the partially labelled demo set only).
_base_ = './lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py'

model = dict(
    num_datasets=1,
    dataset_names=['demo_partial'],
    test_cfg=dict(expert_fusion=dict(experts=None)))
train_dataloader = dict(
    dataset=dict(
        datasets=[{{_base_.demo_partial_train}}],
        dataset_names=['demo_partial']))
