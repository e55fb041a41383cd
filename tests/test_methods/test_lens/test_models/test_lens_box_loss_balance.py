# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS Eq. 1, lambda_2 = 10: the RoI box loss of the LENS and MULAN configs
equals the loss of the authors' maskrcnn-benchmark code (MULAN's release):
10 * sum over positive RoIs of smooth-L1 (beta 1) on raw deltas, divided by
the number of sampled RoIs. The reference is written out here by hand."""
import math

import pytest
import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401
from mmlesion.testing import get_config


def _reference_box_loss(priors, gts, pos_inds, pos_gt, num_sampled, pred):
    """maskrcnn-benchmark FastRCNNLossComputation with BBOX_REG_WEIGHTS
    (1, 1, 1, 1) and REG_LOSS_WEIGHT 10, written from the formula."""
    total = 0.
    for k, (i, g) in enumerate(zip(pos_inds.tolist(), pos_gt.tolist())):
        px1, py1, px2, py2 = priors[i].tolist()
        gx1, gy1, gx2, gy2 = gts[g].tolist()
        pw, ph = px2 - px1, py2 - py1
        gw, gh = gx2 - gx1, gy2 - gy1
        target = [((gx1 + gx2) - (px1 + px2)) / 2 / pw,
                  ((gy1 + gy2) - (py1 + py2)) / 2 / ph,
                  math.log(gw / pw), math.log(gh / ph)]
        for d, t in zip(pred[k].tolist(), target):
            diff = abs(d - t)
            total += 0.5 * diff**2 if diff < 1. else diff - 0.5
    return 10. * total / num_sampled


@pytest.mark.parametrize('config', [
    'lens/demo/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py',
    'lens/demo/mulan_densenet-tiny_fpn_radam-12e_deeplesion-demo-partial.py'
])
def test_box_loss_equals_maskrcnn_benchmark(config):
    cfg = get_config(config).model
    head_cfg = dict(cfg.roi_head.bbox_head)
    if head_cfg['type'] == 'LENSBBoxHead':
        head_cfg['num_datasets'] = 1
    head = MODELS.build(head_cfg)
    rcnn = cfg.train_cfg.rcnn
    assigner = TASK_UTILS.build(rcnn.assigner)
    sampler = TASK_UTILS.build(rcnn.sampler)
    assert sampler.num == 64  # MULAN's ROI_HEADS.BATCH_SIZE_PER_IMAGE
    torch.manual_seed(0)
    gts = torch.tensor([[40., 40., 80., 90.], [150., 120., 170., 136.]])
    jitter = torch.randn(60, 4) * 3.
    near = gts.repeat(30, 1) + jitter
    far = torch.rand(200, 2) * 200
    far = torch.cat([far, far + 10 + torch.rand(200, 2) * 20], dim=1)
    priors = torch.cat([near, far])
    gt = InstanceData(bboxes=gts, labels=torch.zeros(2, dtype=torch.long))
    res = assigner.assign(InstanceData(priors=priors), gt)
    sampled = sampler.sample(res, InstanceData(priors=priors), gt)
    num_sampled = len(sampled.pos_inds) + len(sampled.neg_inds)
    assert 0 < len(sampled.pos_inds) <= 16 and num_sampled == 64
    labels, label_weights, bbox_targets, bbox_weights = head.get_targets(
        [sampled], rcnn, concat=True)
    n = labels.numel()
    pred = torch.randn(n, 4) * 0.2
    cls_score = torch.zeros(n, 2)
    rois = torch.cat([torch.zeros(n, 1), sampled.priors], dim=1)
    losses = head.loss(cls_score, pred, rois, labels, label_weights,
                       bbox_targets, bbox_weights)
    pos = labels == 0
    # with add_gt_as_proposals the GTs are the first priors of the sample
    ref = _reference_box_loss(sampled.priors, gts,
                              torch.arange(n)[pos],
                              sampled.pos_assigned_gt_inds,
                              n, pred[pos])
    assert losses['loss_bbox'].item() == pytest.approx(ref, rel=1e-5)
    # classification: cross-entropy averaged over the sampled RoIs
    assert losses['loss_cls'].item() == pytest.approx(math.log(2), rel=1e-5)
