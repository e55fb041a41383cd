# Copyright (c) mmlesion contributors. All rights reserved.
from .attention_gate import AttentionGate  # noqa: F401
from .mask_box_calibration import (  # noqa: F401
    calibrate_scores, calibrate_with_mask, mask_component_boxes)
