# LENS Table II, "CenterNet [41], two stages": Table I row (d) with every
# dataset's AFP replaced by CenterNet ("Objects as Points", mmdet's
# CenterNetHead: Gaussian heatmap focal loss, size L1 x 0.1, offset L1 on
# one stride-4 map), every other part unchanged. CenterNetProposalHead is
# mmdet's head with the proposal interface of an RPN (a proposal config,
# boxes at the input scale): the nms_pre best 3 x 3 local maxima, NMS 0.7,
# the proposal counts of (d). The FPN returns its finest level only
# (LevelSelectFPN), the one map (d)'s AFP and RoI head read. mmdet's head
# reads no ignored regions: an uncertain lesion is background to it (the
# detection head still ignores it).
_base_ = './lens-afp-multi-fusion-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py'

model = dict(
    neck=dict(type='LevelSelectFPN', out_indices=(0, )),
    rpn_head=dict(
        _delete_=True,
        type='CenterNetProposalHead',
        in_channels=256,
        feat_channels=256,
        local_maximum_kernel=3,
        loss_center_heatmap=dict(type='GaussianFocalLoss', loss_weight=1.0),
        loss_wh=dict(type='L1Loss', loss_weight=0.1),
        loss_offset=dict(type='L1Loss', loss_weight=1.0)))
