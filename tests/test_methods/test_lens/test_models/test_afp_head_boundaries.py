# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :class:`AFPHead` (LENS, Sec. IV-B).

Pixel centres exactly on the border of the centre region
:math:`B_{ctn}` and of the ignore region :math:`B_{ign}` (outside: the
regions are open boxes), a lesion whose ``max(w, h)`` is exactly a
``regress_ranges`` bound (the lower bound is on the level, the upper one is
not), the nearest pixel of lesions whose centre region holds no pixel
centre, the smaller of two overlapping boxes, what the two losses divide by
(the positive pixels, at least 1; and 4 coordinates), and the proposal
config's defaults and edge values: the cases a small change of the code
would get wrong while ``test_afp_head.py`` still passes
(docs/mutation_testing.md).
"""
import math
import re

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401
from mmlesion.methods.lens.models import AFPHead


def _head(**kwargs) -> AFPHead:
    cfg = dict(type='AFPHead', in_channels=4, feat_channels=8, strides=(4, ))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _points(w: int, h: int, stride: int) -> torch.Tensor:
    """Pixel centres (x, y), row-major, of a w x h map."""
    xs = torch.arange(w, dtype=torch.float) * stride + stride / 2
    ys = torch.arange(h, dtype=torch.float) * stride + stride / 2
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def _index(x: float, y: float, w: int, stride: int = 4) -> int:
    return int((y - stride / 2) / stride) * w + int((x - stride / 2) / stride)


NO_BOX = torch.zeros(0, 4)


# ---------------------------------------------------------------------- #
# construction
# ---------------------------------------------------------------------- #
def test_ratio_ranges():
    """0 < r_c < r_i <= 1: r_i = 1 (the whole box) is allowed."""
    head = _head(center_ratio=0.5, ignore_ratio=1.0)
    assert (head.center_ratio, head.ignore_ratio) == (0.5, 1.0)
    for rc, ri in ((0., 0.5), (0.5, 0.5), (0.2, 1.5)):
        msg = re.escape('AFPHead needs 0 < center_ratio < ignore_ratio <= 1, '
                        f'got center_ratio={rc}, ignore_ratio={ri}')
        with pytest.raises(ValueError, match=msg):
            _head(center_ratio=rc, ignore_ratio=ri)


def test_defaults_are_the_papers():
    """r_c = 0.2, r_i = 0.5, lambda_1 = 0.1 (L1), focal loss; one stride-4
    level taking every lesion size; the channels of an FPN level."""
    head = MODELS.build(dict(type='AFPHead'))
    assert (head.num_classes, head.in_channels, head.feat_channels) == (1, 256,
                                                                        256)
    assert head.centerness_conv.conv.in_channels == 256
    assert head.conv_reg.in_channels == 256
    assert (head.center_ratio, head.ignore_ratio) == (0.2, 0.5)
    assert head.strides == (4, )
    assert head.regress_ranges == ((0., 1e8), )
    assert head.loss_bbox.loss_weight == 0.1
    assert (head.loss_centerness.gamma, head.loss_centerness.alpha) == (2.0,
                                                                        0.25)
    assert head.train_cfg is None and head.test_cfg is None
    train_cfg = dict(unused=True)
    assert _head(train_cfg=train_cfg).train_cfg == train_cfg


@pytest.mark.parametrize('strides,ranges', [
    ((4, 8), ((0., 32.), (32., 1e8))),
    ((4, 8, 16), ((0., 32.), (32., 64.), (64., 1e8))),
])
def test_default_regress_ranges_of_several_levels(strides, ranges):
    """``(0, 8 s_0), (8 s_0, 8 s_1), ..., (8 s_{n-2}, INF)``."""
    assert _head(strides=strides).regress_ranges == ranges


def test_regress_ranges_must_match_the_levels():
    msg = re.escape('AFPHead: 1 regress_ranges for 2 strides (4, 8)')
    with pytest.raises(ValueError, match=msg):
        _head(strides=(4, 8), regress_ranges=((0, 1e8), ))


def test_init_weights():
    """Normal(0, 0.01) output convs; the centerness bias starts at the
    focal-loss prior 0.01."""
    torch.manual_seed(0)
    head = _head(feat_channels=64)
    head.init_weights()
    bias = head.conv_centerness.bias
    torch.testing.assert_close(
        bias, torch.full_like(bias, -math.log((1 - 0.01) / 0.01)))
    for conv in (head.conv_centerness, head.conv_reg):
        assert 0.005 < conv.weight.std() < 0.02
        assert conv.weight.abs().max() < 0.06
    assert head.conv_reg.bias.abs().max() == 0


# ---------------------------------------------------------------------- #
# forward
# ---------------------------------------------------------------------- #
def test_forward_is_conv3x3_relu_conv1x1_per_branch():
    """Each branch: a 3x3 conv, a ReLU and a 1x1 conv (the paper's "two
    convolutional layers and a ReLU layer"); distances are non-negative."""
    torch.manual_seed(0)
    head = _head()
    x = torch.randn(2, 4, 5, 7)
    (ctr, ), (reg, ) = head((x, torch.randn(2, 4, 3, 3)))
    ctr_ref = head.conv_centerness(F.relu(head.centerness_conv.conv(x)))
    reg_raw = head.conv_reg(F.relu(head.reg_conv.conv(x)))
    assert ctr.shape == (2, 1, 5, 7) and reg.shape == (2, 4, 5, 7)
    torch.testing.assert_close(ctr, ctr_ref)
    torch.testing.assert_close(reg, reg_raw.clamp(min=0))
    assert (reg_raw < 0).any()
    msg = re.escape('AFPHead with strides (4, 8) needs 2 feature maps, got 1')
    with pytest.raises(ValueError, match=msg):
        _head(strides=(4, 8))((x, ))


def test_conv_and_norm_cfg_reach_the_hidden_convs():
    from mmcv.cnn.bricks.conv_ws import ConvWS2d
    head = _head(conv_cfg=dict(type='ConvWS'), norm_cfg=dict(type='BN'))
    for module in (head.centerness_conv, head.reg_conv):
        assert isinstance(module.conv, ConvWS2d)
        assert module.with_norm


# ---------------------------------------------------------------------- #
# targets
# ---------------------------------------------------------------------- #
# A 64 x 32 lesion whose region borders fall on stride-4 pixel centres
# (4 i + 2) with r_c = 0.25, r_i = 0.5 (exact in binary): centre (42, 14),
# B_ctn x in (34, 50), y in (10, 18); B_ign x in (26, 58), y in (6, 22).
LESION = torch.tensor([[10., -2., 74., 30.]])


def test_pixel_centres_on_the_region_borders_are_outside():
    head = _head(center_ratio=0.25, ignore_ratio=0.5)
    pts = _points(20, 20, 4)
    labels, weights, targets, pos = head.get_targets_single_level(
        pts, 4, (0., 1e8), LESION, NO_BOX)
    # the regions are exactly where intended
    assert head._scaled_boxes(LESION, 0.25).tolist() == [[34., 10., 50., 18.]]
    assert head._scaled_boxes(LESION, 0.5).tolist() == [[26., 6., 58., 22.]]
    positives = [tuple(p) for p in pts[pos].tolist()]
    assert positives == [(38., 14.), (42., 14.), (46., 14.)]
    assert (labels[pos] == 0).all() and (labels[~pos] == 1).all()
    ignored = [tuple(p) for p in pts[weights == 0].tolist()]
    assert ignored == [(x, y) for y in (10., 14., 18.)
                       for x in range(30, 55, 4) if (x, y) not in positives]
    for x, y in ((34, 14), (50, 14), (42, 10), (42, 18)):  # B_ctn border
        i = _index(x, y, 20)
        assert not pos[i] and weights[i] == 0
    for x, y in ((26, 14), (58, 14), (42, 6), (42, 22)):  # B_ign border
        i = _index(x, y, 20)
        assert labels[i] == 1 and weights[i] == 1
    # (l, t, r, b) / stride at (38, 14)
    assert targets[_index(38, 14, 20)].tolist() == [7., 4., 9., 4.]


def test_inside_is_strict_on_every_side():
    boxes = torch.tensor([[10., 20., 30., 50.]])
    pts = torch.tensor([[10., 30.], [30., 30.], [20., 20.], [20., 50.],
                        [10.5, 20.5], [29.5, 49.5], [40., 30.], [20., 10.]])
    inside = AFPHead._inside(pts, boxes)[:, 0].tolist()
    assert inside == [False] * 4 + [True, True] + [False] * 2


def test_lesion_size_exactly_at_a_range_bound():
    """``lo <= max(w, h) < hi``: a 32 x 20 lesion belongs to the level of
    (32, INF), not to that of (0, 32)."""
    head = _head(strides=(4, 8), regress_ranges=((0, 32), (32, 1e8)))
    gt = torch.tensor([[40., 10., 72., 30.]])
    _, _, _, pos4 = head.get_targets_single_level(_points(32, 32, 4), 4,
                                                  (0, 32), gt, NO_BOX)
    _, _, _, pos8 = head.get_targets_single_level(_points(16, 16, 8), 8,
                                                  (32, 1e8), gt, NO_BOX)
    assert not pos4.any()
    assert int(pos8.sum()) == 1


def test_nearest_pixel_of_lesions_without_a_pixel_in_their_centre_region():
    """Two small lesions, each given its nearest pixel centre as positive;
    for the second that pixel lies outside the box: its distances clamp to
    0."""
    head = _head()
    pts = _points(16, 16, 4)
    gts = torch.tensor([[34., 42., 36., 44.], [48.5, 12.5, 49.5, 13.5]])
    _, _, targets, pos = head.get_targets_single_level(pts, 4, (0., 1e8), gts,
                                                       NO_BOX)
    assert [tuple(p) for p in pts[pos].tolist()] == [(50., 14.), (34., 42.)]
    assert targets[_index(34, 42, 16)].tolist() == [0., 0., 0.5, 0.5]
    assert targets[_index(50, 14, 16)].tolist() == [0.375, 0.375, 0., 0.]


@pytest.mark.parametrize('small,large,pixel', [
    ([60., 14., 74., 120.], [24., 46., 104., 98.], (66, 70)),
    ([4., 44., 124., 84.], [42., 4., 86., 124.], (62, 62)),
])
def test_pixel_in_two_centre_regions_regresses_the_smaller_area(
        small, large, pixel):
    """Areas (x2 - x1) * (y2 - y1): 14 x 106 < 80 x 52, 120 x 40 < 44 x 120,
    whatever the order of the boxes."""
    head = _head()
    pts = _points(32, 32, 4)
    i = _index(*pixel, 32)
    for gts in ([small, large], [large, small]):
        _, _, targets, pos = head.get_targets_single_level(
            pts, 4, (0., 1e8), torch.tensor(gts), NO_BOX)
        x, y = pixel
        expected = [x - small[0], y - small[1], small[2] - x, small[3] - y]
        assert pos[i]
        assert targets[i].tolist() == [v / 4 for v in expected]


# ---------------------------------------------------------------------- #
# losses
# ---------------------------------------------------------------------- #
def _focal(logits, target, weight, alpha=0.25, gamma=2.0):
    p = logits.sigmoid()
    pt = (1 - p) * target + p * (1 - target)
    fw = (alpha * target + (1 - alpha) * (1 - target)) * pt.pow(gamma)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
    return (bce * fw * weight).sum()


def _inputs(h=8, w=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ctr = torch.randn(1, 1, h, w, generator=gen)
    reg = torch.rand(1, 4, h, w, generator=gen) * 3
    return ctr, reg


def _gt(boxes):
    return InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float),
                        labels=torch.zeros(len(boxes), dtype=torch.long))


