# Copyright (c) mmlesion contributors. All rights reserved.
"""The Improved RetinaNet's components: VGG-19 returning C1..C5, the dense
FPN with attention gates, the segmentation head and the detector with its
score calibration."""
from .attention_gate import AttentionGate
from .dense_fpn import DenseFPN
from .improved_retinanet import ImprovedRetinaNet
from .lesion_seg_head import LesionSegHead
from .mask_box_calibration import (calibrate_scores, calibrate_with_mask,
                                   mask_component_boxes)
from .vgg import LesionVGG

__all__ = [
    'AttentionGate', 'DenseFPN', 'ImprovedRetinaNet', 'LesionSegHead',
    'LesionVGG', 'calibrate_scores', 'calibrate_with_mask',
    'mask_component_boxes'
]
