# ElixirNet ablation, TruncatedRPN as the paper's Eq. (1) alone: the location
# map p is learnt only through the feature weighting p * I (no auxiliary
# location loss, loss_loc=None). Compare with
# elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice.py (p also supervised by the
# RPN's anchor assignment, the default).
_base_ = ['./elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice.py']

model = dict(rpn_head=dict(loss_loc=None))
