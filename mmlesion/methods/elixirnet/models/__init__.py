# Copyright (c) mmlesion contributors. All rights reserved.
"""ElixirNet's components: the TRPN head, the Auto-lesion Block (its
operations, cell and RoI / bbox heads, the non-local graph) and the
Relation Transfer Module's bbox head."""
from .alb_bbox_head import DEFAULT_ALB_GENOTYPES, ALBBBoxHead
from .alb_cell import ALBCell, normalize_genotype
from .alb_ops import ALB_OP_NAMES, DARTS_OP_NAMES, build_alb_op
from .alb_roi_head import ALBRoIHead
from .mixed_op import MixedOp
from .nonlocal_graph import NonLocalGraph
from .relation_transfer_module import RelationTransferModule
from .rtm_bbox_head import RTMBBoxHead
from .truncated_rpn_head import TruncatedRPNHead

__all__ = [
    'ALBBBoxHead', 'ALBCell', 'ALBRoIHead', 'ALB_OP_NAMES', 'DARTS_OP_NAMES',
    'DEFAULT_ALB_GENOTYPES', 'MixedOp', 'NonLocalGraph',
    'RTMBBoxHead', 'RelationTransferModule', 'TruncatedRPNHead',
    'build_alb_op', 'normalize_genotype'
]
