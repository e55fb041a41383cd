# Extra (not a Table 1 row): "+ attention gate" of Improved RetinaNet
# (Zlocha et al. 2019) on ResNet-50 instead of the paper's VGG-19: gates on
# the FPN lateral connections as in
# improved-retinanet_vgg19_densefpn-ag_1xb4-adam-plateau-50e_deeplesion.py.
_base_ = './improved-retinanet_r50_densefpn_1xb4-adam-plateau-50e_deeplesion.py'

model = dict(neck=dict(attention_gates='laterals'))
