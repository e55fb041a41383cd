# Copyright (c) mmlesion contributors. All rights reserved.
"""Does the TruncatedRPN mask do what ElixirNet says? An after-run check of
a trained :class:`~mmlesion.methods.elixirnet.models.TruncatedRPNHead`.

ElixirNet (Jiang et al., AAAI 2020, "TruncatedRPN") thresholds a predicted
location map ``p`` at its mean so that "this mechanism can filter out half
of the regions" while the anchors of lesions survive. This probe measures,
over the images of a split, both halves of that claim:

* ``keep_ratio``: fraction of feature locations kept (the paper: about
  half),
* ``lesion_loc_kept``: fraction of *lesion locations* kept, a lesion
  location being one with at least one anchor of IoU >= ``iou_thr`` with a
  ground-truth box (these must survive, ideally all),
* ``background_removed``: fraction of the other locations truncated,
* ``gt_covered_all`` / ``gt_covered_kept``: fraction of ground-truth boxes
  with an anchor of IoU >= ``iou_thr`` among all anchors / among the kept
  anchors only (truncation must not lose lesions),
* ``mean_p_lesion`` / ``mean_p_background``: the map at both kinds of
  locations.
"""
from typing import Dict, List, Sequence

import torch
from mmdet.structures.bbox import bbox_overlaps
from torch import Tensor


class TRPNTruncationProbe:
    """Accumulate truncation statistics of a TruncatedRPN over batches.

    Args:
        head (TruncatedRPNHead): the trained head (its ``forward`` returns
            objectness, deltas and location logits per level).
        iou_thr (float): anchor-to-box IoU making a location a lesion
            location and a box covered; the RPN assigner's positive
            threshold is the natural choice.
    """

    def __init__(self, head: torch.nn.Module, iou_thr: float = 0.7) -> None:
        if not hasattr(head, 'location_keep_mask'):
            raise TypeError(f'{type(head).__name__} is not a TruncatedRPNHead '
                            '(no location_keep_mask)')
        if not 0. < iou_thr <= 1.:
            raise ValueError(f'iou_thr must lie in (0, 1], got {iou_thr}')
        self.head = head
        self.iou_thr = float(iou_thr)
        self.counts = dict(locations=0, kept=0, lesion_locations=0,
                           lesion_kept=0, gts=0, gts_covered_all=0,
                           gts_covered_kept=0)
        self.p_sums = dict(lesion=0., background=0.)

    @torch.no_grad()
    def update(self, feats: Sequence[Tensor],
               batch_gt_bboxes: Sequence[Tensor]) -> None:
        """Add one batch.

        Args:
            feats (Sequence[Tensor]): the RPN input features per level,
                (N, C, H, W) each (the detector's ``extract_feat``).
            batch_gt_bboxes (Sequence[Tensor]): per image (G, 4) boxes in
                the coordinates of the network input (x1, y1, x2, y2).
        """
        loc_preds: List[Tensor] = self.head(list(feats))[2]
        sizes = [lp.shape[-2:] for lp in loc_preds]
        anchors = self.head.prior_generator.grid_priors(
            sizes, device=loc_preds[0].device)
        num_base = self.head.num_base_priors
        for i, gt in enumerate(batch_gt_bboxes):
            keep, prob, lesion = [], [], []
            gt = gt.to(anchors[0].dtype)
            best_all = gt.new_zeros(len(gt))
            best_kept = gt.new_zeros(len(gt))
            for level, lp in enumerate(loc_preds):
                k = self.head.location_keep_mask(lp[i]).reshape(-1)
                keep.append(k)
                prob.append(lp[i].sigmoid().reshape(-1))
                if len(gt):
                    ious = bbox_overlaps(gt, anchors[level])  # (G, HWA)
                    best_all = torch.maximum(best_all, ious.max(1).values)
                    kept_ious = ious * k.repeat_interleave(num_base)
                    best_kept = torch.maximum(best_kept,
                                              kept_ious.max(1).values)
                    lesion.append((ious >= self.iou_thr).any(0).reshape(
                        -1, num_base).any(1))
                else:
                    lesion.append(torch.zeros_like(k))
            keep, prob, lesion = (torch.cat(keep), torch.cat(prob),
                                  torch.cat(lesion))
            c = self.counts
            c['locations'] += keep.numel()
            c['kept'] += int(keep.sum())
            c['lesion_locations'] += int(lesion.sum())
            c['lesion_kept'] += int((lesion & keep).sum())
            c['gts'] += len(gt)
            c['gts_covered_all'] += int((best_all >= self.iou_thr).sum())
            c['gts_covered_kept'] += int((best_kept >= self.iou_thr).sum())
            self.p_sums['lesion'] += float(prob[lesion].sum())
            self.p_sums['background'] += float(prob[~lesion].sum())

    def summary(self) -> Dict[str, float]:
        """The statistics of the module docstring (NaN where undefined),
        plus the raw counts."""
        c = self.counts

        def ratio(a: float, b: int) -> float:
            return a / b if b else float('nan')

        background = c['locations'] - c['lesion_locations']
        return dict(
            keep_ratio=ratio(c['kept'], c['locations']),
            lesion_loc_kept=ratio(c['lesion_kept'], c['lesion_locations']),
            background_removed=ratio(
                background - (c['kept'] - c['lesion_kept']), background),
            gt_covered_all=ratio(c['gts_covered_all'], c['gts']),
            gt_covered_kept=ratio(c['gts_covered_kept'], c['gts']),
            mean_p_lesion=ratio(self.p_sums['lesion'],
                                c['lesion_locations']),
            mean_p_background=ratio(self.p_sums['background'], background),
            iou_thr=self.iou_thr,
            **c)
