# Copyright (c) mmlesion contributors. All rights reserved.
"""IgnoreAwareMaxIoUAssigner (LENS Sec. V-C / VI-B): uncertain lesions stay
ignored (gt_inds == -1) with 0, 1 and many ground-truth boxes, as built from
the LENS and MULAN configs, and the sampler never draws them."""
import pytest
import torch
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401
import mmlesion.methods.lens  # noqa: F401  (registers the assigner)
from mmlesion.testing import get_config

PROPOSALS = torch.tensor([
    [61., 61., 79., 79.],  # inside the uncertain lesion (IoF 1)
    [100., 100., 120., 120.],  # background
    [55., 55., 85., 85.],  # overlaps the uncertain lesion, IoF 0.44
    [10., 10., 30., 30.],  # on lesion 1 (when labelled)
    [150., 150., 170., 170.],  # on lesion 2 (when labelled)
])
LESIONS = torch.tensor([[10., 10., 30., 30.], [150., 150., 170., 170.]])
UNCERTAIN = torch.tensor([[60., 60., 80., 80.]])


def _inst(boxes: torch.Tensor) -> InstanceData:
    return InstanceData(
        bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long))


def _lens_roi_assigner():
    cfg = get_config('_base_/models/lens_densenet121_fpn.py')
    return TASK_UTILS.build(cfg.model.train_cfg.rcnn.assigner)


def test_plain_max_iou_assigner_loses_ignore_without_gt():
    """The defect this assigner fixes (mmdet's behaviour, pinned so that a
    future mmdet fixing it is noticed)."""
    cfg = get_config('_base_/models/lens_densenet121_fpn.py')
    plain_cfg = dict(cfg.model.train_cfg.rcnn.assigner)
    plain_cfg['type'] = 'MaxIoUAssigner'
    plain = TASK_UTILS.build(plain_cfg)
    res = plain.assign(
        InstanceData(priors=PROPOSALS[:2]), _inst(torch.zeros(0, 4)),
        _inst(UNCERTAIN))
    assert res.gt_inds.tolist() == [0, 0]


@pytest.mark.parametrize('num_gts', [0, 1, 2])
def test_uncertain_lesion_ignored_for_any_number_of_gts(num_gts):
    assigner = _lens_roi_assigner()
    assert type(assigner).__name__ == 'IgnoreAwareMaxIoUAssigner'
    gt = _inst(LESIONS[:num_gts])
    res = assigner.assign(InstanceData(priors=PROPOSALS), gt,
                          _inst(UNCERTAIN))
    expected = [-1, 0, 0] + [i + 1 if i < num_gts else 0 for i in range(2)]
    assert res.gt_inds.tolist() == expected
    assert res.num_gts == num_gts
    sampler = TASK_UTILS.build(
        dict(type='RandomSampler', num=16, pos_fraction=0.5,
             add_gt_as_proposals=False))
    sampled = sampler.sample(res, InstanceData(priors=PROPOSALS), gt)
    assert 0 not in sampled.neg_inds.tolist()
    assert sorted(sampled.pos_inds.tolist()) == list(range(3, 3 + num_gts))
    assert sorted(sampled.neg_inds.tolist()) == [1, 2] + list(
        range(3 + num_gts, 5))


def test_without_ignore_boxes_equals_mmdet():
    assigner = _lens_roi_assigner()
    for ignore in (None, _inst(torch.zeros(0, 4))):
        res = assigner.assign(InstanceData(priors=PROPOSALS),
                              _inst(torch.zeros(0, 4)), ignore)
        assert res.gt_inds.tolist() == [0] * 5
    # ignore_iof_thr <= 0 disables ignoring, as in mmdet
    off = TASK_UTILS.build(
        dict(type='IgnoreAwareMaxIoUAssigner', pos_iou_thr=0.5,
             neg_iou_thr=0.5))
    res = off.assign(InstanceData(priors=PROPOSALS), _inst(torch.zeros(0, 4)),
                     _inst(UNCERTAIN))
    assert res.gt_inds.tolist() == [0] * 5
    # ignore_wrt_candidates=False: IoF over the ignored box's area
    rev = TASK_UTILS.build(
        dict(type='IgnoreAwareMaxIoUAssigner', pos_iou_thr=0.5,
             neg_iou_thr=0.5, ignore_iof_thr=0.5,
             ignore_wrt_candidates=False))
    res = rev.assign(InstanceData(priors=PROPOSALS), _inst(torch.zeros(0, 4)),
                     _inst(UNCERTAIN))
    assert res.gt_inds.tolist() == [-1, 0, -1, 0, 0]


def test_mulan_rpn_and_rcnn_assigners_keep_ignore():
    cfg = get_config('_base_/models/mulan_densenet121_fpn.py')
    for stage in ('rpn', 'rcnn'):
        assigner = TASK_UTILS.build(cfg.model.train_cfg[stage].assigner)
        res = assigner.assign(InstanceData(priors=PROPOSALS[:2]),
                              _inst(torch.zeros(0, 4)), _inst(UNCERTAIN))
        assert res.gt_inds.tolist() == [-1, 0], stage
