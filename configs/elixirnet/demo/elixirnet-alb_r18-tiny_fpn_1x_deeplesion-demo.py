# Demo-sized ablation row "+ALB" (elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice
# .py): the demo FPN baseline with the Auto-lesion Block head only. Also the
# model of Table 6's rows: projects/elixirnet/tools/eval_elixirnet_demo.py
# puts the searched genotypes (--searched-genotype, or its searches) into it
# and compares them with elixirnet-alb-random_r18-tiny_fpn_1x_deeplesion-demo.py.
_base_ = [
    './faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py',
    '../../_base_/models/elixirnet_components.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.elixirnet'],
    allow_failed_imports=False)

model = dict(
    roi_head=dict(
        _base_.alb_roi_head,
        bbox_roi_extractor=dict(roi_layer=dict(output_size=7)),
        bbox_head=dict(
            _base_.alb_bbox_head,
            in_channels=32,
            roi_feat_size=7,
            conv_out_channels=32)))
