# Improved RetinaNet (Zlocha et al. 2019), Table 1 row "+ attention gate"
# (Sec. 2.3), the full model: the dense-supervision model with additive
# attention gates (1x1 convs, one attention map, gated by the features
# upsampled from the coarser level) "integrating attention mechanism into
# our feature pyramids" (Sec. 1): the gates filter the FPN lateral
# connections of C2..C4, the skip connections of the pyramid that feed the
# detection levels P2..P4. The other placement, the two skip connections of
# the added upsampling path (C1 -> P1, input -> P0, which reach only the
# segmentation head), is attention_gates='skips' (or both:
# ('laterals', 'skips')); the demo table compares the two placements.
# ResNet-50 extra:
#   improved-retinanet_r50_densefpn-ag_1xb4-adam-plateau-50e_deeplesion.py
_base_ = './improved-retinanet_vgg19_densefpn_1xb4-adam-plateau-50e_deeplesion.py'

model = dict(neck=dict(attention_gates='laterals'))
