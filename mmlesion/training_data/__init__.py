# Copyright (c) mmlesion contributors. All rights reserved.
"""Training data that a trained model makes for the next stage of its
training: the hard regions of Anchor Based Sampling, as typed results; a
method's own is in its package (``mmlesion/methods/<name>/``)."""
from .hard_region_mining import (ScanHardRegions, find_hard_regions,
                                 training_scans_cfg)

__all__ = [
    'ScanHardRegions', 'find_hard_regions', 'training_scans_cfg'
]
