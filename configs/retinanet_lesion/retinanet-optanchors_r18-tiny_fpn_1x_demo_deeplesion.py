# Demo-sized Table 1 row "+ anchor optimization" (see
# retinanet-optanchors_r50_fpn_adam-plateau_deeplesion.py): the demo
# RetinaNet with the paper's optimised anchors (Sec. 2.1) on P3-P7.
_base_ = './retinanet_r18-tiny_fpn_1x_demo_deeplesion.py'

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
