# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmlesion.methods.aggregated3d.models.aggregated_rpn_head_3d import (
    _unravel, nms_3d_first)
from mmlesion.structures import nms_3d
from tests.helpers.aggregated3d import tiny_aggregated3d_cfg


def _head():
    cfg = tiny_aggregated3d_cfg()
    head_cfg = dict(cfg.rpn_head)
    head_cfg.update(train_cfg=cfg.train_cfg.rpn, test_cfg=cfg.test_cfg.rpn)
    head = MODELS.build(head_cfg)
    head.init_weights()
    return head


@pytest.mark.parametrize('shape', [(4, 5, 6, 3), (1, 1, 7, 1), (9, )])
def test_unravel_is_torch_unravel_index(shape):
    numel = torch.Size(shape).numel()
    index = torch.cat([torch.tensor([0, numel - 1]),
                       torch.randint(0, numel, (50, ),
                                     generator=torch.Generator()
                                     .manual_seed(len(shape)))])
    ours = _unravel(index, shape)
    assert len(ours) == len(shape)
    for a, b in zip(ours, torch.unravel_index(index, shape)):
        assert torch.equal(a, b)


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


# --- the proposals as before the lazy NMS --------------------------------


def _reference_predict_by_feat(head, cls_scores, bbox_preds, cfg):
    """``predict_by_feat`` as it was: every level decoded on its own, the
    full ``nms_3d``, then the first ``max_per_img`` (-1: all)."""
    cfg = ConfigDict(cfg)
    nms_pre = cfg.get('nms_pre', 1000)
    score_thr = cfg.get('score_thr', 0.)
    iou_thr = cfg.get('iou_thr', 0.1)
    max_per_img = cfg.get('max_per_img', 100)
    anchors = head.get_anchors(cls_scores)
    results = []
    for i in range(cls_scores[0].size(0)):
        boxes, logits, levels = [], [], []
        for lvl, (score, pred) in enumerate(zip(cls_scores, bbox_preds)):
            s = score[i].reshape(-1)
            p = pred[i].reshape(-1, 4)
            if 0 < nms_pre < s.numel():
                s, idx = s.topk(nms_pre)
                p, a = p[idx], anchors[lvl][idx]
            else:
                a = anchors[lvl]
            boxes.append(head.bbox_coder.decode(a, p))
            logits.append(s)
            levels.append(torch.full_like(s, lvl, dtype=torch.long))
        boxes, logits = torch.cat(boxes), torch.cat(logits)
        levels = torch.cat(levels)
        scores = logits.sigmoid()
        keep = scores > score_thr
        boxes, logits, levels, scores = (boxes[keep], logits[keep],
                                         levels[keep], scores[keep])
        _, inds = nms_3d(boxes, scores, iou_thr)
        inds = inds if max_per_img < 0 else inds[:max_per_img]
        results.append(InstanceData(
            bboxes=boxes[inds], scores=scores[inds], logits=logits[inds],
            level_ids=levels[inds], labels=levels.new_zeros(len(inds))))
    return results


def _random_boxes(gen, n, ties=False):
    ctr = torch.rand(n, 3, generator=gen) * 40
    size = torch.rand(n, 3, generator=gen) * 12 + 1
    boxes = torch.cat([ctr - size / 2, ctr + size / 2], 1)
    scores = torch.rand(n, generator=gen)
    if ties:  # equal scores and repeated boxes
        scores = (scores * 8).floor() / 8
        boxes[n // 2:n // 2 + n // 8] = boxes[:n // 8]
    return boxes, scores


@pytest.mark.parametrize('ties', [False, True])
def test_nms_3d_first_is_nms_3d(ties):
    gen = torch.Generator().manual_seed(int(ties))
    for n in (0, 1, 5, 130, 700):
        boxes, scores = _random_boxes(gen, n, ties)
        for thr in (0., 0.1, 0.5):
            full = nms_3d(boxes, scores, thr)[1]
            for max_num in (-1, 0, 1, 7, 50, 10000):
                expected = full if max_num < 0 else full[:max_num]
                for block in (1, 3, 128):
                    got = nms_3d_first(boxes, scores, thr, max_num, block)
                    assert torch.equal(got, expected), (n, thr, max_num,
                                                        block)
    with pytest.raises(ValueError, match='needs'):
        nms_3d_first(torch.zeros(3, 4), torch.zeros(3), 0.1)


@pytest.mark.parametrize('cfg', [
    dict(nms_pre=20, iou_thr=0.1, max_per_img=10),
    dict(nms_pre=300, iou_thr=0.1, max_per_img=50),  # the LUNA16 test_cfg
    dict(nms_pre=0, iou_thr=0.3, max_per_img=100, score_thr=0.5),
    dict(nms_pre=5000, iou_thr=0.1, max_per_img=-1),
    dict(nms_pre=50, iou_thr=0.0, max_per_img=1000),
])
def test_predict_by_feat_same_as_before(cfg):
    """Bit for bit the proposals of the old decoding and full NMS, for two
    images at once and a second call (cached anchors)."""
    head = _head().eval()
    torch.manual_seed(0)
    feats = [torch.randn(2, 8, 8, 8, 8), torch.randn(2, 8, 4, 4, 4),
             torch.randn(2, 8, 2, 2, 2)]
    with torch.no_grad():
        cls, reg = head(feats)
        # spread the deltas: boxes of many sizes that overlap or not
        reg = [r * 3 for r in reg]
        for _ in range(2):
            got = head.predict_by_feat(cls, reg, cfg)
            ref = _reference_predict_by_feat(head, cls, reg, cfg)
            for g, r in zip(got, ref):
                assert len(r) > 0
                for key in ('bboxes', 'scores', 'logits', 'level_ids',
                            'labels'):
                    assert torch.equal(g.get(key), r.get(key)), key
    # other feature-map sizes: their own anchors
    small = [f[:, :, :4, :4, :4] for f in feats[:1]] + [
        f[:, :, :2, :2, :2] for f in feats[1:2]] + [feats[2][:, :, :1, :1,
                                                              :1]]
    with torch.no_grad():
        cls, reg = head(small)
        got = head.predict_by_feat(cls, reg, cfg)
        ref = _reference_predict_by_feat(head, cls, reg, cfg)
    for g, r in zip(got, ref):
        assert torch.equal(g.bboxes, r.bboxes)


def test_negative_max_per_img_keeps_every_box_nms_keeps():
    """``max_per_img=-1`` is no limit (mmdet's ``max_num=-1``): nothing
    is dropped from the end of the NMS result."""
    head = _head().eval()
    torch.manual_seed(0)
    feats = [torch.randn(1, 8, 8, 8, 8), torch.randn(1, 8, 4, 4, 4),
             torch.randn(1, 8, 2, 2, 2)]
    with torch.no_grad():
        cls, reg = head(feats)
        cfg = dict(nms_pre=5000, iou_thr=0.1)
        (unlimited, ) = head.predict_by_feat(cls, reg,
                                             dict(cfg, max_per_img=-1))
        (large, ) = head.predict_by_feat(cls, reg,
                                         dict(cfg, max_per_img=10**6))
    assert len(unlimited) == len(large) > 1
    assert torch.equal(unlimited.bboxes, large.bboxes)
