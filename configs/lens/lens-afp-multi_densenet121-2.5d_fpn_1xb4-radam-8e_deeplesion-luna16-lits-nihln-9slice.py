# LENS Table I row (b): as (c), but only the DeepLesion expert's output at
# test time (no fusion). The model trained for (c) serves (b) too.
_base_ = './lens-afp-multi-fusion_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py'

model = dict(test_cfg=dict(expert_fusion=dict(experts=[0])))
