# Copyright (c) mmlesion contributors. All rights reserved.
from .attention_gate import AttentionGate  # noqa: F401
from .mask_box_calibration import (  # noqa: F401
    calibrate_scores, calibrate_with_mask, mask_component_boxes)
from .alb_ops import ALB_OP_NAMES, build_alb_op  # noqa: F401
from .nonlocal_graph import NonLocalGraph  # noqa: F401
from .mixed_op import MixedOp  # noqa: F401
from .alb_cell import ALBCell, normalize_genotype  # noqa: F401
from .relation_transfer_module import RelationTransferModule  # noqa: F401
from .dense_block_3d import Bottleneck3D, DenseBlock3D, DenseLayer3D  # noqa
from .roi_align_3d import RoIAlign3D, roi_align_3d  # noqa: F401
