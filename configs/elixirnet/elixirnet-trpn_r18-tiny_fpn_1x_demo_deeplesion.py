# Demo-sized ablation row "+TRPN" (elixirnet-trpn_r50_fpn_1x_deeplesion_3slice
# .py): the demo FPN baseline with TruncatedRPN only.
_base_ = [
    './faster_rcnn_r18-tiny_fpn_1x_demo_deeplesion.py',
    '../_base_/models/elixirnet_components.py'
]

model = dict(rpn_head=_base_.trpn_head)
