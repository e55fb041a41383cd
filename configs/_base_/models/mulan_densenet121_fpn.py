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
    rpn_head=dict(
        anchor_generator=dict(
            scales=[4, 8, 16, 32, 64], ratios=[0.5, 1.0, 2.0], strides=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[4]),
        bbox_head=dict(num_classes=1)),
    # Uncertain lesions (ignored instances) are neither positive nor
    # negative anchors / RoIs, also on slices without a labelled lesion.
    train_cfg=dict(
        rpn=dict(
            assigner=dict(type='IgnoreAwareMaxIoUAssigner',
                          ignore_iof_thr=0.5)),
        rcnn=dict(
            assigner=dict(type='IgnoreAwareMaxIoUAssigner',
                          ignore_iof_thr=0.5))))