def test_losses_by_hand():
    """Focal loss (alpha 0.25, gamma 2) over the pixels with weight,
    divided by the number of positives; L1 on the positives divided by 4
    per positive, times lambda_1 = 0.1."""
    head = _head(center_ratio=0.25, ignore_ratio=0.5)
    ctr, reg = _inputs(20, 20)
    metas = [dict(img_shape=(80, 80))]
    losses = head.loss_by_feat([ctr], [reg], [_gt(LESION.tolist())], metas)
    labels, weights, targets, pos = head.get_targets_single_level(
        _points(20, 20, 4), 4, (0., 1e8), LESION, NO_BOX)
    assert int(pos.sum()) == 3
    logits = ctr.reshape(-1)
    target = (labels == 0).float()
    torch.testing.assert_close(losses['loss_centerness'],
                               _focal(logits, target, weights) / 3)
    pred = reg[0].permute(1, 2, 0).reshape(-1, 4)
    torch.testing.assert_close(
        losses['loss_size'],
        0.1 * (pred[pos] - targets[pos]).abs().sum() / (3 * 4))


def test_losses_with_one_positive_and_with_none():
    """One positive pixel: divided by 1; no lesion: the centerness loss is
    divided by 1 (not 0) and the size loss is an exact 0 that keeps the
    graph."""
    head = _head()
    ctr, reg = _inputs()
    reg.requires_grad_()
    metas = [dict(img_shape=(32, 32))]
    one = head.loss_by_feat([ctr], [reg], [_gt([[13., 13., 15., 15.]])], metas)
    labels, weights, targets, pos = head.get_targets_single_level(
        _points(8, 8, 4), 4, (0., 1e8), torch.tensor([[13., 13., 15., 15.]]),
        NO_BOX)
    assert int(pos.sum()) == 1
    torch.testing.assert_close(
        one['loss_centerness'],
        _focal(ctr.reshape(-1), (labels == 0).float(), weights))
    none = head.loss_by_feat([ctr], [reg], [_gt(NO_BOX.tolist())], metas)
    torch.testing.assert_close(
        none['loss_centerness'],
        _focal(ctr.reshape(-1), torch.zeros(64), torch.ones(64)))
    assert none['loss_size'].item() == 0
    assert none['loss_size'].requires_grad


