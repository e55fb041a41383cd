# Table II row a: single scale (anchor1 at stride 4 only) with OHEM.
_base_ = './rpn3d-focal-single-scale_denseunet3d_anchor1_4xb2-50e_luna16.py'
model = dict(
    rpn_head=dict(
        loss_cls=dict(
            _delete_=True, type='OHEMBinaryLoss', neg_pos_ratio=3,
            min_neg=16)))
