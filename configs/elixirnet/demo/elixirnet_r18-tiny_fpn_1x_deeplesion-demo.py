# Demo-sized ElixirNet with FPN (elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py):
# the demo FPN baseline (faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py, same
# data, schedule and backbone) with TruncatedRPN, the Auto-lesion Block head
# (32 channels after the 3x3 conv, so P = 128; RoI Align 7x7) and RTM
# (f_E of 32 channels).
_base_ = [
    './faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py',
    '../../_base_/models/elixirnet_components.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.elixirnet'],
    allow_failed_imports=False)

demo_alb_head = dict(
    in_channels=32, roi_feat_size=7, conv_out_channels=32)

model = dict(
    rpn_head=_base_.trpn_head,
    roi_head=dict(
        _base_.rtm_roi_head,
        bbox_roi_extractor=dict(roi_layer=dict(output_size=7)),
        bbox_head=dict(_base_.rtm_bbox_head, rtm_channels=32,
                       **demo_alb_head)))
