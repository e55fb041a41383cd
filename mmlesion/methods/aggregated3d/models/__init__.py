# Copyright (c) mmlesion contributors. All rights reserved.
"""The 3D Aggregated Faster R-CNN's components: the Dense U-Net 3D backbone
and its blocks, the 3D RPN head (with the adaptive focal and OHEM losses,
the ZYXD coder), the FPRN head (RoIAlign 3D, the ignore-region assigner),
the sliding-window detector and the volume data preprocessor."""
from .adaptive_focal_loss import AdaptiveFocalLoss, split_binary_targets
from .aggregated_faster_rcnn_3d import AggregatedFasterRCNN3D
from .aggregated_fprn_head_3d import AggregatedFPRNHead3D
from .aggregated_rpn_head_3d import AggregatedRPNHead3D
from .delta_zyxd_bbox_coder import DeltaZYXDBBoxCoder
from .dense_block_3d import Bottleneck3D, DenseBlock3D, DenseLayer3D
from .dense_unet_3d import DenseUNet3D
from .ignore_region_max_iou_assigner import IgnoreRegionMaxIoUAssigner
from .ohem_binary_loss import OHEMBinaryLoss
from .roi_align_3d import RoIAlign3D, roi_align_3d
from .volume_data_preprocessor import VolumeDataPreprocessor

__all__ = [
    'AdaptiveFocalLoss', 'AggregatedFPRNHead3D', 'AggregatedFasterRCNN3D',
    'AggregatedRPNHead3D', 'Bottleneck3D', 'DeltaZYXDBBoxCoder',
    'DenseBlock3D', 'DenseLayer3D', 'DenseUNet3D',
    'IgnoreRegionMaxIoUAssigner', 'OHEMBinaryLoss', 'RoIAlign3D',
    'VolumeDataPreprocessor', 'roi_align_3d', 'split_binary_targets'
]
