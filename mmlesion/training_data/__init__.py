# Copyright (c) mmlesion contributors. All rights reserved.
"""Training data that a trained model makes for the next stage of its
method: the hard regions of one round of Anchor Based Sampling (3D
Aggregated Faster R-CNN, Sec. IV-C) and the labelled 3D proposals the LENS
FPR network trains on (LENS, Sec. IV-D). Each runs the model through
:mod:`mmlesion.apis` and returns typed results; the files they feed are
those of :mod:`mmlesion.datasets`."""
from .hard_region_mining import (ScanHardRegions, find_hard_regions,
                                 training_scans_cfg)
from .lens_fpr_proposals import (FPRProposal, FPRProposalCounts,
                                 FPRProposals, make_fpr_proposals)

__all__ = [
    'ScanHardRegions', 'find_hard_regions', 'training_scans_cfg',
    'FPRProposal', 'FPRProposalCounts', 'FPRProposals', 'make_fpr_proposals'
]
