# Copyright (c) mmlesion contributors. All rights reserved.
"""Cube anchors ``{z, y, x, d}`` per pyramid level (3D Aggregated Faster
R-CNN, Sec. III-B and IV-B)."""
from typing import List, Sequence, Tuple, Union

import torch
from torch import Tensor

from mmdet.registry import TASK_UTILS


@TASK_UTILS.register_module()
class CubeAnchorGenerator3D:
    """Cubic 3D anchors, a set of diameters per pyramid level.

    The paper distributes the anchor diameters over the levels (Sec. IV-B):
    LUNA16 "anchor1" is ``sizes=[[4, 6], [8, 12], [16, 24]]`` at
    ``strides=[4, 8, 16]``; DeepLesion uses ``[[3, 5, 7], [10, 13, 17],
    [22, 30, 40]]`` (Sec. V-B).

    Anchors are ``[x1, y1, z1, x2, y2, z2]`` in input voxels in mmdet's
    pixel-edge convention (voxel ``i`` spans ``[i, i + 1)``), centred at
    ``s * (i + center_offset)`` on cell ``i`` of a stride-``s`` map, in
    ``(z, y, x, anchor)`` order (a head output ``(B, A * k, D, H, W)``
    permuted to ``(B, D, H, W, A, k)``).

    Args:
        strides (Sequence[int]): stride of each level (voxels).
        sizes (Sequence[Sequence[float]]): anchor diameters of each level,
            in input voxels.
        center_offset (float): offset of the anchor centre within a cell,
            in units of the stride. Defaults to 0.5.
    """

    def __init__(self,
                 strides: Sequence[int],
                 sizes: Sequence[Sequence[float]],
                 center_offset: float = 0.5) -> None:
        if len(strides) != len(sizes):
            raise ValueError(f'CubeAnchorGenerator3D: {len(strides)} strides '
                             f'but {len(sizes)} size lists')
        if any(len(s) == 0 for s in sizes) or any(
                float(v) <= 0 for s in sizes for v in s):
            raise ValueError(f'anchor sizes must be non-empty lists of '
                             f'positive diameters, got {sizes}')
        self.strides = [int(s) for s in strides]
        self.sizes = [[float(v) for v in s] for s in sizes]
        self.center_offset = float(center_offset)

    @property
    def num_levels(self) -> int:
        """int: number of pyramid levels."""
        return len(self.strides)

    @property
    def num_base_priors(self) -> List[int]:
        """list[int]: anchors per cell on each level."""
        return [len(s) for s in self.sizes]

    def single_level_grid_priors(self,
                                 featmap_size: Tuple[int, int, int],
                                 level_idx: int,
                                 device: Union[str, torch.device] = 'cpu',
                                 dtype: torch.dtype = torch.float32
                                 ) -> Tensor:
        """Anchors of one level.

        Args:
            featmap_size (tuple[int]): (D, H, W) of the feature map.
            level_idx (int): level index.
            device (str | torch.device): device.
            dtype (torch.dtype): dtype.

        Returns:
            Tensor: (D * H * W * A, 6) anchors.
        """
        stride = self.strides[level_idx]
        d, h, w = featmap_size
        axes = [(torch.arange(n, device=device, dtype=dtype) +
                 self.center_offset) * stride for n in (d, h, w)]
        cz, cy, cx = torch.meshgrid(*axes, indexing='ij')
        ctr = torch.stack([cx, cy, cz], dim=-1).reshape(-1, 1, 3)
        half = torch.tensor(self.sizes[level_idx], device=device,
                            dtype=dtype).view(1, -1, 1) / 2
        return torch.cat([ctr - half, ctr + half], dim=-1).reshape(-1, 6)

    def grid_priors(self,
                    featmap_sizes: Sequence[Tuple[int, int, int]],
                    device: Union[str, torch.device] = 'cpu',
                    dtype: torch.dtype = torch.float32) -> List[Tensor]:
        """Anchors of every level.

        Args:
            featmap_sizes (Sequence[tuple[int]]): (D, H, W) per level.
            device (str | torch.device): device.
            dtype (torch.dtype): dtype.

        Returns:
            list[Tensor]: (D * H * W * A, 6) anchors per level.
        """
        if len(featmap_sizes) != self.num_levels:
            raise ValueError(f'{len(featmap_sizes)} feature maps for '
                             f'{self.num_levels} anchor levels')
        return [
            self.single_level_grid_priors(tuple(s), i, device, dtype)
            for i, s in enumerate(featmap_sizes)
        ]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(strides={self.strides}, '
                f'sizes={self.sizes}, center_offset={self.center_offset})')
