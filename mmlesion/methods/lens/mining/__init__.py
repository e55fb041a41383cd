# Copyright (c) mmlesion contributors. All rights reserved.
"""Missing-annotation mining of LENS (Sec. V)."""
from .strategies import (MATCHERS, Matcher, MiningCounts, MiningSettings,
                         SeriesMining, SliceProposals, Tracklet, box_sites,
                         build_tracklets, match_intra_patient, mine_series,
                         mine_uncertain, propagate_annotations)

__all__ = [
    'MATCHERS', 'Matcher', 'MiningCounts', 'MiningSettings', 'box_sites',
    'SeriesMining', 'SliceProposals',
    'Tracklet', 'build_tracklets',
    'match_intra_patient', 'mine_series', 'mine_uncertain',
    'propagate_annotations'
]
