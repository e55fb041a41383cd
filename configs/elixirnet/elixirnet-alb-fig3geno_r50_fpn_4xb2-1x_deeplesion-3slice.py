# ElixirNet ablation (Table 5), row "+ALB": the FPN baseline with the
# Auto-lesion Block RoI head only (mmdet's RPN and anchors, no RTM).
_base_ = [
    './faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
    '../_base_/models/elixirnet_components.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.elixirnet'],
    allow_failed_imports=False)

model = dict(roi_head=_base_.alb_roi_head)
