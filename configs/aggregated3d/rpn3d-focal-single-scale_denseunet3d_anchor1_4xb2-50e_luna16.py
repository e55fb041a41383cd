# Table II row b: single scale, i.e. all anchor1 sizes {4, 6, 8, 12, 16, 24}
# mm at the stride-4 level only, with the adaptive focal loss.
_base_ = './rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16.py'
model = dict(
    backbone=dict(out_indices=(0, )),
    rpn_head=dict(
        num_levels=1,
        anchor_generator=dict(
            strides=[4], sizes=[[4, 6, 8, 12, 16, 24]])))
