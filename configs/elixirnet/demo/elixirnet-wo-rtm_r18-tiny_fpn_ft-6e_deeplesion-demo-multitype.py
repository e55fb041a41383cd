# Demo-sized multi-type fine-tuning without RTM
# (elixirnet-wo-rtm-fig3geno_r50_fpn_4xb2-ft-6e_deeplesion-3slice-multitype.py): as
# elixirnet_r18-tiny_fpn_ft-6e_deeplesion-demo-multitype.py, with the 8-type
# predictors directly on the Auto-lesion Block features.
_base_ = './elixirnet_r18-tiny_fpn_ft-6e_deeplesion-demo-multitype.py'

model = dict(
    roi_head=dict(
        bbox_head=dict(
            _base_.alb_bbox_head,
            num_classes=8,
            in_channels=32,
            roi_feat_size=7,
            conv_out_channels=32)))
