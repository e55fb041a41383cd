# ElixirNet ablation (Table 5), row "+TRPN": the FPN baseline
# (faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py) with TruncatedRPN only; the
# RoI head stays mmdet's Shared2FCBBoxHead. The anchor scales 2/3/4/6/12
# come with TRPN ("... are used in TRPN").
_base_ = [
    './faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
    '../_base_/models/elixirnet_components.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.elixirnet'],
    allow_failed_imports=False)

model = dict(rpn_head=_base_.trpn_head)
