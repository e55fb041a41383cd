# "ElixirNet w Deformv2" row of ElixirNet Table 3 (KiTS19, 3 slices):
# elixirnet-fig3geno_r50_fpn_4xb2-1x_kits19-3slice.py with the backbone of
# faster-rcnn_r50-dcnv2_fpn_4xb2-1x_kits19-3slice.py.
_base_ = './elixirnet-fig3geno_r50_fpn_4xb2-1x_kits19-3slice.py'

model = dict(
    backbone=dict(
        dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)))
