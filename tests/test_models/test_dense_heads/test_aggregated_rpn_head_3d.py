# Copyright (c) mmlesion contributors. All rights reserved.
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmlesion.testing.aggregated3d import tiny_aggregated3d_cfg


def _head():
    cfg = tiny_aggregated3d_cfg()
    head_cfg = dict(cfg.rpn_head)
    head_cfg.update(train_cfg=cfg.train_cfg.rpn, test_cfg=cfg.test_cfg.rpn)
    head = MODELS.build(head_cfg)
    head.init_weights()
    return head


def test_heads_not_shared_and_shapes():
    head = _head()
    assert len(head.heads) == 3
    assert head.heads[0][0].conv1.conv.weight is not \
        head.heads[1][0].conv1.conv.weight
    feats = [torch.randn(2, 8, 8, 8, 8), torch.randn(2, 8, 4, 4, 4),
             torch.randn(2, 8, 2, 2, 2)]
    cls, reg = head(feats)
    assert [tuple(c.shape) for c in cls] == [(2, 8, 8, 8, 2), (2, 4, 4, 4, 2),
                                             (2, 2, 2, 2, 2)]
    assert reg[0].shape == (2, 8, 8, 8, 2, 4)
    # objectness starts at probability 0.5 (zero bias, Eq. 3's focus
    # shift); another prior on request
    bias = head.heads[0][-1].bias.view(-1, 5)[:, 0]
    assert torch.allclose(bias, torch.zeros(()))
    head.prior_prob = 0.01
    head.init_weights()
    bias = head.heads[0][-1].bias.view(-1, 5)[:, 0]
    assert torch.allclose(bias.sigmoid(), torch.tensor(0.01))


def test_loss_and_targets():
    head = _head()
    feats = [torch.randn(1, 8, 8, 8, 8, requires_grad=True),
             torch.randn(1, 8, 4, 4, 4), torch.randn(1, 8, 2, 2, 2)]
    cls, reg = head(feats)
    gt = [InstanceData(bboxes=torch.tensor([[7., 7., 7., 13., 13., 13.]]))]
    anchors = torch.cat(head.get_anchors(cls))
    labels, weights, targets = head.get_targets(anchors, gt)
    pos = labels[0] > 0
    # the 6 mm anchor centred at (10, 10, 10) matches exactly (delta 0)
    exact = (anchors == torch.tensor([7., 7., 7., 13., 13., 13.])).all(1)
    assert pos[exact].all() and targets[0][exact].abs().max() < 1e-6
    assert (weights[0] == 0).any()  # IoU in (0.02, 0.5): ignored
    losses = head.loss_by_feat(cls, reg, gt)
    assert losses['loss_rpn_bbox'].item() >= 0
    (losses['loss_rpn_cls'] + losses['loss_rpn_bbox']).backward()
    assert feats[0].grad.abs().sum() > 0
    # an image without lesions: all negatives, zero regression loss
    empty = head.loss_by_feat(cls, reg, [InstanceData(
        bboxes=torch.zeros(0, 6))])
    assert empty['loss_rpn_bbox'].item() == 0


def test_predict_by_feat_levels_and_nms():
    head = _head()
    feats = [torch.randn(1, 8, 8, 8, 8), torch.randn(1, 8, 4, 4, 4),
             torch.randn(1, 8, 2, 2, 2)]
    cls, reg = head(feats)
    props = head.predict_by_feat(cls, reg, dict(nms_pre=20, iou_thr=0.1,
                                                max_per_img=10))[0]
    assert len(props) <= 10 and props.bboxes.shape[1] == 6
    assert set(props.level_ids.tolist()) <= {0, 1, 2}
    assert (props.scores[:-1] >= props.scores[1:]).all()
    # nearest level by anchor diameter
    boxes = torch.tensor([[0., 0, 0, 5, 5, 5], [0., 0, 0, 10, 10, 10],
                          [0., 0, 0, 30, 30, 30]])
    assert head.nearest_level(boxes).tolist() == [0, 1, 2]


def test_anchors_are_float32_for_half_outputs():
    """Under AMP the outputs are float16; anchors (voxel coordinates up to
    the scan size) stay float32 so that targets keep their precision."""
    head = _head()
    feats = [torch.randn(1, 8, 8, 8, 8), torch.randn(1, 8, 4, 4, 4),
             torch.randn(1, 8, 2, 2, 2)]
    cls, reg = head(feats)
    anchors = head.get_anchors([c.half() for c in cls])
    assert all(a.dtype == torch.float32 for a in anchors)
    gt = [InstanceData(bboxes=torch.tensor([[7., 7., 7., 13., 13., 13.]]))]
    labels, _, targets = head.get_targets(torch.cat(anchors), gt)
    assert targets[0].dtype == torch.float32 and (labels[0] > 0).any()
