# Copyright (c) mmlesion contributors. All rights reserved.
"""The channels-last RoIAlign pools as mmcv's ``roi_align`` (average
pooling) pools: adaptive and fixed sampling, aligned or not, RoIs partly
or wholly outside the map, of no size, on the last row and column, of
either image of a batch; none at all; and the box head's RoIAlign, every
level in one table, as mmdet's extractor layers give it, in the order it
says; and the box head on the pooled channels-last RoIs gives what mmdet's
box head gives on mmcv's pooling."""
import pytest
import torch
from mmcv.ops import roi_align

from mmlesion.apis.whole_scan.backend import (ChannelsLastBoxHead,
                                              ChannelsLastRoIAlign)
from mmlesion.models.roi_heads.roi_extractors.roi_align_rows import (
    FeatureRows, RoIAlignSettings, roi_align_rows)


def _rois(n: int, image: int, seed: int) -> torch.Tensor:
    """``n`` RoIs over a batch of 2 images of ``image`` px, some outside
    it, the first three of no size, the next ones on its last pixels."""
    g = torch.Generator().manual_seed(seed)
    corner = torch.rand(n, 2, generator=g) * image * 1.3 - image * .2
    size = torch.rand(n, 2, generator=g) * image * .6
    size[:3] = 0.
    corner[3:6] = image - 1.5
    index = torch.randint(0, 2, (n, 1), generator=g).float()
    return torch.cat([index, corner, corner + size], 1)


def _pooled(feats, rois, settings):
    out_h, out_w = settings.output_size
    flat = roi_align_rows(FeatureRows.of_nchw([feats]), [rois],
                          [settings]).in_given_order()
    return flat.view(len(rois), out_h, out_w, -1).permute(0, 3, 1, 2)


@pytest.mark.parametrize('sampling_ratio', [0, 2])
@pytest.mark.parametrize('aligned', [True, False])
def test_it_pools_as_mmcv_pools(sampling_ratio, aligned):
    feats = torch.randn(2, 5, 13, 17,
                        generator=torch.Generator().manual_seed(0))
    rois = _rois(200, 60, 1)
    for size in ((7, 7), (3, 5)):
        settings = RoIAlignSettings(size, .25, sampling_ratio, aligned)
        expected = roi_align(feats, rois, size, .25, sampling_ratio, 'avg',
                             aligned)
        got = _pooled(feats, rois, settings)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, rtol=0, atol=1e-5), float(
            (got - expected).abs().max())
    assert expected.abs().max() > .1  # not all outside the map


def test_no_rois_give_an_empty_pooling():
    settings = RoIAlignSettings((7, 7), .25, 0, True)
    got = roi_align_rows(FeatureRows.of_nchw([torch.randn(1, 4, 6, 6)]),
                         [torch.zeros(0, 5)], [settings]).in_given_order()
    assert got.shape == (0, 49, 4)


def _extractor(sampling_ratio: int = 0, aligned: bool = True):
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    return SingleRoIExtractor(
        dict(type='RoIAlign', output_size=7, sampling_ratio=sampling_ratio,
             aligned=aligned),
        out_channels=6, featmap_strides=[4, 8, 16])


@pytest.mark.parametrize('sampling_ratio', [0, 2])
@pytest.mark.parametrize('aligned', [True, False])
def test_the_box_head_roi_align_pools_each_level_as_its_layer(
        sampling_ratio, aligned):
    extractor = _extractor(sampling_ratio, aligned)
    roi_head = type('RoIHead', (), {'bbox_roi_extractor': extractor})()
    g = torch.Generator().manual_seed(2)
    feats = [torch.randn(2, 6, 64 // s, 48 // s, generator=g)
             for s in (4, 8, 16)]
    rois = [_rois(30, 48, 3), torch.zeros(0, 5), _rois(7, 48, 4)]
    expected = torch.cat([layer(f, r) for f, r, layer in zip(
        feats, rois, extractor.roi_layers)])
    got = ChannelsLastRoIAlign(roi_head)(feats, rois)
    assert got.pooled.shape == (37, 49, 6)
    assert sorted(got.order.tolist()) == list(range(37))
    if sampling_ratio == 0:  # grouped by grid: not the order given
        assert got.order.tolist() != list(range(37))
    back = got.in_given_order().view(37, 7, 7, 6).permute(0, 3, 1, 2)
    assert torch.allclose(back, expected, rtol=0, atol=1e-5)
    # RoI by RoI in the order it says
    assert torch.allclose(
        got.pooled.view(37, 7, 7, 6).permute(0, 3, 1, 2),
        expected[got.order], rtol=0, atol=1e-5)
    none = ChannelsLastRoIAlign(roi_head)(feats, [torch.zeros(0, 5)] * 3)
    assert none.pooled.shape == (0, 49, 6) and len(none.order) == 0


def _bbox_head(**kwargs):
    from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
    torch.manual_seed(0)
    head = ConvFCBBoxHead(in_channels=6, roi_feat_size=7, num_classes=3,
                          fc_out_channels=16, **kwargs)
    for p in head.parameters():  # mmdet's init zeroes the outputs' biases
        torch.nn.init.normal_(p, std=.1)
    return head.eval()


@pytest.mark.parametrize('kwargs, reordered', [
    (dict(num_shared_fcs=2), True),
    (dict(num_shared_convs=1, num_shared_fcs=1), False),
])
def test_the_box_head_on_channels_last_rois_gives_mmdets_outputs(
        kwargs, reordered):
    head = _bbox_head(**kwargs)
    pooled = torch.randn(5, 6, 7, 7,
                         generator=torch.Generator().manual_seed(3))
    before = [p.clone() for p in head.parameters()]
    wrapped = ChannelsLastBoxHead(head, (7, 7))
    assert wrapped.reordered is reordered
    with torch.no_grad():
        expected = head(pooled)
        got = wrapped(pooled.flatten(2).transpose(1, 2).contiguous())
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, rtol=0, atol=1e-5), float(
            (a - b).abs().max())
    # the head itself is left as it was
    assert all(torch.equal(p, q) for p, q in zip(head.parameters(), before))
