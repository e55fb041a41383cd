# Copyright (c) mmlesion contributors. All rights reserved.
"""Can the mask-box score calibration act? An after-run check of the
lesion probability map of a trained Improved RetinaNet.

The calibration of Zlocha et al. (2019), ``p * (1 + IoU(box around the
predicted mask, box))``, only changes a detection's score where the lesion
map has a connected component above ``mask_thr``
(:func:`~mmlesion.methods.retinanet_lesion.models.calibrate_with_mask`). This probe reports,
over the images of a split, how often the map gets there:

* ``max_prob``: the largest probability over all images,
* ``images_above_thr``: fraction of images with a pixel >= ``mask_thr``,
* ``boxes_above_thr``: fraction of ground-truth boxes containing one,
* ``mean_in`` / ``mean_out``: mean probability inside / outside the boxes.
"""
from typing import Dict, List, Sequence, Tuple

from torch import Tensor

from projects.retinanet_lesion.gate_probe import boxes_to_mask


class LesionMapProbe:
    """Accumulate lesion-map statistics over batches.

    Args:
        mask_thr (float): the calibration's threshold, in (0, 1).
    """

    def __init__(self, mask_thr: float = 0.5) -> None:
        if not 0. < mask_thr < 1.:
            raise ValueError(f'mask_thr must lie in (0, 1), got {mask_thr}')
        self.mask_thr = float(mask_thr)
        self.max_prob = 0.
        self.images = self.images_above = self.boxes = self.boxes_above = 0
        self.sums: Dict[str, List[float]] = dict(
            inside=[0., 0], outside=[0., 0])

    def update(self, probs: Sequence[Tensor],
               batch_gt_bboxes: Sequence[Tensor]) -> None:
        """Add one batch.

        Args:
            probs (Sequence[Tensor]): per image the (h, w) lesion
                probability map in network-input coordinates (the seg
                head's ``predict``).
            batch_gt_bboxes (Sequence[Tensor]): per image (G, 4) boxes in
                the same coordinates.
        """
        for prob, boxes in zip(probs, batch_gt_bboxes):
            p = prob.detach().float().cpu()
            size: Tuple[int, int] = tuple(p.shape)
            above = p >= self.mask_thr
            self.max_prob = max(self.max_prob, float(p.max()))
            self.images += 1
            self.images_above += int(bool(above.any()))
            for box in boxes:
                self.boxes += 1
                inside = boxes_to_mask(box[None], size, size)
                self.boxes_above += int(bool((above & inside).any()))
            mask = boxes_to_mask(boxes, size, size)
            for name, sel in (('inside', mask), ('outside', ~mask)):
                self.sums[name][0] += float(p[sel].sum())
                self.sums[name][1] += int(sel.sum())

    def summary(self) -> Dict[str, float]:
        """The statistics of the module docstring (NaN where undefined)."""

        def mean(name: str) -> float:
            total, count = self.sums[name]
            return total / count if count else float('nan')

        return dict(
            mask_thr=self.mask_thr,
            max_prob=self.max_prob if self.images else float('nan'),
            images_above_thr=(self.images_above / self.images
                              if self.images else float('nan')),
            boxes_above_thr=(self.boxes_above / self.boxes
                             if self.boxes else float('nan')),
            mean_in=mean('inside'),
            mean_out=mean('outside'),
            images=self.images,
            boxes=self.boxes)
