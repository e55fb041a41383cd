# Copyright (c) mmlesion contributors. All rights reserved.
"""MaxIoUAssigner that keeps uncertain lesions ignored on slices without a
labelled lesion (LENS, Yan et al., TMI 2020, Sec. V-C and VI-B)."""
from typing import Optional

from mmdet.models.task_modules.assigners import AssignResult, MaxIoUAssigner
from mmdet.registry import TASK_UTILS
from mmengine.structures import InstanceData


@TASK_UTILS.register_module()
class IgnoreAwareMaxIoUAssigner(MaxIoUAssigner):
    """mmdet's ``MaxIoUAssigner`` whose ``ignore_iof_thr`` also applies when
    the image has no ground-truth box.

    mmdet's assigner makes every prior background when there are zero GT
    boxes, so the uncertain lesions of LENS's negative and mined slices would
    become hard negatives. Here a prior whose IoF with an ignored box
    exceeds ``ignore_iof_thr`` is ignored in that case too.

    Args:
        **kwargs: as :class:`mmdet.models.task_modules.MaxIoUAssigner`;
            ``ignore_iof_thr`` must be > 0 for ignoring to happen (as
            mmdet).
    """

    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               **kwargs) -> AssignResult:
        """Assign as mmdet, then re-ignore priors on ignored boxes when the
        image has no GT box.

        Args:
            pred_instances (InstanceData): ``priors`` (n, 4).
            gt_instances (InstanceData): ``bboxes`` (k, 4), ``labels`` (k,).
            gt_instances_ignore (InstanceData, optional): ``bboxes`` of the
                uncertain lesions.

        Returns:
            AssignResult: ``gt_inds`` -1 (ignored), 0 (negative) or the
            1-based index of the assigned GT.
        """
        result = super().assign(pred_instances, gt_instances,
                                gt_instances_ignore, **kwargs)
        if (len(gt_instances) > 0 or gt_instances_ignore is None
                or self.ignore_iof_thr <= 0):
            return result
        ignore_bboxes = gt_instances_ignore.bboxes
        priors = pred_instances.priors
        if ignore_bboxes.numel() == 0 or priors.numel() == 0:
            return result
        ignore_bboxes = ignore_bboxes.to(priors.device)
        if self.ignore_wrt_candidates:
            iof = self.iou_calculator(priors, ignore_bboxes, mode='iof')
            ignored = iof.max(dim=1).values > self.ignore_iof_thr
        else:
            iof = self.iou_calculator(ignore_bboxes, priors, mode='iof')
            ignored = iof.max(dim=0).values > self.ignore_iof_thr
        result.gt_inds[ignored.to(result.gt_inds.device)] = -1
        return result
