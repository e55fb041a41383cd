# Copyright (c) mmlesion contributors. All rights reserved.
"""The Non-local operator of ElixirNet's Auto-lesion Block.

Paper section "Search Space for ALB", paragraph "Non-local Operator" (Eq. 2):
the relation among the region proposals of an image is a region-to-region
undirected graph with self-loops whose adjacency is
``E = softmax(phi(X) phi(X)^T)``; one GCN layer (Kipf and Welling)
propagates ``Y = sigma(E psi(X) W)``; a last fully-connected layer ``g`` maps
back to the input shape and the operator outputs ``g(Y)``.
"""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

_NO_NUM_ROIS = ('NonLocalGraph needs num_rois (RoIs per image) to build one '
                'graph per image; got None. Use ALBRoIHead, which passes it.')


@MODELS.register_module()
class NonLocalGraph(BaseModule):
    """Relation graph over the RoIs of each image, with one GCN layer.

    The paper writes the operator on proposal features ``(N, D)``; the ALB
    operations work on RoI feature maps ``(R, D, H, W)``. Choices made here
    (the paper leaves them open):

    * Each RoI is a node described by its globally average-pooled
      ``D``-vector; ``E_i = softmax(phi(X_i) phi(X_i)^T)`` (row softmax,
      self-loops included) is computed **separately for each image**. No
      ``1/sqrt(D/2)`` scaling by default (Eq. 2 has none).
    * Propagation keeps the spatial layout: ``psi`` and ``W`` are 1x1 convs,
      ``E`` mixes the aligned RoI maps position by position, and ``g`` (1x1,
      ``D/2 -> D``) plus a norm layer (as the BN ending every other
      operation) returns the input shape.
    * Stride 2 (ALBr cell-input edges): the propagated maps are 3x3
      average-pooled with stride 2 first.
    * No residual connection: the paper outputs ``g(Y)``.

    After each forward, ``last_adjacency`` holds one detached ``(R_i, R_i)``
    adjacency per image (rows sum to 1, RoIs in input order). With
    ``keep_live_graph`` the graphs are also kept with their gradient in
    ``live_adjacency`` until :meth:`pop_live_adjacency` takes them (for the
    Relation Transfer Module); not by default, since ``deepcopy`` (EMA
    hooks) refuses non-leaf tensors.

    Args:
        channels (int): ``D``, input and output channels.
        inter_channels (int, optional): output dimension of ``phi``, ``psi``
            and ``W``. Defaults to ``max(channels // 2, 1)``.
        stride (int): 1 or 2. Defaults to 1.
        norm_cfg (dict, optional): norm after ``g``. Defaults to BN.
        scaled (bool): divide ``phi phi^T`` by ``sqrt(inter_channels)``.
            Defaults to False (the paper's Eq. 2).
        keep_live_graph (bool): also keep the graphs with gradient, see above.
            Defaults to False.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self,
                 channels: int,
                 inter_channels: Optional[int] = None,
                 stride: int = 1,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 scaled: bool = False,
                 keep_live_graph: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'NonLocalGraph supports stride 1 or 2, got '
                             f'stride={stride}')
        self.channels = channels
        self.inter_channels = inter_channels or max(channels // 2, 1)
        self.stride = stride
        self.scaled = scaled
        self.keep_live_graph = keep_live_graph

        inter = self.inter_channels
        self.phi = nn.Linear(channels, inter)
        self.psi = nn.Conv2d(channels, inter, 1)
        self.gcn_weight = nn.Conv2d(inter, inter, 1, bias=False)
        self.g = ConvModule(
            inter, channels, 1, norm_cfg=norm_cfg, act_cfg=None)
        self.pool = nn.AvgPool2d(
            3, stride=stride, padding=1,
            count_include_pad=False) if stride > 1 else nn.Identity()

        self.last_adjacency: List[Tensor] = []
        self.live_adjacency: Optional[List[Tensor]] = None

    def adjacency(self, x: Tensor, num_rois: Sequence[int]) -> List[Tensor]:
        """Compute ``E`` for every image (Eq. 2).

        Args:
            x (Tensor): ``(R, D, H, W)`` RoI features of all images.
            num_rois (Sequence[int]): RoIs per image, summing to ``R``.

        Returns:
            list[Tensor]: one ``(R_i, R_i)`` row-stochastic matrix per image.
        """
        counts = check_num_rois(x, num_rois, _NO_NUM_ROIS)
        nodes = F.relu(self.phi(x.mean(dim=(2, 3))))
        graphs = []
        for nodes_i in nodes.split(counts, dim=0):
            logits = nodes_i @ nodes_i.t()
            if self.scaled:
                logits = logits / math.sqrt(self.inter_channels)
            graphs.append(logits.softmax(dim=1))
        return graphs

    def forward(self, x: Tensor, num_rois: Sequence[int]) -> Tensor:
        """Build each image's graph and propagate with one GCN layer.

        Args:
            x (Tensor): ``(R, D, H, W)`` RoI features of all images, stacked
                in image order.
            num_rois (Sequence[int]): RoIs per image, summing to ``R``.

        Returns:
            Tensor: ``(R, D, H', W')`` with ``H' = ceil(H / stride)``.
        """
        counts = check_num_rois(x, num_rois, _NO_NUM_ROIS)
        graphs = self.adjacency(x, counts)
        values = F.relu(self.psi(self.pool(x)))
        propagated = [
            (graph @ values_i.flatten(1)).view_as(values_i)
            for graph, values_i in zip(graphs, values.split(counts, dim=0))
        ]
        y = torch.cat(propagated, dim=0) if propagated else values
        y = F.relu(self.gcn_weight(y))
        self.last_adjacency = [graph.detach() for graph in graphs]
        self.live_adjacency = graphs if self.keep_live_graph else None
        return self.g(y)

    def pop_live_adjacency(self) -> List[Tensor]:
        """Return the graphs of the last forward with their gradient and
        forget them.

        Raises:
            RuntimeError: if ``keep_live_graph`` was False or no forward ran
                since the last pop.
        """
        if self.live_adjacency is None:
            raise RuntimeError('NonLocalGraph has no live adjacency: set '
                               'keep_live_graph=True and run forward before '
                               'pop_live_adjacency().')
        graphs, self.live_adjacency = self.live_adjacency, None
        return graphs



def check_num_rois(x: Tensor, num_rois: Optional[Sequence[int]],
                   if_none: str) -> List[int]:
    """``num_rois`` as ints, summing to ``len(x)``; ``if_none``: error."""
    if num_rois is None:
        raise ValueError(if_none)
    counts = [int(n) for n in num_rois]
    if any(n < 0 for n in counts) or sum(counts) != x.size(0):
        raise ValueError(f'num_rois={counts} must be non-negative and sum to '
                         f'the number of RoI features ({x.size(0)})')
    return counts
