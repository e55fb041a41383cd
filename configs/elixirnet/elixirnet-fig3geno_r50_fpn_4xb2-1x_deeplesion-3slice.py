# ElixirNet with FPN ("ElixirNet w FPN", Tables 1, 2 and 5), 3 slices:
# the FPN baseline with TruncatedRPN (anchor scales 2/3/4/6/12, ratios
# 0.5/1/2), the Auto-lesion Block RoI head (3x3 conv to 128, 1 ALB, 2 ALBr,
# RoI Align 14x14) and the Relation Transfer Module. Components and the
# genotype: configs/_base_/models/elixirnet_components.py.
_base_ = [
    './faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
    '../_base_/models/elixirnet_components.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.elixirnet'],
    allow_failed_imports=False)

model = dict(rpn_head=_base_.trpn_head, roi_head=_base_.rtm_roi_head)
