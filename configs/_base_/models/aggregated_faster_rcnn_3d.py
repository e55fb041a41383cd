# 3D Aggregated Faster R-CNN (Zhang et al.), Table I model, LUNA16 "anchor1"
# multi-scale anchors, adaptive focal loss, joint training, sliding-window
# inference with 128^3 windows. Ignored boxes (LUNA16's excluded findings)
# are neither positive nor negative for the RPN and the FPRN
# (IgnoreRegionMaxIoUAssigner: priors near them are not negatives).
model = dict(
    type='AggregatedFasterRCNN3D',
    data_preprocessor=dict(type='VolumeDataPreprocessor', pad_size_divisor=16,
                           pad_value=-1.0),
    backbone=dict(type='DenseUNet3D', in_channels=1, base_channels=32,
                  growth_rate=16, num_dense_layers=2, out_channels=32),
    rpn_head=dict(
        type='AggregatedRPNHead3D',
        in_channels=32,
        num_levels=3,
        anchor_generator=dict(
            type='CubeAnchorGenerator3D', strides=[4, 8, 16],
            sizes=[[4, 6], [8, 12], [16, 24]]),
        bbox_coder=dict(type='DeltaZYXDBBoxCoder'),
        # objectness starts at 0.5 (zero bias): with gamma 5 a 0.01 prior
        # leaves Eq. 3's negative term ~1e-11 at the start (no early focus
        # on the negatives); projects/aggregated3d/tools/adaptive_focal_terms.py
        prior_prob=0.5,
        loss_cls=dict(type='AdaptiveFocalLoss', alpha=0.8, gamma=5.0,
                      t_start=1.0, t_end=10.0),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
    fprn_head=dict(
        type='AggregatedFPRNHead3D',
        in_channels=32,
        strides=(4, 8, 16),
        roi_size=2,
        crop_size=3,
        fc_channels=256,
        use_diameter_alignment=True,
        use_magnify=True,
        # Table I's "Magnify Output 5x5x5": stride-1 2x2x2 deconvs take the
        # 3^3 window to 5^3 (stride 2: the 12^3 variant, aggregated3d-
        # magnify12_*)
        magnify_stride=1,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True,
                      loss_weight=1.0)),
    train_cfg=dict(
        mode='joint',
        rpn_only_iters=0,
        alternate_interval=1,
        # the paper's labelling (Sec. IV-B): IoU >= IoU+ 0.5 positive,
        # < IoU- 0.02 negative, in between ignored; no low-quality rescue.
        # On the LUNA16 annotations.csv only 13 % of nodule positions in a
        # crop have an anchor at IoU >= 0.5 (tools/analysis_tools/
        # anchor_coverage.py); the `*-lowq-rescue_*` variants make each
        # nodule's best anchor positive at any IoU
        rpn=dict(
            assigner=dict(
                type='IgnoreRegionMaxIoUAssigner', pos_iou_thr=0.5,
                neg_iou_thr=0.02, min_pos_iou=0.5, match_low_quality=False,
                iou_calculator=dict(type='BboxOverlaps3D'))),
        rpn_proposal=dict(nms_pre=300, score_thr=0.0, iou_thr=0.1,
                          max_per_img=32),
        fprn=dict(
            assigner=dict(
                type='IgnoreRegionMaxIoUAssigner', pos_iou_thr=0.3,
                neg_iou_thr=0.1,
                min_pos_iou=0.3, match_low_quality=False,
                iou_calculator=dict(type='BboxOverlaps3D')),
            sampler=dict(type='RandomSampler', num=32, pos_fraction=0.25,
                         neg_pos_ub=-1, add_gt_as_proposals=True))),
    test_cfg=dict(
        # the paper's probability threshold at test time, 0.269 =
        # sigmoid(-1) (Sec. IV-F), on the RPN's objectness: a proposal
        # below it never reaches the FPRN (configs/aggregated3d/README.md,
        # "Choices the paper leaves open"; the mean-score reading is the
        # `aggregated3d-mean-thr_*` variant). rpn.score_thr=0 gives every
        # candidate to the FROC instead
        rpn=dict(nms_pre=300, score_thr=0.269, iou_thr=0.1, max_per_img=50),
        window_size=128,
        # a window keeps the detections centred in its core (the window
        # minus half the overlap at inner borders), so it sees whole every
        # lesion up to `overlap` voxels long: 40 > 32.3 mm, the largest
        # LUNA16 nodule (annotations.csv), with room for regression slack
        overlap=40,
        pad_value=-1.0,
        window_batch_size=1,
        merge_iou_thr=0.1,
        # on the mean of the RPN and FPRN scores: none (the paper's 0.269
        # applies to the RPN score above)
        score_thr=0.0,
        max_per_img=100,
        show_progress=True))
