# ElixirNet building blocks (Jiang et al., AAAI 2020), as plain variables that
# the configs in configs/elixirnet/ plug into a two-stage detector:
#   model = dict(rpn_head=_base_.trpn_head, roi_head=_base_.rtm_roi_head)
# This file defines no `model`, so it can be listed next to any detector
# config in `_base_`. Sizes are those of the full R50-FPN ElixirNet; smaller
# detectors (C4, demo) override in_channels / roi_feat_size / channels.

# "Five anchor scales (2, 3, 4, 6, 12) and three aspect ratios of (0.5, 1, 2)
# are used in TRPN following (Yan, Bagheri, and Summers 2018)". Strides are
# left to the detector (FPN: 4..64; C4: 16), merged from its own anchor
# generator.
elixirnet_anchor_generator = dict(
    type='AnchorGenerator', scales=[2, 3, 4, 6, 12], ratios=[0.5, 1.0, 2.0])

# TruncatedRPN (Eq. 1): 1x1 conv + sigmoid location map p, feature * p,
# anchors kept where p >= the map's mean (per image and level). p starts at
# 0.5 and is supervised by the RPN's own anchor assignment through a
# class-balanced sigmoid cross-entropy (positive and negative locations weigh
# half each: ln 2 at initialisation, the scale of the objectness loss). See
# mmlesion/methods/elixirnet/models/truncated_rpn_head.py.
trpn_head = dict(
    type='TruncatedRPNHead',
    anchor_generator=elixirnet_anchor_generator,
    truncate_thr='mean',
    weight_features=True,
    truncate_in_loss=True,
    loc_prior=0.5,
    loss_loc=dict(
        type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0))
# Paper-pure TRPN for the ablation (p learnt only through Eq. (1)'s feature
# weighting): loss_loc=None, see elixirnet-trpn-noaux_r50_fpn_1x_....

# Auto-lesion Block genotypes (ALB = normal cell, ALBr = reduce cell, B = 4
# branches; each entry is (operation, input index): 0 = cell input, j =
# branch j).
# PAPER-TEXT GENOTYPE, NOT A SEARCH RESULT: reconstructed from the paper's
# description of Figure 3 (atrous 3x3 d3/d5 and a Non-local operator in ALB;
# 1x3+3x1, 5x5 depthwise-separable and average pooling in ALBr); the exact
# wiring of Figure 3 is not recoverable from the text. Searched blocks come
# as ready configs from tools/search_alb.py (they inherit an ElixirNet config
# and replace these genotypes), e.g. the demo search's
# configs/elixirnet/demo/elixirnet-searched_r18-tiny_fpn_1x_deeplesion-demo.py.
alb_genotypes = dict(
    normal=dict(
        ops=[('non_local', 0), ('dil_conv_3x3_d3', 0),
             ('dil_conv_3x3_d5', 0), ('sep_conv_3x3', 1),
             ('sep_conv_3x3', 0), ('skip_connect', 1),
             ('dil_conv_3x3_d3', 2), ('skip_connect', 3)],
        concat=[1, 2, 3, 4]),
    reduce=dict(
        ops=[('sep_conv_1x3_3x1', 0), ('avg_pool_3x3', 0),
             ('sep_conv_5x5', 0), ('skip_connect', 1),
             ('sep_conv_1x3_3x1', 1), ('avg_pool_3x3', 0),
             ('sep_conv_5x5', 2), ('skip_connect', 3)],
        concat=[1, 2, 3, 4]))

# RoI head of 3x3 conv (-> 128) + 1 ALB + 2 ALBr (P = 512) + fc_cls/fc_reg.
# RoI Align 14x14 so that the dilated convolutions see context (14->7->4).
# `_delete_` drops the detector's own box head (e.g. Shared2FCBBoxHead).
alb_bbox_head = dict(
    _delete_=True,
    type='ALBBBoxHead',
    in_channels=256,
    roi_feat_size=14,
    conv_out_channels=128,
    num_reduction_cells=2,
    num_branches=4,
    genotypes=alb_genotypes,
    num_classes=1,
    bbox_coder=dict(
        type='DeltaXYWHBBoxCoder',
        target_means=[0., 0., 0., 0.],
        target_stds=[0.1, 0.1, 0.2, 0.2]),
    reg_class_agnostic=False,
    loss_cls=dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='L1Loss', loss_weight=1.0))

# + Relation Transfer Module: f_E = E Gamma_s M W_E (E = 128 channels)
# concatenated to the region features. When training the single-class
# detector from scratch the binary classifier (M, Gamma_s) is learnt
# (freeze_binary_cls=False); the multi-type fine-tuning configs freeze it
# after loading it from the single-class checkpoint.
rtm_bbox_head = dict(
    alb_bbox_head,
    type='RTMBBoxHead',
    rtm_channels=128,
    num_embeddings=2,
    freeze_binary_cls=False)

alb_roi_head = dict(
    type='ALBRoIHead',
    bbox_roi_extractor=dict(roi_layer=dict(output_size=14)),
    bbox_head=alb_bbox_head)
rtm_roi_head = dict(alb_roi_head, bbox_head=rtm_bbox_head)
