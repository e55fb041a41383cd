# ElixirNet with deformable convolutions v2 + FPN ("ElixirNet w Deformv2",
# Tables 1-3), 3 slices: elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py with
# the backbone of mmdet::dcnv2/faster-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py
# (see faster-rcnn_r50-dcnv2_fpn_4xb2-1x_deeplesion-3slice.py).
_base_ = './elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'

model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
