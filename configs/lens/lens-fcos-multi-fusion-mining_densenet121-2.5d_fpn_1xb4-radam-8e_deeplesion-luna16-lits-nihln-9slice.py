# LENS Table II, "FCOS [40], two stages": Table I row (d) with every
# dataset's AFP replaced by FCOS (mmdet's FCOSHead as the FCOS paper has it:
# 4 stacked GN convs, focal loss, IoU loss, centerness BCE; scores x
# centerness), every other part unchanged. One level, stride 4, every box
# size (regress_ranges (-1, 1e8)): the one map (d)'s AFP and RoI head read
# (LevelSelectFPN returns the FPN's finest level only). mmdet's head reads no
# ignored regions: an uncertain lesion is background to it (the detection
# head still ignores it).
_base_ = './lens-afp-multi-fusion-mining_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py'

model = dict(
    neck=dict(type='LevelSelectFPN', out_indices=(0, )),
    rpn_head=dict(
        _delete_=True,
        type='FCOSHead',
        in_channels=256,
        feat_channels=256,
        stacked_convs=4,
        strides=[4],
        regress_ranges=((-1, 1e8), ),
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)))
