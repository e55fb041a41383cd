# "ElixirNet w FPN" row of ElixirNet Table 3 (KiTS19, 3 slices): the KiTS19
# FPN baseline with TruncatedRPN, the Auto-lesion Block head (the paper's
# Fig. 3 genotype) and the Relation Transfer Module, exactly as
# elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py adds them.
_base_ = [
    './faster-rcnn_r50_fpn_4xb2-1x_kits19-3slice.py',
    '../_base_/models/elixirnet_components.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.elixirnet'],
    allow_failed_imports=False)

model = dict(rpn_head=_base_.trpn_head, roi_head=_base_.rtm_roi_head)