def test_losses_divide_by_the_positives_averaged_over_gpus(monkeypatch):
    """In distributed training both losses divide by the mean number of
    positives over the GPUs (``reduce_mean``, as FCOS), not by this
    image's: simulated here with a mean of 2.5 for 3 local positives."""
    import mmlesion.methods.lens.models.afp_head as afp_module
    monkeypatch.setattr(afp_module, 'reduce_mean',
                        lambda t: torch.full_like(t, 2.5))
    head = _head(center_ratio=0.25, ignore_ratio=0.5)
    ctr, reg = _inputs(20, 20)
    losses = head.loss_by_feat([ctr], [reg], [_gt(LESION.tolist())],
                               [dict(img_shape=(80, 80))])
    labels, weights, targets, pos = head.get_targets_single_level(
        _points(20, 20, 4), 4, (0., 1e8), LESION, NO_BOX)
    pred = reg[0].permute(1, 2, 0).reshape(-1, 4)
    torch.testing.assert_close(
        losses['loss_centerness'],
        _focal(ctr.reshape(-1), (labels == 0).float(), weights) / 2.5)
    torch.testing.assert_close(
        losses['loss_size'],
        0.1 * (pred[pos] - targets[pos]).abs().sum() / (2.5 * 4))


def test_float32_targets_whatever_the_default_dtype():
    """The points are float32 (the targets keep pixel precision): a float64
    default dtype changes neither the loss's nor the boxes' dtype."""
    head = _head()
    ctr, reg = _inputs()
    metas = [dict(img_shape=(32, 32))]
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        losses = head.loss_by_feat([ctr], [reg], [_gt([[4., 4., 20., 24.]])],
                                   metas)
        res = head.predict_by_feat([ctr], [reg], batch_img_metas=metas)
    finally:
        torch.set_default_dtype(old)
    assert losses['loss_size'].dtype == torch.float32
    assert res[0].bboxes.dtype == torch.float32


