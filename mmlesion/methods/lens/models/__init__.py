# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS's components: the detector with its dataset experts and fusion
(two-stage, one-stage, separate models), the AFP and CenterNet proposal
heads, its box head and assigner, MULAN's DenseNet and the level-select
FPN, and the 3D FPR network (ResNet-18 3D, ``LENSFPR``)."""
from .afp_head import AFPHead
from .centernet_proposal_head import CenterNetProposalHead
from .ignore_aware_max_iou_assigner import IgnoreAwareMaxIoUAssigner
from .lens import LENS, fuse_instances
from .lens_bbox_head import LENSBBoxHead
from .lens_fpr import LENSFPR, combine_fpr_scores
from .lens_one_stage import LENSOneStage
from .lens_separate_models import LENSSeparateModels
from .level_select_fpn import LevelSelectFPN
from .mulan_densenet import MULANDenseNet
from .resnet18_fpr3d import ResNet18FPR3D

__all__ = [
    'AFPHead', 'CenterNetProposalHead', 'IgnoreAwareMaxIoUAssigner', 'LENS',
    'LENSBBoxHead', 'LENSFPR', 'LENSOneStage', 'LENSSeparateModels',
    'LevelSelectFPN', 'MULANDenseNet', 'ResNet18FPR3D', 'combine_fpr_scores',
    'fuse_instances'
]
