# Demo-sized "+TRPN +ALB" (ElixirNet without RTM,
# elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py) with the genotype of
# configs/_base_/models/elixirnet_components.py. This is the "searched" row
# of the Table 6 comparison: projects/elixirnet/tools/eval_elixirnet_demo.py
# replaces model.roi_head.bbox_head.genotypes with the file written by
# tools/search_alb.py (--searched-genotype) and compares it with
# elixirnet-trpn-alb-random_r18-tiny_fpn_1x_deeplesion-demo.py.
_base_ = [
    './faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py',
    '../../_base_/models/elixirnet_components.py'
]

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
