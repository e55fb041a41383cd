# MULAN's detector (Yan et al., MICCAI 2019) without its tagging and
# segmentation branches, the baseline of LENS Table I: the 2.5D truncated
# DenseNet-121 with 3D fusion + FPN (finest level, stride 4), mmdet's
# anchor-based RPN and two-FC detection head (mmdet's Faster R-CNN).
# Anchors: 5 sizes 16-256 px, 3 ratios, at stride 4 (one level).
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'

model = dict(
    data_preprocessor=dict(
        mean=[0.], std=[1.], bgr_to_rgb=False, pad_size_divisor=32,
        pad_value=-1.),
    backbone=dict(
        _delete_=True,
        type='MULANDenseNet',
        num_slices=9,
        slices_per_group=3,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.pytorch.org/models/'
            'densenet121-a639ec97.pth')),
    # FPN over the three kept blocks; only the finest level (stride 4) is
    # returned: mmdet's RPNHead needs one map per anchor stride.
    neck=dict(
        type='LevelSelectFPN',
        in_channels=[256, 512, 1024],
        out_channels=256,
        num_outs=3,
        out_indices=(0, )),
    # Losses as MULAN's released code computes them (rsummers11/CADLab,
    # config.yml, rpn/loss.py, roi_heads/box_head/loss.py): RPN smooth-L1
    # beta=1/9 on raw deltas over the sampled anchors (32 per image, half
    # positive at most), weight 1; RoI smooth-L1 beta=1 on raw deltas
    # (BBOX_REG_WEIGHTS 1, 1, 1, 1) over the sampled RoIs (64 per image),
    # weight 10. mmdet's avg_factor is the number of sampled priors / RoIs in
    # both heads, so these settings give the same loss values.
    rpn_head=dict(
        anchor_generator=dict(
            scales=[4, 8, 16, 32, 64], ratios=[0.5, 1.0, 2.0], strides=[4]),
        loss_bbox=dict(
            _delete_=True, type='SmoothL1Loss', beta=1.0 / 9,
            loss_weight=1.0)),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[4]),
        bbox_head=dict(
            num_classes=1,
            bbox_coder=dict(target_stds=[1., 1., 1., 1.]),
            loss_bbox=dict(
                _delete_=True, type='SmoothL1Loss', beta=1.0,
                loss_weight=10.0))),
    # Uncertain lesions (ignored instances) are neither positive nor
    # negative anchors / RoIs, also on slices without a labelled lesion.
    train_cfg=dict(
        rpn=dict(
            assigner=dict(type='IgnoreAwareMaxIoUAssigner',
                          ignore_iof_thr=0.5),
            sampler=dict(num=32, pos_fraction=0.5)),
        rcnn=dict(
            assigner=dict(type='IgnoreAwareMaxIoUAssigner',
                          ignore_iof_thr=0.5),
            sampler=dict(num=64, pos_fraction=0.25))),
    # The test settings of the whole LENS Table I (those of
    # lens_densenet121_fpn.py), so that row (a) changes the proposal network
    # only: 300 proposals kept (MULAN's released config.yml,
    # POST_NMS_TOP_N_TEST: 300) and detections down to a score of 0.01 (LENS
    # Fig. 3: "Predictions with detection scores smaller than 0.01 are not
    # drawn"); mmdet's Faster R-CNN defaults are 1000 and 0.05.
    test_cfg=dict(rpn=dict(max_per_img=300), rcnn=dict(score_thr=0.01)))
