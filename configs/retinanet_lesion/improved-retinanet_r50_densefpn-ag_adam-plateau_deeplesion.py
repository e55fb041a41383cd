# Improved RetinaNet (Zlocha et al. 2019), Table 1 row "+ attention gate"
# (Sec. 2.3), the full model: the dense-supervision model with additive
# attention gates (1x1 convs, one attention map, gated by the features
# upsampled from the coarser level) filtering the two skip connections of
# the upsampling path (C1 -> P1, input -> P0).
_base_ = './improved-retinanet_r50_densefpn_adam-plateau_deeplesion.py'

model = dict(neck=dict(attention_gates=True))
