# Copyright (c) mmlesion contributors. All rights reserved.
"""The typed training data a trained model makes for the next stage of its
method (the hard regions of 3D-AG's Anchor Based Sampling, LENS's FPR
proposals) write the files the dict results wrote, byte for byte (the
tools' end-to-end runs are in
``tests/test_tools/test_analysis_tools/test_find_hard_regions.py`` and
``tests/test_methods/test_lens/test_mining/test_mined_dataset_and_tool.py``)."""
import json

from mmlesion.datasets.lens.fpr_patches import FORMAT, positive_box_3d
from mmlesion.methods.lens.fpr_proposals import (FPRProposal,
                                                 FPRProposalCounts,
                                                 FPRProposals)
from mmlesion.methods.aggregated3d.hard_regions import ScanHardRegions


def test_scan_hard_regions_is_the_file_entry():
    region = dict(kind='hard_negative', center_xyz=[1., 2., 3.],
                  size_xyz=[4., 4., 4.], score=.9)
    scan = ScanHardRegions(
        id='s0', series_uid='1.2.3', img_path='a/s0.mhd',
        shape_zyx=[8, 16, 16], spacing_zyx=[2., .7, .7],
        origin_xyz=[0., 0., 0.], direction=[1., 0, 0, 0, 1, 0, 0, 0, 1],
        regions=[region])
    old = dict(id='s0', series_uid='1.2.3', img_path='a/s0.mhd',
               shape_zyx=[8, 16, 16], spacing_zyx=[2., .7, .7],
               origin_xyz=[0., 0., 0.],
               direction=[1., 0, 0, 0, 1, 0, 0, 0, 1], regions=[region])
    assert json.dumps(scan.to_dict()) == json.dumps(old)


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
