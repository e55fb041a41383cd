# Copyright (c) mmlesion contributors. All rights reserved.
from .attention_gate import AttentionGate  # noqa: F401
from .mask_box_calibration import (  # noqa: F401
    calibrate_scores, calibrate_with_mask, mask_component_boxes)
from .dense_block_3d import Bottleneck3D, DenseBlock3D, DenseLayer3D  # noqa
from .roi_align_3d import RoIAlign3D, roi_align_3d  # noqa: F401
