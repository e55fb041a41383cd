# ElixirNet on Faster R-CNN without FPN ("ElixirNet" row of Table 1), 9
# slices: RPN and RoI Align on C4 (stride 16, 1024 channels) as in mmdet's
# R50-C4, TruncatedRPN instead of the RPN, and the Auto-lesion Block head
# with RTM instead of ResNet stage 5 (no shared head).
_base_ = [
    './faster-rcnn_r50_c4_4xb2-1x_deeplesion-9slice.py',
    '../_base_/models/elixirnet_components.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.elixirnet'],
    allow_failed_imports=False)

model = dict(
    rpn_head=_base_.trpn_head,
    roi_head=dict(
        _base_.rtm_roi_head,
        shared_head=None,
        bbox_head=dict(_base_.rtm_bbox_head, in_channels=1024)))
