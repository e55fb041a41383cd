# Demo-sized "+ attention gate" with the other gate placement (compared
# with the Table 1 one in projects/retinanet_lesion/tools/eval_retinanet_lesion_demo.py):
# gates on the two skip connections of the added upsampling path only
# (C1 -> P1, input -> P0), which reach the segmentation head but not the
# detection levels P2..P6.
_base_ = './improved-retinanet_r18-tiny_densefpn_1x_deeplesion-demo.py'

model = dict(neck=dict(attention_gates='skips'))
