# LENS (Yan et al., TMI 2020, Sec. IV): 2.5D truncated DenseNet-121 with 3D
# feature fusion (MULAN) + FPN, d dataset-specific anchor-free proposal
# networks (AFPHead), RoIAlign, two shared FC layers and dataset-specific
# classification / box layers (LENSBBoxHead). Eq. 1: lambda_1 = 0.1 (AFP
# size loss), lambda_2 = 10 (detection box loss), with the box loss computed
# as in the authors' maskrcnn-benchmark code (MULAN's release,
# rsummers11/CADLab, config.yml + roi_heads/box_head/loss.py; LENS's own code
# is not public and is "based on the maskrcnn-benchmark project"):
#   L_box = 10 * sum_{positive RoIs, 4 deltas} smoothL1_{beta=1}(d - d*)
#           / (number of SAMPLED RoIs: 64 per image, 25 % positive at most)
# with raw deltas (BBOX_REG_WEIGHTS = (1, 1, 1, 1): MULAN overrides the
# maskrcnn-benchmark default (10, 10, 5, 5)). mmdet computes the same thing
# with target_stds = 1, SmoothL1Loss(beta=1, loss_weight=10) and BBoxHead's
# avg_factor = number of sampled RoIs, sampler num=64 (tested equal in
# tests/test_methods/test_lens/test_models/test_lens_box_loss_balance.py). The old
# L1Loss(10) on deltas / (0.1, 0.1, 0.2, 0.2) weighed a positive RoI's
# typical delta (|d| ~ 0.1) ~200x more per coordinate (10 vs 0.05); its 512
# sampled RoIs divided that by 8, still ~25x too much. Uncertain lesions
# (ignore_flag=1 -> mmdet's ignored_instances) are ignored by the AFP targets
# (zero weight in B_ign) and, through IgnoreAwareMaxIoUAssigner's
# ignore_iof_thr, by RoI sampling, also on slices without a labelled lesion
# (mmdet's MaxIoUAssigner makes every RoI background there).

lens_datasets = ['deeplesion', 'luna16', 'lits', 'nih_ln']
model = dict(
    type='LENS',
    num_datasets=len(lens_datasets),
    dataset_names=lens_datasets,
    # 9 windowed slices in [-1, 1]; pad with air.
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[0.],
        std=[1.],
        bgr_to_rgb=False,
        pad_size_divisor=32,
        pad_value=-1.),
    backbone=dict(
        type='MULANDenseNet',
        num_slices=9,
        slices_per_group=3,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.pytorch.org/models/'
            'densenet121-a639ec97.pth')),
    # MULAN predicts on the finest FPN level (stride 4); the coarser levels
    # only feed the top-down path.
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024],
        out_channels=256,
        num_outs=3),
    rpn_head=dict(
        type='AFPHead',
        in_channels=256,
        feat_channels=256,
        strides=(4, ),
        center_ratio=0.2,
        ignore_ratio=0.5,
        loss_centerness=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=0.1)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4]),
        bbox_head=dict(
            type='LENSBBoxHead',
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=1,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[1., 1., 1., 1.]),
            reg_class_agnostic=True,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=10.0))),
    train_cfg=dict(
        rpn=None,
        rpn_proposal=dict(
            nms_pre=2000,
            max_per_img=1000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        proposal_fusion=dict(
            nms=dict(type='nms', iou_threshold=0.7), max_per_img=2000),
        rcnn=dict(
            assigner=dict(
                type='IgnoreAwareMaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=False,
                # RoIs lying mostly on an uncertain lesion: ignored.
                ignore_iof_thr=0.5),
            # MULAN's ROI_HEADS.BATCH_SIZE_PER_IMAGE (the box loss's divisor)
            sampler=dict(
                type='RandomSampler',
                num=64,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=1000,
            max_per_img=300,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        proposal_fusion=dict(
            nms=dict(type='nms', iou_threshold=0.7), max_per_img=300),
        rcnn=dict(
            score_thr=0.01,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100),
        # Which dataset experts to fuse at test time (None: all).
        expert_fusion=dict(
            experts=None,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100)))
