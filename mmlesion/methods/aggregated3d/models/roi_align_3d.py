# Copyright (c) mmlesion contributors. All rights reserved.
"""3D RoI Align (trilinear, 8 neighbours), batched over RoIs."""
from typing import Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.utils import to_3tuple
from torch import Tensor

from mmdet.registry import MODELS


def roi_align_3d(feats: Tensor,
                 rois: Tensor,
                 output_size: Union[int, Sequence[int]],
                 spatial_scale: float = 1.0,
                 sampling_ratio: int = 2,
                 aligned: bool = True) -> Tensor:
    """RoI Align extended to 3D (Sec. III-C: "from 4 neighboring points to
    8 neighbor points").

    As mmcv's ``RoIAlign`` (``aligned=True``, fixed ``sampling_ratio``):
    each output bin averages ``sampling_ratio^3`` regularly spaced points,
    each trilinearly interpolated from its 8 neighbouring voxels. A point's
    continuous voxel coordinate is ``coord * spatial_scale - 0.5`` (voxel
    centres at integers). Neighbours outside the map contribute zero
    (``grid_sample``'s zero padding); mmcv's 2D kernel instead clamps points
    within one voxel of the border, so values differ there only.

    All RoIs of an image are sampled in one ``grid_sample`` call (all RoIs
    at once where RoI ``i`` lies on image ``i``).

    Args:
        feats (Tensor): (B, C, D, H, W) features.
        rois (Tensor): (K, 7) ``[batch_idx, x1, y1, z1, x2, y2, z2]`` in input
            coordinates.
        output_size (int | Sequence[int]): (od, oh, ow) bins.
        spatial_scale (float): ``1 / stride`` of ``feats``.
        sampling_ratio (int): points per bin along each axis (>= 1).
        aligned (bool): shift by -0.5 voxel (the corrected RoI Align).

    Returns:
        Tensor: (K, C, od, oh, ow).
    """
    if feats.dim() != 5:
        raise ValueError(f'feats must be (B, C, D, H, W), got '
                         f'{tuple(feats.shape)}')
    if rois.dim() != 2 or rois.size(1) != 7:
        raise ValueError(f'rois must be (K, 7) [batch_idx, x1, y1, z1, x2, '
                         f'y2, z2], got {tuple(rois.shape)}')
    if sampling_ratio < 1:
        raise ValueError(f'sampling_ratio must be >= 1, got {sampling_ratio}')
    od, oh, ow = to_3tuple(output_size)
    num_rois = rois.size(0)
    channels = feats.size(1)
    size_dhw = feats.shape[2:]
    out = feats.new_zeros((num_rois, channels, od, oh, ow))
    if num_rois == 0:
        return out
    s = sampling_ratio
    offset = 0.5 if aligned else 0.0
    # voxel-index coordinates of the RoI corners, (K, 3) in (x, y, z)
    lo = rois[:, 1:4] * spatial_scale - offset
    hi = rois[:, 4:7] * spatial_scale - offset
    extent = hi - lo
    if not aligned:
        extent = extent.clamp(min=1.0)
    axes = []
    for k, n in enumerate((ow, oh, od)):  # x, y, z
        frac = (torch.arange(n * s, device=feats.device,
                             dtype=feats.dtype) + 0.5) / (n * s)
        axes.append(lo[:, k:k + 1] + frac[None] * extent[:, k:k + 1])
    ax, ay, az = axes  # (K, n*s) each
    # normalise to grid_sample's [-1, 1] (align_corners=False)
    d, h, w = size_dhw
    gx = (ax + 0.5) / w * 2 - 1
    gy = (ay + 0.5) / h * 2 - 1
    gz = (az + 0.5) / d * 2 - 1
    nz, ny, nx = od * s, oh * s, ow * s
    grid = torch.stack(
        torch.broadcast_tensors(gx[:, None, None, :], gy[:, None, :, None],
                                gz[:, :, None, None]),
        dim=-1)  # (K, nz, ny, nx, 3) with (x, y, z) order
    batch_idx = rois[:, 0].long()
    if feats.size(0) == num_rois and torch.equal(
            batch_idx, torch.arange(num_rois, device=batch_idx.device)):
        # RoI i on image i (e.g. each RoI on its own magnified crop)
        sampled = F.grid_sample(
            feats, grid, mode='bilinear', padding_mode='zeros',
            align_corners=False)  # (K, C, nz, ny, nx)
        sampled = sampled.reshape(num_rois, channels, od, s, oh, s, ow, s)
        return sampled.mean(dim=(3, 5, 7)).to(out.dtype)
    for b in torch.unique(batch_idx).tolist():
        sel = (batch_idx == b).nonzero(as_tuple=True)[0]
        g = grid[sel].reshape(1, len(sel) * nz, ny, nx, 3)
        sampled = F.grid_sample(
            feats[b:b + 1], g, mode='bilinear', padding_mode='zeros',
            align_corners=False)  # (1, C, K_b * nz, ny, nx)
        sampled = sampled.reshape(channels, len(sel), od, s, oh, s, ow, s)
        # under autocast grid_sample runs in float32 while ``out`` has the
        # features' dtype (float16): cast before the indexed write
        out[sel] = sampled.mean(dim=(3, 5, 7)).permute(1, 0, 2, 3,
                                                       4).to(out.dtype)
    return out


@MODELS.register_module()
class RoIAlign3D(nn.Module):
    """Module wrapper of :func:`roi_align_3d`.

    Args:
        output_size (int | Sequence[int]): (od, oh, ow) bins. The paper uses
            2 (Table I, "RoI Align Output 2x2x2").
        spatial_scale (float): ``1 / stride``.
        sampling_ratio (int): points per bin per axis. Defaults to 2.
        aligned (bool): -0.5 voxel shift. Defaults to True.
    """

    def __init__(self,
                 output_size: Union[int, Sequence[int]] = 2,
                 spatial_scale: float = 1.0,
                 sampling_ratio: int = 2,
                 aligned: bool = True) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = aligned

    def forward(self, feats: Tensor, rois: Tensor) -> Tensor:
        """See :func:`roi_align_3d`."""
        return roi_align_3d(feats, rois, self.output_size,
                            self.spatial_scale, self.sampling_ratio,
                            self.aligned)

    def extra_repr(self) -> str:
        return (f'output_size={self.output_size}, spatial_scale='
                f'{self.spatial_scale}, sampling_ratio={self.sampling_ratio}, '
                f'aligned={self.aligned}')
