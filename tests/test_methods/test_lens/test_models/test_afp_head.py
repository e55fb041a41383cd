# Copyright (c) mmlesion contributors. All rights reserved.
"""Tests of AFPHead (LENS Sec. IV-B): targets on hand-made boxes, and use as
the rpn_head of mmdet's own Faster R-CNN."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.hub import get_config as get_mim_config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401
from mmlesion.methods.lens.models import AFPHead


def _head(**kwargs) -> AFPHead:
    cfg = dict(type='AFPHead', in_channels=4, feat_channels=8, strides=(4, ))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _points(size: int, stride: int) -> torch.Tensor:
    c = torch.arange(size, dtype=torch.float) * stride + stride / 2
    yy, xx = torch.meshgrid(c, c, indexing='ij')
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def _grid(t: torch.Tensor, size: int) -> torch.Tensor:
    return t.reshape(size, size)


def test_targets_centre_region_and_ignore_ring():
    head = _head()
    pts = _points(32, 4)  # 128 x 128 image, pixel centres at 2, 6, ...
    gt = torch.tensor([[24., 24., 104., 104.]])  # 80 x 80, centre 64
    labels, weights, targets, pos = head.get_targets_single_level(
        pts, 4, (0., 1e8), gt, torch.zeros(0, 4))
    lab, w = _grid(labels, 32), _grid(weights, 32)
    # Centre region: 16 x 16 px around (64, 64): x in (56, 72): centres
    # 58, 62, 66, 70 -> columns 14..17.
    pos_idx = torch.nonzero(lab == 0)
    assert set(pos_idx[:, 0].tolist()) == {14, 15, 16, 17}
    assert set(pos_idx[:, 1].tolist()) == {14, 15, 16, 17}
    assert int(pos.sum()) == 16
    # Ignore ring: 40 x 40 box (44, 84) minus the centre: weight 0, label 1.
    assert lab[12, 12] == 1 and w[12, 12] == 0  # (50, 50)
    assert lab[11, 11] == 1 and w[11, 11] == 0  # (46, 46)
    assert w[10, 10] == 1 and lab[10, 10] == 1  # (42, 42): outside, negative
    # Inside the lesion box but outside B_ign: an ordinary negative.
    assert w[7, 7] == 1 and lab[7, 7] == 1  # (30, 30)
    assert w[14, 14] == 1
    # Box targets: distances (l, t, r, b) / stride at (58, 58).
    i = 14 * 32 + 14
    torch.testing.assert_close(
        targets[i], torch.tensor([34., 34., 46., 46.]) / 4)


def test_targets_uncertain_lesion_is_only_ignored():
    head = _head()
    pts = _points(32, 4)
    uncertain = torch.tensor([[24., 24., 104., 104.]])
    labels, weights, _, pos = head.get_targets_single_level(
        pts, 4, (0., 1e8), torch.zeros(0, 4), uncertain)
    assert not pos.any() and (labels == 1).all()
    w = _grid(weights, 32)
    # the whole B_ign (centre included) has no loss; outside it negatives.
    assert w[15, 15] == 0 and w[12, 12] == 0 and w[10, 10] == 1
    assert int((weights == 0).sum()) == 10 * 10  # centres 46..82 per axis


def test_targets_small_lesion_and_overlaps():
    head = _head()
    pts = _points(32, 4)
    # 10 x 10 lesion: centre region 2 x 2 px holds no pixel centre.
    small = torch.tensor([[31., 31., 41., 41.]])
    labels, _, targets, pos = head.get_targets_single_level(
        pts, 4, (0., 1e8), small, torch.zeros(0, 4))
    assert int(pos.sum()) == 1
    (i, ) = torch.nonzero(pos)[0].tolist()
    assert pts[i].tolist() in ([34., 34.], [38., 38.], [34., 38.],
                               [38., 34.])
    # A centre region inside another lesion's ignore ring stays positive,
    # and the smaller box is regressed where centre regions overlap.
    big = torch.tensor([[0., 0., 128., 128.], [54., 54., 74., 74.]])
    labels, weights, targets, pos = head.get_targets_single_level(
        pts, 4, (0., 1e8), big, torch.zeros(0, 4))
    i = 15 * 32 + 15  # (62, 62): in both centre regions
    assert pos[i] and weights[i] == 1
    torch.testing.assert_close(
        targets[i], torch.tensor([8., 8., 12., 12.]) / 4)
    # an uncertain lesion does not cancel a real lesion's centre region
    labels, weights, _, pos = head.get_targets_single_level(
        pts, 4, (0., 1e8), big[1:], big[:1])
    assert pos[i] and weights[i] == 1
    assert weights[9 * 32 + 9] == 0 and weights[0] == 1  # (38, 38); (2, 2)


def test_targets_level_assignment():
    head = _head(strides=(4, 8), regress_ranges=((0, 32), (32, 1e8)))
    gt = torch.tensor([[10., 10., 30., 30.], [40., 40., 100., 100.]])
    pts4, pts8 = _points(32, 4), _points(16, 8)
    _, _, _, pos4 = head.get_targets_single_level(pts4, 4, (0, 32), gt,
                                                  torch.zeros(0, 4))
    _, _, _, pos8 = head.get_targets_single_level(pts8, 8, (32, 1e8), gt,
                                                  torch.zeros(0, 4))
    assert (pts4[pos4] < 32).all()
    assert (pts8[pos8] > 40).all()


def test_loss_ignores_ignore_region_and_predict():
    head = _head()
    feats = (torch.randn(2, 4, 16, 16, requires_grad=True), )
    gts, igns, metas = [], [], []
    for i in range(2):
        gts.append(InstanceData(
            bboxes=torch.tensor([[8., 8., 40., 48.]]),
            labels=torch.zeros(1, dtype=torch.long)))
        igns.append(InstanceData(
            bboxes=torch.tensor([[30., 30., 60., 60.]]),
            labels=torch.zeros(1, dtype=torch.long)))
        metas.append(dict(img_shape=(64, 64), scale_factor=(1., 1.)))
    ctr, reg = head(feats)
    losses = head.loss_by_feat(ctr, reg, gts, metas, igns)
    assert set(losses) == {'loss_centerness', 'loss_size'}
    assert losses['loss_size'] > 0
    # changing the logits inside an ignore region does not change the loss
    ctr2 = [c.detach().clone() for c in ctr]
    ctr2[0][:, :, 9, 9] += 5.  # pixel (38, 38): in the ignore ring only
    l2 = head.loss_by_feat(ctr2, reg, gts, metas, igns)
    torch.testing.assert_close(l2['loss_centerness'],
                               losses['loss_centerness'].detach())
    ctr2[0][:, :, 14, 14] += 5.  # (58, 58): a negative
    l3 = head.loss_by_feat(ctr2, reg, gts, metas, igns)
    assert l3['loss_centerness'] > losses['loss_centerness']
    # a perfect prediction of the distances gives zero size loss
    with torch.no_grad():
        res = head.predict_by_feat(
            ctr, reg, batch_img_metas=metas,
            cfg=dict(nms_pre=50, max_per_img=10,
                     nms=dict(type='nms', iou_threshold=0.7)))
    assert len(res) == 2 and res[0].bboxes.shape[1] == 4
    assert len(res[0]) <= 10
    assert (res[0].bboxes[:, 2] <= 64).all()
    assert (res[0].scores[:-1] >= res[0].scores[1:]).all()


def test_predict_decodes_the_regressed_box():
    head = _head()
    ctr = torch.full((1, 1, 16, 16), -10.)
    ctr[0, 0, 5, 7] = 10.  # pixel centre (30, 22)
    reg = torch.zeros(1, 4, 16, 16)
    reg[0, :, 5, 7] = torch.tensor([10., 6., 4., 2.]) / 4
    res = head.predict_by_feat([ctr], [reg],
                               batch_img_metas=[dict(img_shape=(64, 64))],
                               cfg=dict(nms_pre=5, max_per_img=1))
    torch.testing.assert_close(res[0].bboxes,
                               torch.tensor([[20., 16., 34., 24.]]))


def test_bad_arguments():
    with pytest.raises(ValueError, match='num_classes'):
        _head(num_classes=2)
    with pytest.raises(ValueError, match='center_ratio'):
        _head(center_ratio=0.6)


def test_afp_as_rpn_head_of_mmdet_faster_rcnn():
    cfg = get_mim_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    model_cfg = cfg.model
    model_cfg.backbone.update(depth=18, base_channels=8, init_cfg=None)
    model_cfg.neck.update(in_channels=[8, 16, 32, 64], out_channels=16)
    model_cfg.rpn_head = dict(
        type='AFPHead',
        in_channels=16,
        feat_channels=16,
        strides=(4, 8, 16, 32, 64))
    model_cfg.roi_head.bbox_roi_extractor.out_channels = 16
    model_cfg.roi_head.bbox_head.update(
        in_channels=16, fc_out_channels=32, num_classes=1)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(model_cfg)
    assert isinstance(model.rpn_head, AFPHead)
    samples = []
    for i in range(2):
        s = DetDataSample(metainfo=dict(
            img_id=i, img_shape=(96, 96), ori_shape=(96, 96),
            scale_factor=(1., 1.), pad_shape=(96, 96)))
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[20., 24., 50., 60.]]),
            labels=torch.zeros(1, dtype=torch.long))
        s.ignored_instances = InstanceData(
            bboxes=torch.tensor([[60., 60., 80., 80.]]),
            labels=torch.zeros(1, dtype=torch.long))
        samples.append(s)
    data = dict(inputs=[torch.rand(3, 96, 96) * 255 for _ in range(2)],
                data_samples=samples)
    model.train()
    batch = model.data_preprocessor(data, True)
    losses = model(**batch, mode='loss')
    assert 'rpn_loss_centerness' in losses and 'rpn_loss_size' in losses
    total, _ = model.parse_losses(losses)
    total.backward()
    assert model.rpn_head.conv_centerness.weight.grad is not None
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(data, False),
                        mode='predict')
    assert len(results) == 2
    assert results[0].pred_instances.bboxes.shape[1] == 4


def test_half_precision_outputs_keep_float32_targets():
    """Under AMP the head's outputs are float16: the loss must still build
    its float32 targets (an indexed write of float32 distances into float16
    targets failed on a GPU) and predict float32 boxes."""
    head = _head()
    feats = (torch.randn(1, 4, 16, 16), )
    ctr, reg = head(feats)
    ctr, reg = [c.half() for c in ctr], [r.half() for r in reg]
    gts = [InstanceData(bboxes=torch.tensor([[8., 8., 40., 48.]]),
                        labels=torch.zeros(1, dtype=torch.long))]
    metas = [dict(img_shape=(64, 64), scale_factor=(1., 1.))]
    losses = head.loss_by_feat([c.float() for c in ctr],
                               [r.float() for r in reg], gts, metas)
    half_losses = head.loss_by_feat(ctr, reg, gts, metas)
    for key, value in losses.items():
        assert torch.isfinite(half_losses[key].float())
        torch.testing.assert_close(half_losses[key].float(), value,
                                   rtol=1e-2, atol=1e-2)
    res = head.predict_by_feat(
        [c.float() for c in ctr], [r.float() for r in reg],
        batch_img_metas=metas,
        cfg=dict(nms_pre=50, max_per_img=10,
                 nms=dict(type='nms', iou_threshold=0.7)))
    assert res[0].bboxes.dtype == torch.float32
