# Copyright (c) mmlesion contributors. All rights reserved.
"""mmcv's ``roi_align`` (average pooling) on channels-last features, in
torch (:func:`roi_align_nhwc`): each RoI's bilinear samples, as mmcv takes
them, become weighted rows of the features, summed bin by bin by
``embedding_bag``, so that each sample reads its channels as one contiguous
row (mmcv's CPU kernel and ONNX Runtime's ``RoiAlign`` read a channel at a
time, on one thread and on every thread). What is sampled is the RoIs':
nothing is traced into a graph.
"""
from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class RoIAlignSettings:
    """One mmcv ``RoIAlign`` layer's settings.

    Args:
        output_size (tuple[int, int]): the pooled height and width.
        spatial_scale (float): the feature level's scale (1 / stride).
        sampling_ratio (int): samples a bin along each axis (0: adaptive,
            ``ceil`` of the bin's size, as mmcv).
        aligned (bool): mmcv's ``aligned`` (pixel centres shifted by half a
            pixel).
    """
    output_size: Tuple[int, int]
    spatial_scale: float
    sampling_ratio: int
    aligned: bool


def _axis_samples(start: Tensor, bin_size: Tensor, grid: Tensor, bins: int,
                  size: int) -> Tuple[Tensor, ...]:
    """The samples of every RoI along one axis, RoI after RoI, bin after
    bin: their first ``bins * grid`` index per RoI, and for each sample its
    lower and upper pixel and their weights (0 outside the map), as mmcv's
    ``pre_calc_for_bilinear_interpolate`` computes them."""
    total = bins * grid
    roi = torch.repeat_interleave(torch.arange(len(start)), total)
    first = torch.cumsum(total, 0) - total
    k = torch.arange(roi.numel()) - first[roi]
    g = grid[roi]
    b = torch.div(k, g, rounding_mode='floor')
    i = k - b * g
    dtype = start.dtype
    at = start[roi] + b.to(dtype) * bin_size[roi] + (
        i.to(dtype) + .5) * bin_size[roi] / g.to(dtype)
    inside = (at >= -1.) & (at <= size)
    at = at.clamp(min=0.)
    low = at.long()
    edge = low >= size - 1
    low = torch.where(edge, torch.full_like(low, size - 1), low)
    high = torch.where(edge, low, low + 1)
    at = torch.where(edge, low.to(dtype), at)
    upper = (at - low.to(dtype)) * inside
    lower = (1. - (at - low.to(dtype))) * inside
    return first, low, high, lower, upper


def roi_align_nhwc(feats: Tensor, rois: Tensor,
                   settings: RoIAlignSettings) -> Tensor:
    """mmcv's ``roi_align(feats, rois, ..., 'avg', aligned)`` of
    channels-last features, pooled bins last-but-one.

    Args:
        feats (Tensor): (N, H, W, C) float, contiguous.
        rois (Tensor): (n, 5) ``[batch index, x1, y1, x2, y2]`` in the
            image's pixels.
        settings (RoIAlignSettings): the layer's.

    Returns:
        Tensor: (n, out_h * out_w, C): RoI, bin (row-major), channel; mmcv's
        (n, C, out_h, out_w) is its ``.view(n, out_h, out_w, C)`` permuted.
    """
    out_h, out_w = settings.output_size
    n, (batch, height, width, channels) = len(rois), feats.shape
    if n == 0:
        return feats.new_zeros(0, out_h * out_w, channels)
    rois = rois.to(feats.dtype)
    offset = .5 if settings.aligned else 0.
    x1 = rois[:, 1] * settings.spatial_scale - offset
    y1 = rois[:, 2] * settings.spatial_scale - offset
    roi_w = rois[:, 3] * settings.spatial_scale - offset - x1
    roi_h = rois[:, 4] * settings.spatial_scale - offset - y1
    if not settings.aligned:
        roi_w, roi_h = roi_w.clamp(min=1.), roi_h.clamp(min=1.)
    if settings.sampling_ratio > 0:
        grid_h = torch.full((n, ), settings.sampling_ratio)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(roi_h / out_h).long().clamp(min=0)
        grid_w = torch.ceil(roi_w / out_w).long().clamp(min=0)
    first_y, y_low, y_high, wy_low, wy_high = _axis_samples(
        y1, roi_h / out_h, grid_h, out_h, height)
    first_x, x_low, x_high, wx_low, wx_high = _axis_samples(
        x1, roi_w / out_w, grid_w, out_w, width)
    # every sample of each RoI, bin after bin (row-major), in each bin its
    # grid row after row: the bags of embedding_bag, in order
    per_bin = grid_h * grid_w
    samples = out_h * out_w * per_bin
    roi = torch.repeat_interleave(torch.arange(n), samples)
    k = torch.arange(roi.numel()) - (torch.cumsum(samples, 0) - samples)[roi]
    g, gw = per_bin[roi], grid_w[roi]
    bin_ = torch.div(k, g, rounding_mode='floor')
    s = k - bin_ * g
    iy = torch.div(s, gw, rounding_mode='floor')
    ph = torch.div(bin_, out_w, rounding_mode='floor')
    y = first_y[roi] + ph * grid_h[roi] + iy
    x = first_x[roi] + (bin_ - ph * out_w) * gw + (s - iy * gw)
    base = rois[:, 0].long()[roi] * (height * width)
    row_low, row_high = base + y_low[y] * width, base + y_high[y] * width
    index = torch.stack([row_low + x_low[x], row_low + x_high[x],
                         row_high + x_low[x], row_high + x_high[x]], 1)
    scale = 1. / per_bin.clamp(min=1).to(feats.dtype)[roi]
    weight = torch.stack([wy_low[y] * wx_low[x], wy_low[y] * wx_high[x],
                          wy_high[y] * wx_low[x], wy_high[y] * wx_high[x]],
                         1) * scale[:, None]
    bags = 4 * ((torch.cumsum(samples, 0) - samples)[:, None] + torch.arange(
        out_h * out_w)[None] * per_bin[:, None])
    pooled = F.embedding_bag(index.reshape(-1),
                             feats.reshape(-1, channels),
                             bags.reshape(-1),
                             mode='sum',
                             per_sample_weights=weight.reshape(-1))
    return pooled.view(n, out_h * out_w, channels)
