# Demo-sized Table 1 row "+ attention gate" (see
# improved-retinanet_r50_densefpn-ag_adam-plateau_deeplesion.py): attention
# gates on the two skip connections of the upsampling path.
_base_ = './improved-retinanet_r18-tiny_densefpn_1x_demo_deeplesion.py'

model = dict(neck=dict(attention_gates=True))
