# Table II row c: multi-scale anchor1 with OHEM instead of the adaptive focal
# loss (all positives + 3 hardest negatives per positive).
_base_ = './rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16.py'
model = dict(
    rpn_head=dict(
        loss_cls=dict(
            _delete_=True, type='OHEMBinaryLoss', neg_pos_ratio=3,
            min_neg=16)))
