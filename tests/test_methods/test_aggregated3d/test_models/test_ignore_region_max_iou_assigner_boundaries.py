# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :class:`IgnoreRegionMaxIoUAssigner`.

IoU exactly at ``ignore_iou_thr`` (ignored: ``>=``, as the priors that
would not be clean negatives), its default (``neg_iou_thr``, the upper
bound of a range), an explicit value, positional arguments, the rejected
``ignore_iof_thr`` and the precision of the comparison: the cases a small
change of the code would get wrong while
``test_ignore_region_max_iou_assigner.py`` still passes
(docs/mutation_testing.md).
"""
import re

import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import TASK_UTILS
from mmlesion.methods.aggregated3d.models import IgnoreRegionMaxIoUAssigner

IGNORE = InstanceData(bboxes=torch.tensor([[0., 0., 0., 4., 4., 4.]]))
# IoU with IGNORE: 1/2, 1/4, 1/8 (exact in float32), 0
PRIORS = torch.tensor([[0., 0., 0., 2., 4., 4.], [0., 0., 0., 1., 4., 4.],
                       [0., 0., 0., .5, 4., 4.], [9., 9., 9., 13., 13., 13.]])
NO_GT = InstanceData(
    bboxes=torch.zeros(0, 6), labels=torch.zeros(0, dtype=torch.long))


def _assigner(**kw) -> IgnoreRegionMaxIoUAssigner:
    cfg = dict(type='IgnoreRegionMaxIoUAssigner', pos_iou_thr=0.5,
               neg_iou_thr=0.1, iou_calculator=dict(type='BboxOverlaps3D'))
    cfg.update(kw)
    return TASK_UTILS.build(cfg)


def _gt_inds(assigner, priors=PRIORS, ignore=IGNORE):
    res = assigner.assign(InstanceData(priors=priors), NO_GT, ignore)
    return res.gt_inds.tolist()


def test_iou_exactly_at_the_default_threshold_is_ignored():
    ignore = InstanceData(bboxes=torch.tensor([[0., 0., 0., 10., 10., 10.]]))
    priors = torch.tensor([[0., 0., 0., 10., 10., 1.],  # IoU 0.1
                           [0., 0., 0., 10., 10., .9]])  # IoU 0.09
    assert _gt_inds(_assigner(), priors, ignore) == [-1, 0]


@pytest.mark.parametrize('thr,expected', [(0.5, [-1, 0, 0, 0]),
                                          (0.25, [-1, -1, 0, 0]),
                                          (0.125, [-1, -1, -1, 0])])
def test_a_given_ignore_iou_thr_replaces_neg_iou_thr(thr, expected):
    assert _gt_inds(_assigner(ignore_iou_thr=thr)) == expected


def test_the_default_is_the_upper_bound_of_a_negative_range():
    assert _gt_inds(_assigner(neg_iou_thr=(0.125, 0.25))) == [-1, -1, 0, 0]


def test_positional_arguments_are_mmdets():
    assigner = IgnoreRegionMaxIoUAssigner(
        0.5, 0.25, iou_calculator=dict(type='BboxOverlaps3D'))
    assert (assigner.pos_iou_thr, assigner.neg_iou_thr) == (0.5, 0.25)
    assert _gt_inds(assigner) == [-1, -1, 0, 0]


def test_ignore_iof_thr_above_zero_is_rejected_and_zero_is_off():
    msg = ('IgnoreRegionMaxIoUAssigner replaces ignore_iof_thr; leave it at '
           '-1 and set ignore_iou_thr')
    with pytest.raises(ValueError, match=re.escape(msg) + '$'):
        _assigner(ignore_iof_thr=0.01)
    # mmdet's 0 means "off"; the default threshold is neg_iou_thr (0.1)
    assert _gt_inds(_assigner(ignore_iof_thr=0.)) == [-1, -1, -1, 0]


def test_ignored_boxes_are_compared_in_the_priors_precision():
    # in float32 the float64 box is the prior itself: IoU 1 reaches 1.0
    ignore = InstanceData(
        bboxes=torch.tensor([[0., 0., 0., 1., 1., 1. + 1e-9]],
                            dtype=torch.float64))
    priors = torch.tensor([[0., 0., 0., 1., 1., 1.]])
    assert _gt_inds(_assigner(ignore_iou_thr=1.), priors, ignore) == [-1]
