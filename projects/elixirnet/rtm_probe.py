# Copyright (c) mmlesion contributors. All rights reserved.
"""Does the Relation Transfer Module change the type predictions? An
after-run check of a multi-type ElixirNet (``RTMBBoxHead``).

The head classifies ``[f, f_E]`` (region feature, RTM feature; ElixirNet,
section "Relation Transfer Module"). This probe captures the input of
``fc_cls`` for every RoI the detector scores and compares its class
scores with those of the same RoIs with ``f_E`` set to zero (the linear
classifier makes that exact: the ``f_E`` columns' contribution removed):

* ``label_changed``: fraction of RoIs whose best lesion type changes,
* ``confident_label_changed``: the same over RoIs whose best type scores at
  least ``score_thr`` with the RTM (default 0.05, mmdet's test score
  threshold: the RoIs that can become detections),
* ``mean_abs_prob_change``: mean over RoIs of the largest absolute change
  of a class probability (background included),
* ``feature_norm_ratio``: mean ``||f_E|| / ||f||`` per RoI,
* ``weight_norm_ratio``: ``||W_cls[:, f_E]|| / ||W_cls[:, f]||`` (Frobenius),
  how much the classifier reads the RTM feature.

An RTM that the fine-tuning left unused shows ratios near their
initialisation and few label changes. Note that ``f_E = E Gamma_s M W_E``
with ``K = 2`` embeddings lies on a line segment (``Gamma_s M`` is a convex
combination of two vectors, ``E`` averages it over the regions): whatever
``W_E`` learns, it gives the classifier one scalar per RoI, the graph-
weighted "lesion" probability of its neighbours.
"""
from typing import Dict, List

import torch
from torch import Tensor


class RTMProbe:
    """Accumulate the RTM ablation over batches (a context manager: hooks
    the head's ``fc_cls`` while inside).

    Args:
        head (torch.nn.Module): an ``RTMBBoxHead`` (has ``rtm``,
            ``out_channels`` and ``fc_cls``).
        score_thr (float): score of a confident RoI.
    """

    def __init__(self, head: torch.nn.Module,
                 score_thr: float = 0.05) -> None:
        if not hasattr(head, 'rtm') or not hasattr(head, 'fc_cls'):
            raise ValueError(f'{type(head).__name__} has no Relation Transfer '
                             'Module (rtm) and fc_cls to probe')
        self.head = head
        self.split = int(head.out_channels)
        self.score_thr = float(score_thr)
        self._inputs: List[Tensor] = []
        self._handle = None

    def __enter__(self) -> 'RTMProbe':
        self._handle = self.head.fc_cls.register_forward_hook(
            lambda _m, args, _out: self._inputs.append(args[0].detach()))
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()
        self._handle = None

    def summary(self) -> Dict[str, float]:
        """The statistics over every captured RoI."""
        if not self._inputs:
            raise ValueError('RTMProbe: no RoI was classified')
        feats = torch.cat(self._inputs)
        weight = self.head.fc_cls.weight.detach()
        bias = self.head.fc_cls.bias
        logits = feats @ weight.t()
        if bias is not None:
            logits = logits + bias.detach()
        f, f_e = feats[:, :self.split], feats[:, self.split:]
        ablated = logits - f_e @ weight[:, self.split:].t()
        prob, prob_abl = logits.softmax(-1), ablated.softmax(-1)
        # mmdet's order: the lesion types first, background last
        best, label = prob[:, :-1].max(-1)
        label_abl = prob_abl[:, :-1].argmax(-1)
        changed = label != label_abl
        confident = best >= self.score_thr
        eps = 1e-12
        return dict(
            rois=int(feats.shape[0]),
            label_changed=float(changed.float().mean()),
            confident_rois=int(confident.sum()),
            confident_label_changed=float(changed[confident].float().mean())
            if confident.any() else float('nan'),
            mean_abs_prob_change=float(
                (prob - prob_abl).abs().max(-1).values.mean()),
            feature_norm_ratio=float(
                (f_e.norm(dim=1) / (f.norm(dim=1) + eps)).mean()),
            weight_norm_ratio=float(weight[:, self.split:].norm() /
                                    (weight[:, :self.split].norm() + eps)))
