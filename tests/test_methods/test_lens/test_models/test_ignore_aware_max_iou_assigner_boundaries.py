# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :class:`IgnoreAwareMaxIoUAssigner`.

IoF exactly at ``ignore_iof_thr`` (not ignored: mmdet's ``>``), a threshold
of 0 (ignoring off, as in mmdet), IoF rather than IoU, both
``ignore_wrt_candidates`` directions, and "with a GT box the result is
mmdet's" where mmdet itself does not ignore: the cases a small change of
the code would get wrong while ``test_ignore_aware_max_iou_assigner.py``
still passes (docs/mutation_testing.md).
"""
import pytest
import torch
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401
import mmlesion.methods.lens  # noqa: F401  (registers the assigner)
from mmdet.registry import TASK_UTILS

UNCERTAIN = torch.tensor([[60., 60., 80., 80.]])  # 20 x 20
PRIORS = torch.tensor([
    [70., 60., 90., 80.],  # half on the uncertain box: IoF 0.5 either way
    [69., 60., 89., 80.],  # IoF 0.55 either way
    [60., 60., 65., 65.],  # inside it: IoF 1 over the prior, IoU 1/16
    [100., 100., 120., 120.],  # background
])


def _inst(boxes: torch.Tensor) -> InstanceData:
    return InstanceData(
        bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long))


NO_GT = _inst(torch.zeros(0, 4))


def _assigner(**kw):
    cfg = dict(type='IgnoreAwareMaxIoUAssigner', pos_iou_thr=0.5,
               neg_iou_thr=0.5, ignore_iof_thr=0.5)
    cfg.update(kw)
    return TASK_UTILS.build(cfg)


def test_iof_exactly_at_the_threshold_is_not_ignored():
    res = _assigner().assign(InstanceData(priors=PRIORS), NO_GT,
                             _inst(UNCERTAIN))
    # 0.5 is not > 0.5; 0.55 and the IoF-1 prior (IoU 1/16) are
    assert res.gt_inds.tolist() == [0, -1, -1, 0]
    assert res.labels.tolist() == [-1] * 4


def test_iof_over_the_ignored_box_exactly_at_the_threshold():
    res = _assigner(ignore_wrt_candidates=False).assign(
        InstanceData(priors=PRIORS), NO_GT, _inst(UNCERTAIN))
    # over the ignored box's area the small prior covers 25 / 400 only
    assert res.gt_inds.tolist() == [0, -1, 0, 0]


def test_zero_ignore_iof_thr_turns_ignoring_off():
    res = _assigner(ignore_iof_thr=0.).assign(
        InstanceData(priors=PRIORS), NO_GT, _inst(UNCERTAIN))
    assert res.gt_inds.tolist() == [0] * 4


def test_with_one_gt_the_result_is_mmdets_even_where_mmdet_does_not_ignore():
    # a negative range starting at -1 makes mmdet count its ignored priors
    # (overlap -1) as negatives: with a GT box that result is kept
    kw = dict(pos_iou_thr=0.5, neg_iou_thr=(-1., 0.3), ignore_iof_thr=0.5)
    gt = _inst(torch.tensor([[0., 0., 20., 20.]]))
    priors = InstanceData(priors=torch.cat([PRIORS, gt.bboxes]))
    ours = _assigner(**kw).assign(priors, gt, _inst(UNCERTAIN))
    plain = TASK_UTILS.build(dict(type='MaxIoUAssigner', **kw)).assign(
        priors, gt, _inst(UNCERTAIN))
    assert plain.gt_inds.tolist() == [0, 0, 0, 0, 1]
    assert ours.gt_inds.tolist() == plain.gt_inds.tolist()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_ignored_boxes_on_the_cpu_with_priors_on_cuda():
    res = _assigner().assign(InstanceData(priors=PRIORS.cuda()), NO_GT,
                             _inst(UNCERTAIN))
    assert res.gt_inds.tolist() == [0, -1, -1, 0]
