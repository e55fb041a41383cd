# LENS demo, Table I row (b): as row (c), but at test time only the output
# of dataset expert 0 (the partially labelled DeepLesion-like set) is used,
# no fusion of the experts. Same training as (c): one trained model serves
# rows (b) and (c).
_base_ = './lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py'

model = dict(test_cfg=dict(expert_fusion=dict(experts=[0])))
