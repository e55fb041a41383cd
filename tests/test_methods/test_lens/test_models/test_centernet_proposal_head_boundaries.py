# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :class:`CenterNetProposalHead` (mmdet's CenterNet head,
"Objects as Points", Zhou et al. 2019, as a proposal network of LENS,
Table II, Yan et al., TMI 2020).

Hand-made heatmaps, size and offset maps with a few peaks, so that every
proposal is known exactly: the decoding at the network input's scale (two
different scales along x and y), the peak count (``nms_pre``, 100 by
default, at most the map's locations), the local-maximum window, a box
exactly ``min_bbox_size`` wide or tall (dropped: the sizes must exceed it,
as in mmdet's RPN), the ``border`` and ``scale_factor`` corrections, the
NMS and ``max_per_img``, and images of a batch decoded apart: the cases a
small change of the code would get wrong (docs/mutation_testing.md).
"""
import re
from typing import Dict, List, Optional, Sequence, Tuple

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.lens.models.centernet_proposal_head import \
    CenterNetProposalHead

Maps = Tuple[List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]
NMS = dict(type='nms', iou_threshold=0.5)


def _head(**kwargs) -> CenterNetProposalHead:
    cfg = dict(type='CenterNetProposalHead', in_channels=4, feat_channels=4,
               num_classes=1)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _maps(peaks: Sequence[dict], num_classes: int = 1,
          size: Tuple[int, int] = (8, 8), batch: int = 1,
          background: float = 0.) -> Maps:
    """Heatmap, size and offset maps (one level) with the given peaks.

    Each peak is a dict with ``y``, ``x``, ``score`` and optionally ``wh``
    (map cells, default (1, 1)), ``offset`` (default (0, 0)), ``cls``
    (default 0) and ``img`` (default 0).
    """
    h, w = size
    heat = torch.full((batch, num_classes, h, w), background)
    wh = torch.ones(batch, 2, h, w)
    off = torch.zeros(batch, 2, h, w)
    for p in peaks:
        b, y, x = p.get('img', 0), p['y'], p['x']
        heat[b, p.get('cls', 0), y, x] = p['score']
        wh[b, :, y, x] = torch.tensor(p.get('wh', (1., 1.)))
        off[b, :, y, x] = torch.tensor(p.get('offset', (0., 0.)))
    return [heat], [wh], [off]


def _box(p: dict, scale: Tuple[float, float] = (1., 1.)) -> List[float]:
    """CenterNet's decoding of a peak: centre = cell + offset, size ``wh``,
    times ``(input width / map width, input height / map height)``."""
    sx, sy = scale
    w, h = p.get('wh', (1., 1.))
    cx = p['x'] + p.get('offset', (0., 0.))[0]
    cy = p['y'] + p.get('offset', (0., 0.))[1]
    return [(cx - w / 2) * sx, (cy - h / 2) * sy, (cx + w / 2) * sx,
            (cy + h / 2) * sy]


def _meta(shape: Tuple[int, int] = (8, 8), **kwargs) -> Dict:
    meta = dict(batch_input_shape=shape, img_shape=shape)
    meta.update(kwargs)
    return meta


def _cfg(**kwargs) -> ConfigDict:
    return ConfigDict(kwargs)


def _predict(head: CenterNetProposalHead, maps: Maps,
             metas: Optional[List[Dict]] = None,
             cfg: Optional[ConfigDict] = None, **kwargs):
    metas = metas if metas is not None else [_meta()]
    return head.predict_by_feat(*maps, batch_img_metas=metas, cfg=cfg,
                                **kwargs)


# two peaks far apart, different sizes, offsets and classes
PEAKS = [
    dict(y=2, x=3, score=.9, wh=(2., 1.), offset=(.5, .25), cls=1),
    dict(y=5, x=6, score=.6, wh=(3., 4.), offset=(.25, .75), cls=0),
]


# ---------------------------------------------------------------------- #
# one feature level
# ---------------------------------------------------------------------- #
@pytest.mark.parametrize('levels', [(2, 2, 2), (1, 2, 2), (2, 1, 1),
                                    (1, 2, 1), (1, 1, 2), (0, 0, 0)])
def test_one_feature_level_only(levels):
    """CenterNet decodes one map: any other count of heatmaps, size maps
    or offset maps is refused, with the count and the fix named."""
    heat, wh, off = _maps(PEAKS, num_classes=2)
    maps = (heat * levels[0], wh * levels[1], off * levels[2])
    msg = re.escape(
        'CenterNetProposalHead predicts from one feature level (as '
        f'CenterNet), got {levels[0]}: give it one map, e.g. '
        "neck=dict(type='LevelSelectFPN', out_indices=(0, ))")
    with pytest.raises(ValueError, match=f'^{msg}$'):
        _predict(_head(num_classes=2), maps, cfg=_cfg(nms_pre=2))


# ---------------------------------------------------------------------- #
# decoding
# ---------------------------------------------------------------------- #
def test_peaks_decoded_at_the_network_input_scale():
    """Boxes in the network input's coordinates (``batch_input_shape``,
    (h, w): 32 x 64 from an 8 x 8 map is 4 along y and 8 along x), each
    with its peak's score and class, best first (the proposal config of a
    LENS config, here without NMS)."""
    head = _head(num_classes=2)
    (res, ) = _predict(head, _maps(PEAKS, num_classes=2),
                       metas=[_meta((32, 64))], cfg=_cfg(nms_pre=2),
                       with_nms=False)
    expected = torch.tensor([_box(p, (8., 4.)) for p in PEAKS])
    assert expected[0].tolist() == [20., 7., 36., 11.]
    torch.testing.assert_close(res.bboxes, expected)
    torch.testing.assert_close(res.scores, torch.tensor([.9, .6]))
    assert res.labels.tolist() == [1, 0]
    assert res.bboxes.shape == (2, 4) and res.scores.shape == (2, )


def test_images_of_a_batch_decoded_apart():
    """Each image's proposals come from its own maps and its own metainfo
    only, the same as when it is predicted alone."""
    head = _head()
    peaks = [dict(y=1, x=1, score=.8, wh=(2., 2.)),
             dict(y=6, x=2, score=.7, wh=(1., 3.)),
             dict(y=3, x=5, score=.9, wh=(3., 1.), img=1),
             dict(y=6, x=6, score=.5, wh=(2., 4.), img=1)]
    metas = [_meta((16, 32)), _meta((16, 32), border=(1., 0., 2., 0.))]
    cfg = _cfg(nms_pre=2)
    both = _predict(head, _maps(peaks, batch=2), metas=metas, cfg=cfg,
                    with_nms=False)
    assert len(both) == 2
    for i in range(2):
        own = [dict(p, img=0) for p in peaks if p.get('img', 0) == i]
        (alone, ) = _predict(head, _maps(own), metas=[metas[i]], cfg=cfg,
                             with_nms=False)
        assert len(both[i]) == 2
        torch.testing.assert_close(both[i].bboxes, alone.bboxes)
        torch.testing.assert_close(both[i].scores, alone.scores)
    torch.testing.assert_close(both[0].scores, torch.tensor([.8, .7]))
    torch.testing.assert_close(both[1].scores, torch.tensor([.9, .5]))


# ---------------------------------------------------------------------- #
# the peaks: nms_pre and the local-maximum window
# ---------------------------------------------------------------------- #
def test_nms_pre_defaults_to_100():
    """Without ``nms_pre`` the 100 best peaks (CenterNet's ``topk``); a
    1 x 1 window makes each of the 144 locations a peak."""
    torch.manual_seed(0)
    heat = [torch.rand(1, 1, 12, 12)]
    maps = (heat, [torch.ones(1, 2, 12, 12)], [torch.zeros(1, 2, 12, 12)])
    head = _head(local_maximum_kernel=1)
    (res, ) = _predict(head, maps, cfg=_cfg(), with_nms=False)
    assert len(res) == 100
    torch.testing.assert_close(res.scores, heat[0].flatten().topk(100)[0])
    (res, ) = _predict(head, maps, cfg=_cfg(nms_pre=7), with_nms=False)
    torch.testing.assert_close(res.scores, heat[0].flatten().topk(7)[0])


@pytest.mark.parametrize('num_classes, batch', [(1, 1), (2, 1), (2, 2)])
def test_nms_pre_at_most_the_locations_of_one_image(num_classes, batch):
    """A small map has fewer locations than ``nms_pre``: every location of
    one image (all classes) is a candidate, not more."""
    torch.manual_seed(0)
    heat = torch.rand(batch, num_classes, 4, 4)
    maps = ([heat], [torch.ones(batch, 2, 4, 4)],
            [torch.zeros(batch, 2, 4, 4)])
    head = _head(num_classes=num_classes, local_maximum_kernel=1)
    out = _predict(head, maps, metas=[_meta((4, 4))] * batch,
                   cfg=_cfg(nms_pre=1000), with_nms=False)
    for i, res in enumerate(out):
        assert len(res) == num_classes * 16
        torch.testing.assert_close(res.scores,
                                   heat[i].flatten().sort(descending=True)[0])


def test_local_maximum_kernel_defaults_to_centernet_3x3():
    """CenterNet's 3 x 3 max-pooling by default: a neighbour of a better
    peak is no peak (its score becomes 0), one two cells away is."""
    head = _head()
    assert head.local_maximum_kernel == 3
    peaks = [dict(y=4, x=2, score=.9), dict(y=4, x=3, score=.8),
             dict(y=4, x=5, score=.7)]
    (res, ) = _predict(head, _maps(peaks), cfg=_cfg(nms_pre=3),
                       with_nms=False)
    torch.testing.assert_close(res.scores, torch.tensor([.9, .7, 0.]))


@pytest.mark.parametrize('kernel, scores', [(1, [.9, .8, .7]),
                                            (5., [.9, 0., 0.])])
def test_local_maximum_kernel(kernel, scores):
    """``local_maximum_kernel`` is the window (an int, also when given as
    a float): 1 keeps every location, 5 suppresses two cells away."""
    head = _head(local_maximum_kernel=kernel)
    assert head.local_maximum_kernel == int(kernel)
    assert type(head.local_maximum_kernel) is int
    peaks = [dict(y=4, x=2, score=.9), dict(y=4, x=3, score=.8),
             dict(y=4, x=4, score=.7)]
    (res, ) = _predict(head, _maps(peaks), cfg=_cfg(nms_pre=3),
                       with_nms=False)
    torch.testing.assert_close(res.scores, torch.tensor(scores))


# ---------------------------------------------------------------------- #
# the proposal config
# ---------------------------------------------------------------------- #
def test_cfg_none_is_the_head_test_cfg():
    """``cfg=None`` (mmdet's ``predict``) reads the head's ``test_cfg``; a
    given ``cfg`` (LENS's ``rpn_proposal`` / ``rpn``) replaces it."""
    head = _head(test_cfg=dict(nms_pre=1, max_per_img=5, nms=NMS))
    peaks = [dict(p, cls=0) for p in PEAKS] + [dict(y=0, x=0, score=.3)]
    (res, ) = _predict(head, _maps(peaks), cfg=None)
    torch.testing.assert_close(res.scores, torch.tensor([.9]))
    (res, ) = _predict(head, _maps(peaks),
                       cfg=_cfg(nms_pre=3, max_per_img=5, nms=NMS))
    torch.testing.assert_close(res.scores, torch.tensor([.9, .6, .3]))
    assert head.test_cfg['nms_pre'] == 1


# boxes 4 wide/tall at scale 4 are 8 input pixels; min_bbox_size 8
SIZES = [dict(y=1, x=1, score=.9, wh=(2., 3.)),    # 8 x 12: dropped
         dict(y=1, x=5, score=.8, wh=(2.5, 3.)),   # 10 x 12: kept
         dict(y=5, x=1, score=.7, wh=(3., 2.)),    # 12 x 8: dropped
         dict(y=5, x=5, score=.6, wh=(3., 2.5))]   # 12 x 10: kept


def test_min_bbox_size_both_sides_strictly_larger():
    """mmdet's RPN: a proposal is kept when its width and its height both
    exceed ``min_bbox_size``; exactly that size is dropped."""
    (res, ) = _predict(_head(), _maps(SIZES), metas=[_meta((32, 32))],
                       cfg=_cfg(nms_pre=4, min_bbox_size=8), with_nms=False)
    torch.testing.assert_close(res.scores, torch.tensor([.8, .6]))
    torch.testing.assert_close(
        res.bboxes, torch.tensor([_box(p, (4., 4.)) for p in SIZES[1::2]]))
    (res, ) = _predict(_head(), _maps(SIZES), metas=[_meta((32, 32))],
                       cfg=_cfg(nms_pre=4, min_bbox_size=7.9),
                       with_nms=False)
    assert len(res) == 4


def test_min_bbox_size_zero_drops_empty_and_inverted_boxes():
    """``min_bbox_size=0`` (the LENS configs) drops boxes of no width or
    height and inverted ones (a negative predicted size)."""
    peaks = [dict(y=1, x=1, score=.9, wh=(0., 2.)),
             dict(y=1, x=5, score=.8, wh=(2., 0.)),
             dict(y=5, x=1, score=.7, wh=(-1., 2.)),
             dict(y=5, x=5, score=.6, wh=(.5, .5))]
    (res, ) = _predict(_head(), _maps(peaks),
                       cfg=_cfg(nms_pre=4, min_bbox_size=0), with_nms=False)
    torch.testing.assert_close(res.scores, torch.tensor([.6]))
    torch.testing.assert_close(res.bboxes,
                               torch.tensor([[4.75, 4.75, 5.25, 5.25]]))


def test_no_min_bbox_size_keeps_every_box():
    """Without ``min_bbox_size`` (mmdet's default -1) nothing is dropped,
    not even empty or inverted boxes."""
    peaks = [dict(y=1, x=1, score=.9, wh=(0., 2.)),
             dict(y=1, x=5, score=.8, wh=(2., 0.)),
             dict(y=5, x=1, score=.7, wh=(-1., 2.)),
             dict(y=5, x=5, score=.6, wh=(.5, .5))]
    for cfg in (_cfg(nms_pre=4), _cfg(nms_pre=4, min_bbox_size=-1)):
        (res, ) = _predict(_head(), _maps(peaks), cfg=cfg, with_nms=False)
        torch.testing.assert_close(res.scores,
                                   torch.tensor([.9, .8, .7, .6]))
        torch.testing.assert_close(
            res.bboxes, torch.tensor([_box(p) for p in peaks]))


# overlapping boxes: IoU of the first two (same class) is 0.6
NMS_PEAKS = [dict(y=2, x=2, score=.9, wh=(4., 4.)),
             dict(y=2, x=4, score=.8, wh=(4., 4.), offset=(-1., 0.)),
             dict(y=6, x=6, score=.7, wh=(1., 1.)),
             dict(y=6, x=1, score=.5, wh=(1., 1.))]


def test_nms_and_max_per_img():
    """``cfg.nms`` on the peaks (the second box overlaps the first with
    IoU 0.6 > 0.5), then the ``max_per_img`` best."""
    maps = _maps(NMS_PEAKS)
    (res, ) = _predict(_head(), maps,
                       cfg=_cfg(nms_pre=4, max_per_img=10, nms=NMS))
    torch.testing.assert_close(res.scores, torch.tensor([.9, .7, .5]))
    torch.testing.assert_close(
        res.bboxes, torch.tensor([_box(NMS_PEAKS[i]) for i in (0, 2, 3)]))
    assert res.labels.tolist() == [0, 0, 0]
    (res, ) = _predict(_head(), maps,
                       cfg=_cfg(nms_pre=4, max_per_img=2, nms=NMS))
    torch.testing.assert_close(res.scores, torch.tensor([.9, .7]))
    # a looser threshold keeps the overlapping box
    (res, ) = _predict(_head(), maps, cfg=_cfg(
        nms_pre=4, max_per_img=10, nms=dict(type='nms', iou_threshold=.7)))
    torch.testing.assert_close(res.scores, torch.tensor([.9, .8, .7, .5]))


def test_without_nms_every_peak_is_kept():
    """``with_nms=False``: neither NMS nor ``max_per_img``."""
    (res, ) = _predict(_head(), _maps(NMS_PEAKS),
                       cfg=_cfg(nms_pre=4, max_per_img=1, nms=NMS),
                       with_nms=False)
    torch.testing.assert_close(res.scores, torch.tensor([.9, .8, .7, .5]))


# ---------------------------------------------------------------------- #
# border and rescale
# ---------------------------------------------------------------------- #
def test_border_is_subtracted():
    """A ``border`` (top, bottom, left, right) of CenterNet's
    ``RandomCenterCropPad`` moves the boxes by (-left, -top); without one
    they stay in the network input's coordinates."""
    maps = _maps(PEAKS, num_classes=2)
    cfg = _cfg(nms_pre=2)
    expected = torch.tensor([_box(p, (8., 4.)) for p in PEAKS])
    (res, ) = _predict(_head(num_classes=2), maps, cfg=cfg, with_nms=False,
                       metas=[_meta((32, 64), border=(3., 50., 7., 60.))])
    torch.testing.assert_close(
        res.bboxes, expected - torch.tensor([7., 3., 7., 3.]))
    torch.testing.assert_close(res.scores, torch.tensor([.9, .6]))
    (res, ) = _predict(_head(num_classes=2), maps, cfg=cfg, with_nms=False,
                       metas=[_meta((32, 64))])
    torch.testing.assert_close(res.bboxes, expected)


def test_rescale_divides_by_the_scale_factor():
    """``rescale=True``: boxes divided by ``scale_factor`` (w, h), after
    the border; not without ``rescale`` nor without a ``scale_factor``."""
    maps = _maps(PEAKS, num_classes=2)
    cfg = _cfg(nms_pre=2)
    expected = torch.tensor([_box(p, (8., 4.)) for p in PEAKS])
    head = _head(num_classes=2)
    meta = _meta((32, 64), scale_factor=(2., 4.), border=(1., 0., 2., 0.))
    (res, ) = _predict(head, maps, metas=[meta], cfg=cfg, with_nms=False,
                       rescale=True)
    torch.testing.assert_close(
        res.bboxes, (expected - torch.tensor([2., 1., 2., 1.])) /
        torch.tensor([2., 4., 2., 4.]))
    torch.testing.assert_close(res.scores, torch.tensor([.9, .6]))
    (res, ) = _predict(head, maps, metas=[_meta((32, 64),
                                                scale_factor=(2., 4.))],
                       cfg=cfg, with_nms=False, rescale=False)
    torch.testing.assert_close(res.bboxes, expected)
    (res, ) = _predict(head, maps, metas=[_meta((32, 64))], cfg=cfg,
                       with_nms=False, rescale=True)
    torch.testing.assert_close(res.bboxes, expected)


def test_no_rescale_by_default():
    """Proposals stay in the network input's coordinates unless asked
    (``rescale=False`` by default): the RoI head crops the input's
    features with them."""
    meta = _meta((32, 64), scale_factor=(2., 4.))
    (res, ) = _head(num_classes=2).predict_by_feat(
        *_maps(PEAKS, num_classes=2), batch_img_metas=[meta],
        cfg=_cfg(nms_pre=2), with_nms=False)
    torch.testing.assert_close(
        res.bboxes, torch.tensor([_box(p, (8., 4.)) for p in PEAKS]))


def test_positional_arguments_reach_centernet_head():
    """``CenterNetHead``'s positional arguments (``in_channels``,
    ``feat_channels``, ``num_classes``) are passed on."""
    head = CenterNetProposalHead(6, 5, 3, local_maximum_kernel=1)
    assert head.num_classes == 3
    assert head.heatmap_head[0].in_channels == 6
    assert head.heatmap_head[0].out_channels == 5
    assert head.heatmap_head[-1].out_channels == 3
    assert head.local_maximum_kernel == 1


def test_head_outputs_end_to_end():
    """The head's own outputs: at most ``max_per_img`` proposals in the
    input's coordinates, best first (the docstring's example)."""
    torch.manual_seed(0)
    head = _head(in_channels=8, feat_channels=8)
    head.init_weights()
    with torch.no_grad():
        (res, ) = head.predict_by_feat(
            *head((torch.rand(1, 8, 16, 16), )),
            batch_img_metas=[_meta((64, 64))],
            cfg=_cfg(nms_pre=50, min_bbox_size=0, max_per_img=10, nms=NMS))
    assert 0 < len(res) <= 10
    assert (res.scores[:-1] >= res.scores[1:]).all()
    assert res.bboxes.min() > -16 and res.bboxes.max() < 80
