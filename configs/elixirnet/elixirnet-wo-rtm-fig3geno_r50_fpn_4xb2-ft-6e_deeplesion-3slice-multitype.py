# Multi-type lesion detection without the Relation Transfer Module (Table 4,
# "ElixirNet w/o RTM"): same fine-tuning recipe as
# elixirnet-fig3geno_r50_fpn_4xb2-ft-6e_deeplesion-3slice-multitype.py, but the 8-type
# classifier and regressor simply replace the binary ones of the Auto-lesion
# Block head, from the same single-class checkpoint (its fc_cls / fc_reg
# have other shapes and are skipped with a warning).
_base_ = './elixirnet-fig3geno_r50_fpn_4xb2-ft-6e_deeplesion-3slice-multitype.py'

model = dict(
    roi_head=dict(bbox_head=dict(_base_.alb_bbox_head, num_classes=8)))
