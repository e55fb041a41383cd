# Copyright (c) mmlesion contributors. All rights reserved.
"""Adaptive Focal Loss, Eq. 3 of the 3D Aggregated Faster R-CNN paper."""
import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MessageHub
from torch import Tensor

from mmdet.registry import MODELS


def split_binary_targets(cls_score: Tensor, label: Tensor,
                         weight: Optional[Tensor]) -> Tuple[Tensor, ...]:
    """Flatten binary logits and split anchors into positives / negatives.

    Args:
        cls_score (Tensor): (N,) or (N, 1) logits.
        label (Tensor): (N,) 1 positive, 0 negative.
        weight (Tensor, optional): (N,); anchors with weight 0 are ignored.

    Returns:
        tuple[Tensor]: float logits (N,), positive mask, negative mask.
    """
    logits = cls_score.reshape(-1).float()
    label = label.reshape(-1)
    if logits.numel() != label.numel():
        raise ValueError(f'{logits.numel()} scores but {label.numel()} '
                         f'labels')
    valid = torch.ones_like(logits, dtype=torch.bool) if weight is None \
        else weight.reshape(-1) > 0
    return logits, valid & (label == 1), valid & (label == 0)


@MODELS.register_module()
class AdaptiveFocalLoss(nn.Module):
    r"""Binary loss of Eq. 3 (Sec. III-B) for very sparse positives.

    .. math::
        L = T \frac{\log N_{TN}}{N_{TN}} \sum_{neg} L_F(p_t)
            + \frac{1}{N_{pos}} \sum_{pos} L_{CE}(p_{pos})

    * Negatives get the focal loss of Eq. 1 with
      :math:`p_t = 1 - p`, :math:`\alpha_t = 1 - \alpha` (Lin et al.'s
      convention; the paper uses :math:`\alpha = 0.8, \gamma = 5`).
    * Positives get plain cross-entropy averaged over :math:`N_{pos}`; no
      positives -> 0.
    * :math:`N_{TN}` counts, without gradient, the negatives whose
      probability is below ``tn_thr`` (the ones the classifier gets right),
      at least 2 so that :math:`\log N_{TN} > 0`.
    * :math:`T` grows linearly with the iteration from ``t_start`` to
      ``t_end`` (read from mmengine's ``MessageHub``; ``t_start`` outside a
      Runner) to smooth the "focus shift". The paper gives no values for T;
      the defaults (1 -> 10) are ours.

    Ignored anchors carry weight 0. With RetinaNet's objectness prior of
    0.01 and :math:`\gamma = 5` the negative term would start near
    :math:`10^{-11}`, so ``AggregatedRPNHead3D`` starts the objectness at
    0.5 (``projects/aggregated3d/tools/adaptive_focal_terms.py`` prints both
    terms).

    Args:
        alpha (float): focal alpha. Defaults to 0.8 (Sec. IV-B).
        gamma (float): focal gamma. Defaults to 5 (Sec. IV-B).
        t_start (float): T at iteration 0. Defaults to 1.
        t_end (float): T at the last iteration. Defaults to 10.
        tn_thr (float): probability under which a negative counts as a true
            negative. Defaults to 0.5.
        loss_weight (float): loss weight. Defaults to 1.
    """

    def __init__(self,
                 alpha: float = 0.8,
                 gamma: float = 5.0,
                 t_start: float = 1.0,
                 t_end: float = 10.0,
                 tn_thr: float = 0.5,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if not 0 <= alpha <= 1:
            raise ValueError(f'alpha must be in [0, 1], got {alpha}')
        if t_start < 0 or t_end < 0:
            raise ValueError('t_start and t_end must be >= 0')
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.t_start = float(t_start)
        self.t_end = float(t_end)
        self.tn_thr = float(tn_thr)
        self.loss_weight = float(loss_weight)

    def current_t(self) -> float:
        """T for the current iteration (from the message hub)."""
        hub = MessageHub.get_current_instance()
        max_iters = hub.get_info('max_iters')
        if not max_iters:
            return self.t_start
        it = hub.get_info('iter') or 0
        frac = min(max(float(it) / float(max_iters), 0.), 1.)
        return self.t_start + (self.t_end - self.t_start) * frac

    def terms(self,
              cls_score: Tensor,
              label: Tensor,
              weight: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The two terms of Eq. 3 (unweighted by ``loss_weight``).

        Args:
            cls_score (Tensor): (N,) or (N, 1) logits.
            label (Tensor): (N,) targets, 1 positive, 0 negative.
            weight (Tensor, optional): (N,) weights; 0 ignores an anchor.

        Returns:
            dict[str, Tensor]: ``neg`` (:math:`T \log N_{TN} / N_{TN}
            \sum_{neg} L_F`), ``pos`` (:math:`1 / N_{pos} \sum_{pos}
            L_{CE}`, 0 without positives), and, without gradient, ``t``,
            ``n_tn``, ``n_neg`` and ``n_pos``.
        """
        logits, pos, neg = split_binary_targets(cls_score, label, weight)
        zero = logits.sum() * 0
        out = dict(neg=zero, pos=zero, t=logits.new_tensor(self.current_t()),
                   n_tn=logits.new_tensor(0.), n_neg=neg.sum().float(),
                   n_pos=pos.sum().float())
        n_pos = int(pos.sum())
        if n_pos:
            out['pos'] = zero + F.binary_cross_entropy_with_logits(
                logits[pos], torch.ones_like(logits[pos]), reduction='sum'
            ) / n_pos
        if bool(neg.any()):
            neg_logits = logits[neg]
            p = neg_logits.sigmoid()
            # -log(1 - p) computed stably as softplus(logit)
            focal = (1 - self.alpha) * p.pow(self.gamma) * F.softplus(
                neg_logits)
            n_tn = max(int((p.detach() < self.tn_thr).sum()), 2)
            out['n_tn'] = logits.new_tensor(float(n_tn))
            scale = float(out['t']) * math.log(n_tn) / n_tn
            out['neg'] = zero + scale * focal.sum()
        return out

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                **kwargs) -> Tensor:
        """Compute Eq. 3 (the sum of :meth:`terms`).

        Args:
            cls_score (Tensor): (N,) or (N, 1) logits.
            label (Tensor): (N,) targets, 1 positive, 0 negative.
            weight (Tensor, optional): (N,) weights; 0 ignores an anchor.
            avg_factor: unused (Eq. 3 has its own normalisers); accepted
                for mmdet's loss interface.

        Returns:
            Tensor: scalar loss.
        """
        terms = self.terms(cls_score, label, weight)
        return self.loss_weight * (terms['neg'] + terms['pos'])
