# ElixirNet ablation (Table 5), row "+TRPN +ALB" (ElixirNet without RTM): the
# FPN baseline with TruncatedRPN and the Auto-lesion Block head. The full
# row (+TRPN +ALB +RTM) is elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py; the
# 9-slice row is elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice.py.
_base_ = [
    './faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
    '../_base_/models/elixirnet_components.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.elixirnet'],
    allow_failed_imports=False)

model = dict(rpn_head=_base_.trpn_head, roi_head=_base_.alb_roi_head)
