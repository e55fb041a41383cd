# Copyright (c) mmlesion contributors. All rights reserved.
"""Mixed operation of the differentiable ALB search (ElixirNet, "Differentiable
Search Strategy", Eq. 3; DARTS' continuous relaxation)."""
from typing import Optional, Sequence

import torch.nn as nn
from torch import Tensor

from .alb_ops import ALB_OP_NAMES, build_alb_op


class MixedOp(nn.Module):
    """Softmax-weighted sum of all candidate operations on one edge.

    ``forward(x, weights, num_rois) = sum_k weights[k] * op_k(x, num_rois)``
    with ``weights = softmax(alpha)`` of the edge, computed by the owner of
    the architecture parameters (:class:`ALBCell`). As in DARTS' search,
    norms default to an affine-free BN and a norm is appended to the
    pooling operation, so that ``alpha`` alone decides the path strengths.

    Args:
        channels (int): input and output channels.
        stride (int): 1 or 2 (reduction edges from the cell input).
        op_names (Sequence[str]): candidate operations. Defaults to
            :data:`ALB_OP_NAMES` (the paper's 9).
        norm_cfg (dict, optional): norm config of the operations. Defaults to
            ``dict(type='BN', affine=False)``.
    """

    def __init__(
        self,
        channels: int,
        stride: int,
        op_names: Sequence[str] = ALB_OP_NAMES,
        norm_cfg: Optional[dict] = dict(type='BN', affine=False)
    ) -> None:
        super().__init__()
        if len(op_names) == 0:
            raise ValueError('MixedOp needs at least one operation name')
        self.op_names = tuple(op_names)
        self.ops = nn.ModuleList([
            build_alb_op(
                name,
                channels,
                stride,
                norm_cfg=norm_cfg,
                pool_norm_cfg=norm_cfg) for name in self.op_names
        ])

    def forward(self, x: Tensor, weights: Tensor,
                num_rois: Optional[Sequence[int]]) -> Tensor:
        """Mix all operations.

        Args:
            x (Tensor): ``(R, C, H, W)`` RoI features of all images.
            weights (Tensor): ``(len(op_names),)`` mixture weights.
            num_rois (Sequence[int]): RoIs per image (for ``non_local``).

        Returns:
            Tensor: ``(R, C, H', W')``.
        """
        if weights.shape != (len(self.ops), ):
            raise ValueError(f'MixedOp expects {len(self.ops)} weights, got '
                             f'shape {tuple(weights.shape)}')
        return sum(w * op(x, num_rois) for w, op in zip(weights, self.ops))
