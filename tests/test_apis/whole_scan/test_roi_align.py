# Copyright (c) mmlesion contributors. All rights reserved.
"""The channels-last RoIAlign pools as mmcv's ``roi_align`` (average
pooling) pools: adaptive and fixed sampling, aligned or not, RoIs partly
or wholly outside the map, of no size, on the last row and column, of
either image of a batch; none at all; and the box head's RoIAlign, level
by level, as mmdet's extractor layers give it."""
import pytest
import torch
from mmcv.ops import roi_align

from mmlesion.apis.whole_scan.backend import (ChannelsLastRoIAlign,
                                              RoIAlignSettings,
                                              roi_align_nhwc)


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
    flat = roi_align_nhwc(feats.permute(0, 2, 3, 1).contiguous(), rois,
                          settings)
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
    got = roi_align_nhwc(torch.randn(1, 6, 6, 4), torch.zeros(0, 5),
                         settings)
    assert got.shape == (0, 49, 4)


def test_the_box_head_roi_align_pools_each_level_as_its_layer():
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor

    extractor = SingleRoIExtractor(
        dict(type='RoIAlign', output_size=7, sampling_ratio=0),
        out_channels=6, featmap_strides=[4, 8, 16])
    roi_head = type('RoIHead', (), {'bbox_roi_extractor': extractor})()
    g = torch.Generator().manual_seed(2)
    feats = [torch.randn(2, 6, 64 // s, 48 // s, generator=g)
             for s in (4, 8, 16)]
    rois = [_rois(30, 48, 3), torch.zeros(0, 5), _rois(7, 48, 4)]
    expected = torch.cat([layer(f, r) for f, r, layer in zip(
        feats, rois, extractor.roi_layers)])
    got = ChannelsLastRoIAlign(roi_head)(feats, rois)
    assert got.is_contiguous() and got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=0, atol=1e-5)
    none = ChannelsLastRoIAlign(roi_head)(feats, [torch.zeros(0, 5)] * 3)
    assert none.shape == (0, 6, 7, 7)
