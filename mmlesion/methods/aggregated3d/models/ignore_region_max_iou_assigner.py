# Copyright (c) mmlesion contributors. All rights reserved.
"""mmdet's ``MaxIoUAssigner`` with ignore regions that are "don't care",
also in crops without a lesion (3D Aggregated Faster R-CNN, LUNA16's
excluded findings)."""
from typing import Optional

from mmengine.structures import InstanceData

from mmdet.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from mmdet.registry import TASK_UTILS


@TASK_UTILS.register_module()
class IgnoreRegionMaxIoUAssigner(MaxIoUAssigner):
    """``MaxIoUAssigner`` whose ignored boxes are neither positive nor
    negative.

    LUNA16's evaluation ignores detections on its excluded findings, so
    training must not call them background. mmdet's ``ignore_iof_thr`` is
    skipped in crops without a lesion and turns positives into ignored
    priors; here, after mmdet's assignment, every *negative* prior whose IoU
    with an ignored box reaches ``ignore_iou_thr`` is ignored.

    Args:
        ignore_iou_thr (float, optional): IoU with an ignored box from which
            a negative prior is ignored. Defaults to ``neg_iou_thr`` (the
            upper bound when that is a range).
        **kwargs: arguments of ``MaxIoUAssigner`` (its ``ignore_iof_thr``
            must stay -1: this class replaces it).
    """

    def __init__(self, *args, ignore_iou_thr: Optional[float] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.ignore_iof_thr > 0:
            raise ValueError('IgnoreRegionMaxIoUAssigner replaces '
                             'ignore_iof_thr; leave it at -1 and set '
                             'ignore_iou_thr')
        neg = self.neg_iou_thr
        default = max(neg) if isinstance(neg, (tuple, list)) else neg
        self.ignore_iou_thr = float(
            default if ignore_iou_thr is None else ignore_iou_thr)

    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               **kwargs) -> AssignResult:
        """Assign priors to ground truth, then ignore negatives on ignored
        boxes.

        Args:
            pred_instances (InstanceData): ``priors`` (n, 6) (or 4 in 2D).
            gt_instances (InstanceData): ``bboxes`` and ``labels`` (may be
                empty).
            gt_instances_ignore (InstanceData, optional): ignored
                ``bboxes``.

        Returns:
            AssignResult: ``gt_inds`` 0 negative, -1 ignored, > 0 positive.
        """
        result = super().assign(pred_instances, gt_instances, None, **kwargs)
        if gt_instances_ignore is None or len(gt_instances_ignore) == 0:
            return result
        priors = pred_instances.priors
        if priors.numel() == 0:
            return result
        overlaps = self.iou_calculator(
            gt_instances_ignore.bboxes.to(priors), priors)
        near = overlaps.max(dim=0).values >= self.ignore_iou_thr
        flip = near & (result.gt_inds == 0)
        result.gt_inds[flip] = -1
        if result.labels is not None:
            result.labels[flip] = -1
        return result
