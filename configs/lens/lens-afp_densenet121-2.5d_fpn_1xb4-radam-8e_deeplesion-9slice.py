# LENS Table I row (a): MULAN's RPN replaced by AFP; DeepLesion only.
_base_ = './lens-afp-multi-fusion_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py'

model = dict(num_datasets=1, dataset_names=['deeplesion'])
train_dataloader = dict(
    dataset=dict(
        datasets=[{{_base_.deeplesion_train}}],
        dataset_names=['deeplesion']))
