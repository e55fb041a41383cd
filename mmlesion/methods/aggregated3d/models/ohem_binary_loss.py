# Copyright (c) mmlesion contributors. All rights reserved.
"""Online hard negative mining for a binary classifier (Table II, OHEM)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from .adaptive_focal_loss import split_binary_targets


@MODELS.register_module()
class OHEMBinaryLoss(nn.Module):
    """Binary cross-entropy over all positives and the hardest negatives.

    The OHEM baseline of Table II (rows a, c), as in DeepLung and Liao et
    al.: every positive anchor plus the ``max(neg_pos_ratio * N_pos,
    min_neg)`` negatives of the batch with the highest logits; each part's
    BCE is averaged over its own count and the two are summed. Ignored
    anchors carry ``weight`` 0.

    Args:
        neg_pos_ratio (int): hard negatives per positive. Defaults to 3.
        min_neg (int): the fewest hard negatives taken (the count with no
            positives). Defaults to 16.
        loss_weight (float): loss weight. Defaults to 1.
    """

    def __init__(self,
                 neg_pos_ratio: int = 3,
                 min_neg: int = 16,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.neg_pos_ratio = int(neg_pos_ratio)
        self.min_neg = int(min_neg)
        self.loss_weight = float(loss_weight)

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            cls_score (Tensor): (N,) logits.
            label (Tensor): (N,) 1 positive, 0 negative.
            weight (Tensor, optional): (N,), 0 ignores an anchor.
            avg_factor: unused.

        Returns:
            Tensor: scalar loss.
        """
        logits, pos, neg = split_binary_targets(cls_score, label, weight)
        neg_logits = logits[neg]
        n_pos = int(pos.sum())
        loss = logits.sum() * 0
        if n_pos:
            loss = loss + F.binary_cross_entropy_with_logits(
                logits[pos], torch.ones_like(logits[pos]))
        k = min(max(self.neg_pos_ratio * n_pos, self.min_neg),
                neg_logits.numel())
        if k:
            hard = neg_logits.topk(k)[0]
            loss = loss + F.binary_cross_entropy_with_logits(
                hard, torch.zeros_like(hard))
        return self.loss_weight * loss
