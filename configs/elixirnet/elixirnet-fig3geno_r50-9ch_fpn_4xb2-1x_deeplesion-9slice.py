# ElixirNet w FPN, 9 slices, with a 9-channel conv1 trained from random
# initialisation instead of the 3DCE / MULAN slice groups of
# elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice.py (see
# faster-rcnn_r50-9ch_fpn_4xb2-1x_deeplesion-9slice.py).
_base_ = [
    './faster-rcnn_r50-9ch_fpn_4xb2-1x_deeplesion-9slice.py',
    '../_base_/models/elixirnet_components.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.elixirnet'],
    allow_failed_imports=False)

model = dict(rpn_head=_base_.trpn_head, roi_head=_base_.rtm_roi_head)
