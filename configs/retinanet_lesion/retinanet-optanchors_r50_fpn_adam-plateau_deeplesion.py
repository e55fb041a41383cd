# Improved RetinaNet (Zlocha et al. 2019), Table 1 row "+ anchor
# optimization": the default RetinaNet with the anchors that differential
# evolution found on the DeepLesion validation set (Sec. 2.1): scales 0.425,
# 0.540, 0.680 and ratios 3.27:1, 1.78:1, 1:1, 1:1.78, 1:3.27 (mmdet ratio =
# h / w; the set is symmetric), anchor sizes still 32..512 on P3-P7.
# To use the anchors of tools/analysis_tools/optimize_anchors.py instead,
# replace anchor_generator by the snippet it writes (same keys).
_base_ = './retinanet_r50_fpn_adam-plateau_deeplesion.py'

model = dict(
    bbox_head=dict(
        anchor_generator=dict(
            type='AnchorGenerator',
            strides=[8, 16, 32, 64, 128],
            base_sizes=[32, 64, 128, 256, 512],
            ratios=[1 / 3.27, 1 / 1.78, 1.0, 1.78, 3.27],
            scales=[0.425, 0.540, 0.680],
            octave_base_scale=None,
            scales_per_octave=None)))