# ---------------------------------------------------------------------- #
# proposals
# ---------------------------------------------------------------------- #
def _grid_inputs():
    """A 32 x 32 map (1024 pixels, stride 4): scores decrease with the
    pixel index; every box is the 4 x 4 cell of its pixel (IoU 0 between
    neighbours) except pixel 1 (the box of pixel 0, suppressed by NMS),
    pixel 2 (zero width) and pixel 3 (width 1)."""
    ctr = torch.linspace(5, -5, 1024).reshape(1, 1, 32, 32)
    reg = torch.full((1, 4, 32, 32), 0.5)
    reg[0, :, 0, 0] = torch.tensor([0.5, 0.5, 1.5, 0.5])  # [0, 0, 8, 4]
    reg[0, :, 0, 1] = torch.tensor([1.5, 0.5, 0.5, 0.5])  # [0, 0, 8, 4]
    reg[0, :, 0, 2] = torch.tensor([0., 0.5, 0., 0.5])
    reg[0, :, 0, 3] = torch.tensor([0.125, 0.5, 0.125, 0.5])
    return ctr, reg


def test_default_proposal_config():
    """nms_pre 1000, NMS IoU 0.7, min_bbox_size 0 (strict), max_per_img
    1000."""
    head = _head()
    ctr, reg = _grid_inputs()
    metas = [dict(img_shape=(128, 128))]
    res = head.predict_by_feat([ctr], [reg], batch_img_metas=metas)[0]
    # top 1000 pixels, less pixel 1 (NMS) and pixel 2 (zero width)
    assert len(res) == 998
    assert [13.5, 0., 14.5, 4.] in res.bboxes.tolist()  # pixel 3, width 1
    res = head.predict_by_feat([ctr], [reg],
                               batch_img_metas=metas,
                               cfg=dict(nms_pre=2000))[0]
    assert len(res) == 1000
    assert res.labels.dtype == torch.long
    assert res.labels.tolist() == [0] * 1000


