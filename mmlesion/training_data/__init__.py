# Copyright (c) mmlesion contributors. All rights reserved.
"""Training data that a trained model makes for the next stage of its
method: the hard regions of Anchor Based Sampling (3D Aggregated Faster
R-CNN, Sec. IV-C) and the labelled 3D proposals of the LENS FPR network
(LENS, Sec. IV-D), as typed results."""
from .hard_region_mining import (ScanHardRegions, find_hard_regions,
                                 training_scans_cfg)
from .lens_fpr_proposals import (FPRProposal, FPRProposalCounts,
                                 FPRProposals, make_fpr_proposals)

__all__ = [
    'ScanHardRegions', 'find_hard_regions', 'training_scans_cfg',
    'FPRProposal', 'FPRProposalCounts', 'FPRProposals', 'make_fpr_proposals'
]
