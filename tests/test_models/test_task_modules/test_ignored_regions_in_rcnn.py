# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS Sec. V-C: uncertain lesions (ignored instances) are neither positive
nor negative RoIs. mmdet's MaxIoUAssigner does this with ``ignore_iof_thr``
(the LENS configs set 0.5); this pins the behaviour the configs rely on."""
import torch
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401


def test_max_iou_assigner_ignores_uncertain_lesions():
    assigner = TASK_UTILS.build(
        dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
             min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=0.5))
    sampler = TASK_UTILS.build(
        dict(type='RandomSampler', num=16, pos_fraction=0.5,
             add_gt_as_proposals=False))
    proposals = InstanceData(priors=torch.tensor([
        [10., 10., 30., 30.],  # on the lesion
        [61., 61., 79., 79.],  # inside the uncertain lesion
        [100., 100., 120., 120.],  # background
        [55., 55., 85., 85.],  # mostly on the uncertain lesion (IoF 0.44)
    ]))
    gt = InstanceData(bboxes=torch.tensor([[10., 10., 30., 30.]]),
                      labels=torch.zeros(1, dtype=torch.long))
    ignored = InstanceData(bboxes=torch.tensor([[60., 60., 80., 80.]]),
                           labels=torch.zeros(1, dtype=torch.long))
    res = assigner.assign(proposals, gt, ignored)
    assert res.gt_inds.tolist() == [1, -1, 0, 0]
    sampled = sampler.sample(res, proposals, gt)
    assert sampled.pos_inds.tolist() == [0]
    assert 1 not in sampled.neg_inds.tolist()
    # without ignore_iof_thr the uncertain lesion would be a negative
    plain = TASK_UTILS.build(
        dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
             min_pos_iou=0.5, match_low_quality=False))
    assert plain.assign(proposals, gt, ignored).gt_inds.tolist()[1] == 0
