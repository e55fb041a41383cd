# Copyright (c) mmlesion contributors. All rights reserved.
"""Relation Transfer Module (ElixirNet, section "Relation Transfer Module").
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor


@MODELS.register_module()
class RelationTransferModule(BaseModule):
    """Transfer coarse "lesion present" embeddings along the ALB graph.

    ``f_E = E Gamma_s M W_E`` (paper, section "Relation Transfer Module"):

    * ``M in R^{K x (P + 1)}``: the weights and bias of the binary ("FC
      2-cls") classifier :attr:`binary_cls` (``Linear(P, K)``), ``K = 2``
      (lesion, background), ``P`` the region feature size (512 in the
      paper).
    * ``Gamma_s in R^{R x K}``: a softmax over ``K`` of each region's scores
      from that same classifier.
    * ``E``: the ALB's Non-local graph, one ``(R_i, R_i)`` block per image.
    * ``W_E in R^{(P + 1) x out_channels}`` (the paper prints ``N x E``; the
      product only works with ``(P + 1)`` rows): linear, no bias, no
      activation; ``out_channels`` = the paper's ``E`` = 128.

    The binary classifier is the pretrained lesion-vs-background one
    (:class:`~mmlesion.methods.elixirnet.models.RTMBBoxHead` loads it),
    frozen by default so that ``M`` stays the transferred embedding.

    Args:
        in_channels (int): ``P``, region feature size.
        out_channels (int): size of ``f_E``. Defaults to 128.
        num_embeddings (int): ``K``, rows of ``M`` (outputs of the binary
            classifier, background included). Defaults to 2.
        freeze_classifier (bool): keep :attr:`binary_cls` fixed. Defaults to
            True.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 128,
        num_embeddings: int = 2,
        freeze_classifier: bool = True,
        init_cfg: Optional[dict] = dict(
            type='Normal', std=0.01, override=dict(name='binary_cls'))
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_embeddings = num_embeddings
        self.freeze_classifier = freeze_classifier
        self.binary_cls = nn.Linear(in_channels, num_embeddings)
        self.transform = nn.Linear(in_channels + 1, out_channels, bias=False)
        if freeze_classifier:
            self.binary_cls.requires_grad_(False)

    @property
    def embeddings(self) -> Tensor:
        """``M``: ``(K, P + 1)`` binary classifier weights and bias."""
        return torch.cat(
            [self.binary_cls.weight, self.binary_cls.bias[:, None]], dim=1)

    def forward(self,
                feats: Tensor,
                adjacency: Sequence[Tensor],
                num_rois: Sequence[int],
                return_scores: bool = False
                ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Compute ``f_E``.

        Args:
            feats (Tensor): ``(R, P)`` region features of all images.
            adjacency (Sequence[Tensor]): one ``(R_i, R_i)`` graph per image.
            num_rois (Sequence[int]): RoIs per image, summing to ``R``.
            return_scores (bool): also return the binary classifier's
                scores ``s`` (before the softmax), so that a head can
                supervise the classifier. Defaults to False.

        Returns:
            Tensor | tuple[Tensor, Tensor]: ``f_E`` ``(R, out_channels)``,
            and with ``return_scores`` the ``(R, K)`` scores.
        """
        counts = [int(n) for n in num_rois]
        if sum(counts) != feats.size(0) or len(adjacency) != len(counts):
            raise ValueError(
                f'RelationTransferModule got {feats.size(0)} regions, '
                f'num_rois={counts} and {len(adjacency)} graphs: need one '
                'graph per image and num_rois summing to the regions')
        for i, (graph, n) in enumerate(zip(adjacency, counts)):
            if tuple(graph.shape) != (n, n):
                raise ValueError(f'graph {i} has shape {tuple(graph.shape)}, '
                                 f'expected ({n}, {n})')
        scores = self.binary_cls(feats)
        soft_mapping = scores.softmax(dim=1)  # Gamma_s
        region_embed = soft_mapping @ self.embeddings  # Gamma_s M
        transferred = [
            graph @ embed_i for graph, embed_i in zip(
                adjacency, region_embed.split(counts, dim=0))
        ]
        transferred = torch.cat(transferred, dim=0) if transferred \
            else region_embed
        f_e = self.transform(transferred)  # (E Gamma_s M) W_E
        return (f_e, scores) if return_scores else f_e
