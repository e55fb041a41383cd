# Demo-sized Table 1 row "+ attention gate" (see
# improved-retinanet_vgg19_densefpn-ag_1xb4-adam-plateau-50e_deeplesion.py): attention
# gates on the FPN lateral connections (C2..C4), which feed the detection
# levels. The other placement is
# improved-retinanet_r18-tiny_densefpn-agskips_1x_deeplesion-demo.py.
_base_ = './improved-retinanet_r18-tiny_densefpn_1x_deeplesion-demo.py'

model = dict(neck=dict(attention_gates='laterals'))
