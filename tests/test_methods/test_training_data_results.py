# Copyright (c) mmlesion contributors. All rights reserved.
"""The typed training data a trained model makes for the next stage of its
method (LENS's FPR proposals) write the files the dict results wrote, byte
for byte (the tool's end-to-end run is in
``tests/test_methods/test_lens/test_mining/test_mined_dataset_and_tool.py``;
3D-AG's hard regions are the file's own TypedDicts, run end to end in
``tests/test_tools/test_analysis_tools/test_find_hard_regions.py``)."""
import json

from mmlesion.methods.lens.datasets.fpr_patches import FORMAT, positive_box_3d
from mmlesion.methods.lens.fpr_proposals import (FPRProposal,
                                                 FPRProposalCounts,
                                                 FPRProposals)


def test_fpr_proposals_file_is_unchanged():
    made = FPRProposals(
        [FPRProposal('000001_01_01', positive_box_3d([1, 2, 3, 4, 5, 3]),
                     .5, 1),
         FPRProposal('000001_01_01', [1., 2., 3., 4., 5., 6.], .25, 0)],
        FPRProposalCounts(tp=1, fp=1, unused=3))
    old_props = [
        dict(series_dir='000001_01_01', bbox_3d=[1., 2., 3., 4., 5., 3.01],
             score=.5, label=1),
        dict(series_dir='000001_01_01', bbox_3d=[1., 2., 3., 4., 5., 6.],
             score=.25, label=0)]
    old_counts = dict(tp=1, fp=1, unused=3)
    assert json.dumps(made.to_dict(tp_thr=.5, fp_thr=.3)) == \
        json.dumps(dict(metainfo=dict(format=FORMAT, counts=old_counts,
                                      tp_thr=.5, fp_thr=.3),
                        proposals=old_props))
    assert json.dumps(made.to_dict()) == json.dumps(
        dict(metainfo=dict(format=FORMAT, counts=old_counts),
             proposals=old_props))
    assert str(made.counts.to_dict()) == str(old_counts)  # as logged
