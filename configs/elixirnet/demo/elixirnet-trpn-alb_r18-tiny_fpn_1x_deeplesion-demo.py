# Demo-sized "+TRPN +ALB" (ElixirNet without RTM,
# elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py) with the genotype of
# configs/_base_/models/elixirnet_components.py; the multi-type rows
# (Table 4) fine-tune its checkpoint. Table 6's rows are + ALB without TRPN
# (elixirnet-alb_r18-tiny_fpn_1x_deeplesion-demo.py).
_base_ = [
    './faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py',
    '../../_base_/models/elixirnet_components.py'
]
custom_imports = dict(
    imports=['mmlesion', 'mmlesion.methods.elixirnet'],
    allow_failed_imports=False)

model = dict(
    rpn_head=_base_.trpn_head,
    roi_head=dict(
        _base_.alb_roi_head,
        bbox_roi_extractor=dict(roi_layer=dict(output_size=7)),
        bbox_head=dict(
            _base_.alb_bbox_head,
            in_channels=32,
            roi_feat_size=7,
            conv_out_channels=32)))
