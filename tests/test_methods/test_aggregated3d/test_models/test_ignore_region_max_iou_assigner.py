# Copyright (c) mmlesion contributors. All rights reserved.
"""Ignored boxes (LUNA16's excluded findings) are neither positives nor
negatives: in the assigner, the 3D RPN targets, the FPRN sampling, and the
packed training samples."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

import mmlesion.methods.aggregated3d  # noqa: F401  (registers its components)
from mmdet.registry import MODELS, TASK_UTILS
from mmlesion.datasets.transforms import PackVolumeDetInputs
from tests.helpers.aggregated3d import tiny_aggregated3d_cfg, volume_sample


def _assigner(**kw):
    return TASK_UTILS.build(dict(
        type='IgnoreRegionMaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.1,
        min_pos_iou=0.0, match_low_quality=True,
        iou_calculator=dict(type='BboxOverlaps3D'), **kw))


def _boxes(*rows):
    return torch.tensor(rows, dtype=torch.float32)


PRIORS = _boxes(
    [0, 0, 0, 6, 6, 6],  # the lesion
    [20, 20, 20, 26, 26, 26],  # the excluded finding
    [21, 21, 21, 27, 27, 27],  # overlapping it (IoU 0.58)
    [40, 40, 40, 46, 46, 46],  # background
    [.5, .5, .5, 6.5, 6.5, 6.5],  # on the lesion (IoU 0.62), near the
    # ignored box below
)
GT = InstanceData(bboxes=_boxes([0, 0, 0, 6, 6, 6]),
                  labels=torch.zeros(1, dtype=torch.long))
IGNORE = InstanceData(bboxes=_boxes([20, 20, 20, 26, 26, 26]))


def test_ignored_without_and_with_lesions():
    assigner = _assigner()
    empty = InstanceData(bboxes=torch.zeros(0, 6),
                         labels=torch.zeros(0, dtype=torch.long))
    # a crop with only an excluded finding: mmdet's ignore_iof_thr would
    # make every prior negative here
    res = assigner.assign(InstanceData(priors=PRIORS), empty, IGNORE)
    assert res.gt_inds.tolist() == [0, -1, -1, 0, 0]
    mmdet = TASK_UTILS.build(dict(
        type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.1,
        ignore_iof_thr=0.5, iou_calculator=dict(type='BboxOverlaps3D')))
    assert mmdet.assign(InstanceData(priors=PRIORS), empty,
                        IGNORE).gt_inds.tolist() == [0] * 5
    # with a lesion: positives stay positive even next to an ignored box
    near_lesion = InstanceData(bboxes=_boxes([1, 1, 1, 7, 7, 7]))
    res = assigner.assign(InstanceData(priors=PRIORS), GT, near_lesion)
    assert res.gt_inds[[0, 4]].tolist() == [1, 1]
    res = assigner.assign(InstanceData(priors=PRIORS), GT, IGNORE)
    assert res.gt_inds.tolist()[:4] == [1, -1, -1, 0]
    assert res.labels[1].item() == -1
    with pytest.raises(ValueError, match='ignore_iof_thr'):
        _assigner(ignore_iof_thr=0.5)


def test_rpn_targets_and_fprn_sampling_ignore_excluded_findings():
    cfg = tiny_aggregated3d_cfg()
    assert cfg.train_cfg.rpn.assigner.type == 'IgnoreRegionMaxIoUAssigner'
    assert cfg.train_cfg.fprn.assigner.type == 'IgnoreRegionMaxIoUAssigner'
    head_cfg = dict(cfg.rpn_head, train_cfg=cfg.train_cfg.rpn,
                    test_cfg=cfg.test_cfg.rpn)
    head = MODELS.build(head_cfg)
    feats = [torch.randn(1, 8, 8, 8, 8), torch.randn(1, 8, 4, 4, 4),
             torch.randn(1, 8, 2, 2, 2)]
    cls, _ = head(feats)
    anchors = torch.cat(head.get_anchors(cls))
    no_gt = [InstanceData(bboxes=torch.zeros(0, 6))]
    finding = _boxes([7, 7, 7, 13, 13, 13])
    ignore = [InstanceData(bboxes=finding)]
    labels, weights, _ = head.get_targets(anchors, no_gt, ignore)
    exact = (anchors == finding).all(1)
    assert labels.sum() == 0 and (weights[0][exact] == 0).all()
    plain_labels, plain_weights, _ = head.get_targets(anchors, no_gt)
    assert (plain_weights == 1).all()  # without the ignore: negatives
    # FPRN: proposals on the excluded finding are not sampled at all
    model = MODELS.build(cfg)
    props = [InstanceData(
        bboxes=torch.cat([finding, _boxes([20, 20, 20, 26, 26, 26])]),
        level_ids=torch.zeros(2, dtype=torch.long))]
    samples = model.fprn_head.sample(props, no_gt,
                                     model.rpn_head.nearest_level, ignore)
    assert samples[0].bboxes.tolist() == [[20, 20, 20, 26, 26, 26]]
    assert samples[0].labels.tolist() == [0]
    both = model.fprn_head.sample(props, no_gt, model.rpn_head.nearest_level)
    assert len(both[0].bboxes) == 2


def test_packed_sample_keeps_ignored_boxes_for_the_detector():
    results = dict(
        img=np.zeros((16, 16, 16), np.float32), img_id=0, img_shape=(16,) * 3,
        gt_bboxes=np.array([[1, 1, 1, 5, 5, 5], [8, 8, 8, 12, 12, 12]],
                           np.float32),
        gt_bboxes_labels=np.zeros(2, np.int64),
        gt_ignore_flags=np.array([False, True]))
    sample = PackVolumeDetInputs()(results)['data_samples']
    assert sample.gt_instances.bboxes.tolist() == [[1, 1, 1, 5, 5, 5]]
    assert sample.ignored_instances.bboxes.tolist() == [[8, 8, 8, 12, 12,
                                                         12]]
    # and the detector's loss runs on a crop with only an ignored box
    cfg = tiny_aggregated3d_cfg()
    model = MODELS.build(cfg)
    crop = volume_sample((32, 32, 32))
    crop.ignored_instances = InstanceData(
        bboxes=_boxes([10, 10, 10, 16, 16, 16]),
        labels=torch.zeros(1, dtype=torch.long))
    losses = model.loss(torch.randn(1, 1, 32, 32, 32), [crop])
    assert torch.isfinite(sum(v for k, v in losses.items()
                              if k.startswith('loss')))
