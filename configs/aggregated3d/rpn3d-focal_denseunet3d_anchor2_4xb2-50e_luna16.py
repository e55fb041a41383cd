# Table II row e: multi-scale "anchor2" ({5, 10}, {15, 20}, {25, 35} mm).
_base_ = './rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16.py'
model = dict(
    rpn_head=dict(
        anchor_generator=dict(sizes=[[5, 10], [15, 20], [25, 35]])))
