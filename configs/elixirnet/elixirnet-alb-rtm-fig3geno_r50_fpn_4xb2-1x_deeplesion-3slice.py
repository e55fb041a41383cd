# ElixirNet ablation (Table 5), row "+ALB +RTM": the FPN baseline with the
# Auto-lesion Block head and the Relation Transfer Module (RTM needs the
# graph E of the ALB, so it is never used without it); mmdet's RPN.
_base_ = [
    './faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
    '../_base_/models/elixirnet_components.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.elixirnet'],
    allow_failed_imports=False)

model = dict(roi_head=_base_.rtm_roi_head)
