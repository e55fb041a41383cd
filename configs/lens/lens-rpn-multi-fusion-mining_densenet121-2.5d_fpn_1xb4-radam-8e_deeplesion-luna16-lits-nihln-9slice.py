# LENS Table II, "RPN [28], two stages": Table I row (d) with every
# dataset's AFP replaced by the anchor-based RPN of the Table I baseline
# (mmdet's RPNHead as configs/_base_/models/mulan_densenet121_fpn.py sets it:
# anchors of 16-256 px x 3 ratios at stride 4, 32 sampled anchors per image,
# smooth L1 beta 1/9, uncertain lesions ignored by its assigner; a test keeps
# the two equal), every other part unchanged (Table II: "The AFP in LENS (row
# (d) in Table I) was replaced with other parts unchanged"): the mined
# annotations of the (c) model, backbone, detection head, data, schedule,
# test settings. The FPN returns its finest level only (LevelSelectFPN): the
# one map (d)'s AFP and RoI head read, and mmdet's RPNHead takes one map per
# anchor stride.
_base_ = './lens-afp-multi-fusion-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py'

model = dict(
    neck=dict(type='LevelSelectFPN', out_indices=(0, )),
    rpn_head=dict(
        _delete_=True,
        type='RPNHead',
        in_channels=256,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[4, 8, 16, 32, 64],
            ratios=[0.5, 1.0, 2.0],
            strides=[4]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0., 0., 0., 0.],
            target_stds=[1., 1., 1., 1.]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9, loss_weight=1.0)),
    train_cfg=dict(
        rpn=dict(
            _delete_=True,
            assigner=dict(
                type='IgnoreAwareMaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=0.5),
            sampler=dict(
                type='RandomSampler',
                num=32,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False)))
