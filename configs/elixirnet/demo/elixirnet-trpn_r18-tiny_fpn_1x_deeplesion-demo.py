# Demo-sized ablation row "+TRPN" (elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice
# .py): the demo FPN baseline with TruncatedRPN only.
_base_ = [
    './faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py',
    '../../_base_/models/elixirnet_components.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.elixirnet'],
    allow_failed_imports=False)

model = dict(rpn_head=_base_.trpn_head)
