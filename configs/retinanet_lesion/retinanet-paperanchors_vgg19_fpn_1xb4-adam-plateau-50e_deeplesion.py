# A named variant of Table 1's "+ anchor optimization" row (not a row of its
# own: the paper reports no number for it): the row's base, the original
# RetinaNet on VGG-19, with the anchors the paper prints (Zlocha et al.
# 2019, Sec. 2.1): "We obtain optimal scales as 0.425, 0.540 and 0.680, and
# ratios of 3.27:1, 1.78:1, 1:1, 1:1.78, 1:3.27 ... Anchor sizes remain as
# (32, 64, 128, 256 and 512)." The paper row itself
# (retinanet-optanchors_*) carries our search's optimum on the DeepLesion
# val boxes (the paper's set); train both to compare the two optima.
_base_ = './retinanet_vgg19_fpn_1xb4-adam-plateau-50e_deeplesion.py'

# the inherited strides 8..128 (P3-P7), sizes 32..512; explicit scales
# replace RetinaNet's octave scales
model = dict(bbox_head=dict(anchor_generator=dict(
    base_sizes=[32, 64, 128, 256, 512],
    ratios=[1 / 3.27, 1 / 1.78, 1.0, 1.78, 3.27], scales=[0.425, 0.540, 0.680],
    octave_base_scale=None, scales_per_octave=None)))