def test_test_cfg_is_the_default_config():
    head = _head(test_cfg=dict(nms_pre=2000, max_per_img=5))
    ctr, reg = _grid_inputs()
    res = head.predict_by_feat([ctr], [reg],
                               batch_img_metas=[dict(img_shape=(128, 128))])
    assert len(res[0]) == 5


def _five_boxes(wh, scores=(4., 3., 2., 1., 0.)):
    """Five pixels in a row (centres x = 2, 6, ..., 18; y = 2) with boxes of
    the given (w, h) centred on them."""
    ctr = torch.tensor(scores).reshape(1, 1, 1, 5)
    wh = torch.tensor(wh, dtype=torch.float)
    reg = (wh / 8).t().repeat(2, 1).reshape(1, 4, 1, 5)
    return ctr, reg


def test_min_bbox_size_needs_both_sides_strictly_larger():
    head = _head()
    ctr, reg = _five_boxes([(2, 3), (3, 2), (3, 1), (1, 3), (3, 3)])
    res = head.predict_by_feat([ctr], [reg],
                               batch_img_metas=[dict(img_shape=(64, 64))],
                               cfg=dict(min_bbox_size=2))[0]
    assert res.bboxes.tolist() == [[16.5, 0.5, 19.5, 3.5]]


def test_nms_pre_one_zero_and_the_pixel_count():
    head = _head()
    ctr, reg = _five_boxes([(3, 3)] * 5)
    metas = [dict(img_shape=(64, 64))]

    def num(**cfg):
        return len(
            head.predict_by_feat([ctr], [reg], batch_img_metas=metas,
                                 cfg=cfg)[0])

    assert num(nms_pre=1) == 1
    assert num(nms_pre=2) == 2
    assert num(nms_pre=0) == 5
    # nms_pre equal to the pixel count is no top-k: with tied scores the
    # order is that without nms_pre
    ctr = torch.zeros(1, 1, 8, 8)
    reg = torch.rand(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    kw = dict(batch_img_metas=metas, with_nms=False)
    got = head.predict_by_feat([ctr], [reg], cfg=dict(nms_pre=64), **kw)[0]
    exp = head.predict_by_feat([ctr], [reg], cfg=dict(nms_pre=-1), **kw)[0]
    assert torch.equal(got.bboxes, exp.bboxes)


def test_nms_threshold_from_cfg_and_with_nms_off():
    """Boxes of IoU 0.5 or 2 / 3: kept by the default 0.7, not at 0.3;
    without NMS every box, by descending score; NMS is the default."""
    head = _head()
    # 12 x 4 boxes centred 4 px apart: IoU 0.5 (2 / 3 for the first pair,
    # clipped at x = 0)
    ctr, reg = _five_boxes([(12, 4)] * 5, scores=(0., 3., 1., 4., 2.))
    metas = [dict(img_shape=(64, 64))]
    assert len(head.predict_by_feat([ctr], [reg], batch_img_metas=metas)[0]) \
        == 5
    strict = head.predict_by_feat(
        [ctr], [reg],
        batch_img_metas=metas,
        cfg=dict(nms=dict(type='nms', iou_threshold=0.3)))[0]
    assert len(strict) < 5
    ctr, reg = _five_boxes([(8, 4), (10, 4), (12, 4), (14, 4), (16, 4)],
                           scores=(0., 3., 1., 4., 2.))
    res = head.predict_by_feat([ctr], [reg],
                               batch_img_metas=metas,
                               with_nms=False)[0]
    assert res.scores.tolist() == sorted(res.scores.tolist(), reverse=True)
    assert res.bboxes[:, 2].sub(
        res.bboxes[:, 0]).tolist() == [14., 10., 16., 12., 6.]
    # boxes [0, 22], [0, 26], ..., [0, 38] (clipped): NMS keeps 2
    ctr, reg = _five_boxes([(40, 4)] * 5)
    default = head.predict_by_feat([ctr], [reg], batch_img_metas=metas)[0]
    assert default.bboxes[:, 2].tolist() == [22., 34.]
    off = head.predict_by_feat([ctr], [reg],
                               batch_img_metas=metas,
                               with_nms=False)[0]
    assert len(off) == 5


def test_rescale_and_clipping():
    """Boxes are clipped to ``img_shape`` (h, w), then divided by the
    (w, h) scale factor only with ``rescale=True`` (not by default)."""
    head = _head()
    ctr, reg = _five_boxes([(3, 3)] * 5)
    reg[0, 2, 0, 4] = 100.  # pixel (18, 2) reaches past x = 20
    metas = [dict(img_shape=(16, 20), scale_factor=(2., 4.))]
    plain = head.predict_by_feat([ctr], [reg], batch_img_metas=metas)[0]
    assert plain.bboxes[:, 2].max() == 20
    assert [16.5, 0.5, 20., 3.5] in plain.bboxes.tolist()
    scaled = head.predict_by_feat([ctr], [reg],
                                  batch_img_metas=metas,
                                  rescale=True)[0]
    torch.testing.assert_close(scaled.bboxes,
                               plain.bboxes / torch.tensor([2., 4., 2., 4.]))
    no_factor = head.predict_by_feat([ctr], [reg],
                                     batch_img_metas=[
                                         dict(img_shape=(16, 20))
                                     ],
                                     rescale=True)[0]
    torch.testing.assert_close(no_factor.bboxes, plain.bboxes)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_points_on_the_device_of_the_outputs():
    head = _head().cuda()
    ctr, reg = _inputs()
    ctr, reg = ctr.cuda(), reg.cuda()
    metas = [dict(img_shape=(32, 32))]
    losses = head.loss_by_feat([ctr], [reg],
                               [_gt([[4., 4., 20., 24.]]).to('cuda')], metas)
    assert losses['loss_size'].is_cuda
    res = head.predict_by_feat([ctr], [reg],
                               batch_img_metas=metas,
                               with_nms=False)
    assert res[0].bboxes.is_cuda
