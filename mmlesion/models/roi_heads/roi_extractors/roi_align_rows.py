# Copyright (c) mmlesion contributors. All rights reserved.
"""mmcv's ``roi_align`` (average pooling) on channels-last features, in
torch: each RoI's bilinear samples, as mmcv takes them, become weighted rows
of the features, summed bin by bin by ``embedding_bag``, so that each
sample reads its channels as one contiguous row (mmcv's CPU kernel and ONNX
Runtime's ``RoiAlign`` read a channel at a time, on one thread and on every
thread). What is sampled is the RoIs': nothing is traced into a graph.

The RoIs are pooled grouped by their sampling grid (:func:`roi_align_rows`:
every level's in one table and one ``embedding_bag``): within a group each
RoI has the same number of samples a bin, so its rows and weights are
per-RoI tables along each axis broadcast against each other (no division
or gather over the samples), and the pooled RoIs come in the groups' order
(:class:`PooledRoIs`), which the box head's few outputs are put back from.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

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

    @classmethod
    def of(cls, layer) -> 'RoIAlignSettings':
        """The settings of an mmcv ``RoIAlign`` layer."""
        return cls(tuple(layer.output_size), float(layer.spatial_scale),
                   int(layer.sampling_ratio), bool(layer.aligned))


def pools_here(layer) -> bool:
    """Whether ``layer`` is one :func:`roi_align_rows` pools as: mmcv's
    ``RoIAlign`` with average pooling (not torchvision's)."""
    from mmcv.ops import RoIAlign
    return (type(layer) is RoIAlign and layer.pool_mode == 'avg'
            and not layer.use_torchvision)


@dataclass(frozen=True)
class FeatureRows:
    """Channels-last features of one or more levels as one table of rows.

    Args:
        rows (Tensor): (sum of N * H * W, C), contiguous: level after level,
            image after image, row after row.
        shapes (tuple): each level's (N, H, W).
    """
    rows: Tensor
    shapes: Tuple[Tuple[int, int, int], ...]

    @classmethod
    def of_nchw(cls, feats: Sequence[Tensor]) -> 'FeatureRows':
        """The rows of (N, C, H, W) levels (each copied once, channels
        last)."""
        shapes = tuple((int(f.shape[0]), int(f.shape[2]), int(f.shape[3]))
                       for f in feats)
        rows = feats[0].new_empty(sum(n * h * w for n, h, w in shapes),
                                  feats[0].shape[1])
        start = 0
        for f, (n, h, w) in zip(feats, shapes):
            rows[start:start + n * h * w].view(n, h, w, -1).copy_(
                f.permute(0, 2, 3, 1))
            start += n * h * w
        return cls(rows, shapes)


@dataclass(frozen=True)
class PooledRoIs:
    """RoIs pooled in their sampling groups' order.

    Args:
        pooled (Tensor): (n, out_h * out_w, C): RoI, bin (row-major),
            channel.
        order (Tensor): (n,) int64: ``pooled[i]`` is RoI ``order[i]`` of
            the RoIs given (levels concatenated).
    """
    pooled: Tensor
    order: Tensor

    def in_given_order(self, values: Optional[Tensor] = None) -> Tensor:
        """``values`` (one row a pooled RoI, as ``pooled``; default
        ``pooled`` itself) with the RoIs in the order given."""
        values = self.pooled if values is None else values
        return values.new_empty(values.shape).index_copy_(0, self.order,
                                                          values)


def _axis(start: Tensor, bin_size: Tensor, grid: int, bins: int,
          size: int) -> Tuple[Tensor, Tensor]:
    """One axis's samples of RoIs with ``grid`` samples a bin, as mmcv's
    ``pre_calc_for_bilinear_interpolate`` takes them.

    Returns:
        tuple: (m, bins, grid, 2) lower and upper pixels and their weights
        (0 outside the map).
    """
    dtype = start.dtype
    at = (start[:, None, None]
          + torch.arange(bins, dtype=dtype)[None, :, None]
          * bin_size[:, None, None]
          + (torch.arange(grid, dtype=dtype) + .5)[None, None, :]
          * bin_size[:, None, None] / grid)
    inside = ((at >= -1.) & (at <= size)).to(dtype)
    at = at.clamp(min=0.)
    low = at.long()
    edge = low >= size - 1
    low = low.clamp(max=size - 1)
    upper = torch.where(edge, torch.zeros_like(at),
                        at - low.to(dtype)) * inside
    return (torch.stack([low, torch.where(edge, low, low + 1)], -1),
            torch.stack([inside - upper, upper], -1))


def _geometry(rois: Tensor, settings: RoIAlignSettings
              ) -> Tuple[Tensor, ...]:
    """Each RoI's start and bin size along y and x and its grid (y, x),
    in the feature level's pixels, as mmcv's kernel computes them."""
    out_h, out_w = settings.output_size
    offset = .5 if settings.aligned else 0.
    x1 = rois[:, 1] * settings.spatial_scale - offset
    y1 = rois[:, 2] * settings.spatial_scale - offset
    roi_w = rois[:, 3] * settings.spatial_scale - offset - x1
    roi_h = rois[:, 4] * settings.spatial_scale - offset - y1
    if not settings.aligned:
        roi_w, roi_h = roi_w.clamp(min=1.), roi_h.clamp(min=1.)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    if settings.sampling_ratio > 0:
        grid_h = torch.full((len(rois), ), settings.sampling_ratio)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(bin_h).long().clamp(min=0)
        grid_w = torch.ceil(bin_w).long().clamp(min=0)
    return y1, bin_h, x1, bin_w, grid_h, grid_w


def _groups(geometry: Tuple[Tensor, ...],
            first: int) -> Tuple[Tensor, List[Tuple[Tensor, int, int]]]:
    """The RoIs' order by grid (stable; their indices plus ``first``) and
    each grid's RoIs (their indices) and grid (y, x)."""
    grid_h, grid_w = geometry[4], geometry[5]
    if not len(grid_h):
        return grid_h.new_zeros(0), []
    key = grid_h * (int(grid_w.max()) + 1) + grid_w
    order = torch.sort(key, stable=True)[1]
    counts = torch.unique_consecutive(key[order], return_counts=True)[1]
    firsts = (torch.cumsum(counts, 0) - counts).tolist()
    hs, ws = grid_h[order][firsts].tolist(), grid_w[order][firsts].tolist()
    return order + first, [(order[f:f + c], h, w) for f, c, h, w in zip(
        firsts, counts.tolist(), hs, ws)]


def roi_align_rows(table: FeatureRows, rois: Sequence[Tensor],
                   settings: Sequence[RoIAlignSettings]) -> PooledRoIs:
    """mmcv's ``roi_align(feats, rois, ..., 'avg', aligned)`` of each
    level's RoIs on its rows of ``table``, every level in one
    ``embedding_bag``, the RoIs grouped by sampling grid.

    Args:
        table (FeatureRows): the levels' channels-last features.
        rois (Sequence[Tensor]): each level's (n_l, 5) ``[batch index, x1,
            y1, x2, y2]`` in the image's pixels.
        settings (Sequence[RoIAlignSettings]): each level's layer (one
            output size).

    Returns:
        PooledRoIs: (n, out_h * out_w, C) over the levels' RoIs; mmcv's
        (n, C, out_h, out_w) of RoI ``order[i]`` is ``pooled[i]``'s
        ``.view(out_h, out_w, C)`` permuted.
    """
    out_h, out_w = settings[0].output_size
    bins, dtype = out_h * out_w, table.rows.dtype
    orders, groups, tables, first, row = [], [], [], 0, 0
    for level_rois, s, (batch, height, width) in zip(rois, settings,
                                                     table.shapes):
        level_rois = level_rois.to(dtype)
        geometry = _geometry(level_rois, s)
        order, level_groups = _groups(geometry, first)
        orders.append(order)
        base = level_rois[:, 0].long() * (height * width) + row
        tables.append((geometry, base, height, width))
        groups += [(len(tables) - 1, *g) for g in level_groups]
        first, row = first + len(level_rois), row + batch * height * width
    sizes = [len(sel) * bins * gh * gw * 4 for _, sel, gh, gw in groups]
    index = torch.empty(sum(sizes), dtype=torch.long)
    weight = torch.empty(sum(sizes), dtype=dtype)
    offsets, start = [], 0
    for (level, sel, gh, gw), size in zip(groups, sizes):
        offsets.append(torch.arange(len(sel) * bins) * (gh * gw * 4) + start)
        if size:
            (y1, bin_h, x1, bin_w, _, _), base, height, width = tables[level]
            _broadcast(index[start:start + size], weight[start:start + size],
                       _axis(y1[sel], bin_h[sel], gh, out_h, height),
                       _axis(x1[sel], bin_w[sel], gw, out_w, width),
                       (base[sel], width))
        start += size
    order = torch.cat(orders) if orders else torch.zeros(0, dtype=torch.long)
    channels = table.rows.shape[1]
    if not offsets:
        return PooledRoIs(table.rows.new_zeros(0, bins, channels), order)
    pooled = F.embedding_bag(index, table.rows, torch.cat(offsets),
                             mode='sum', per_sample_weights=weight)
    return PooledRoIs(pooled.view(-1, bins, channels), order)


def pool_levels(feats: Sequence[Tensor], rois: Sequence[Tensor],
                settings: Sequence[RoIAlignSettings]) -> PooledRoIs:
    """:func:`roi_align_rows` of each level's RoIs (given level by level)
    on its (N, C, H, W) features: only the levels with RoIs are made
    channels last (with none, the first, for an empty pooling).

    Returns:
        PooledRoIs: ``order`` over the levels' RoIs concatenated.
    """
    used = [(f, r, s) for f, r, s in zip(feats, rois, settings)
            if len(r)] or [(feats[0], rois[0], settings[0])]
    table = FeatureRows.of_nchw([f for f, _, _ in used])
    return roi_align_rows(table, [r for _, r, _ in used],
                          [s for _, _, s in used])


def _broadcast(index: Tensor, weight: Tensor, y: Tuple[Tensor, Tensor],
               x: Tuple[Tensor, Tensor], rows: Tuple[Tensor, int]) -> None:
    """A group's samples written to ``index`` and ``weight``: RoI, bin
    (row-major), the bin's grid (row-major) and the four corners, from its
    (m, bins, grid, 2) axis tables (:func:`_axis`); ``rows``: each RoI's
    first row in the table and the level's width."""
    (y_at, y_weight), (x_at, x_weight) = y, x
    base, width = rows
    m, out_h, gh, _ = y_at.shape
    out_w, gw = x_at.shape[1:3]
    shape = (m, out_h, out_w, gh, gw, 2, 2)
    y_rows = y_at * width + base[:, None, None, None]
    torch.add(y_rows[:, :, None, :, None, :, None],
              x_at[:, None, :, None, :, None, :], out=index.view(shape))
    torch.mul((y_weight / (gh * gw))[:, :, None, :, None, :, None],
              x_weight[:, None, :, None, :, None, :], out=weight.view(shape))

