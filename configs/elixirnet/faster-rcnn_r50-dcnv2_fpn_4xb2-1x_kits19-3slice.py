# "Deformv2" row of ElixirNet Table 3 (KiTS19, 3 slices): the KiTS19 FPN
# baseline with the backbone of faster-rcnn_r50-dcnv2_fpn_4xb2-1x_deeplesion-
# 3slice.py (deformable convolutions v2 in stages C3-C5).
_base_ = './faster-rcnn_r50_fpn_4xb2-1x_kits19-3slice.py'

model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
