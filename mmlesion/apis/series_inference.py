# Copyright (c) mmlesion contributors. All rights reserved.
"""Slice-by-slice inference over whole DeepLesion-layout series and the
2D -> 3D stacking of the predictions (boxes of consecutive slices whose
IoU exceeds a threshold joined into one finding)."""
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.dataset import BaseDataset

from mmlesion.datasets.deeplesion.series_slices import (  # noqa: F401
    iter_series_slices)
from mmlesion.evaluation.functional.box_stacking import (StackSettings,
                                                         stack_slice_boxes)
from mmlesion.structures.finding_3d import Finding3D


@torch.no_grad()
def predict_series_3d(model: torch.nn.Module,
                      dataset: BaseDataset,
                      iou_thr: float = 0.5,
                      max_offset: Optional[int] = None,
                      score_thr: float = 0.,
                      show_progress: bool = True
                      ) -> Dict[str, List[Finding3D]]:
    """Predict every stored slice (``model.test_step``: what the model's
    ``test_cfg`` makes of it) and stack the 2D boxes into 3D findings with
    :func:`stack_slice_boxes`.

    Returns:
        dict: series folder name -> its
        :class:`~mmlesion.structures.finding_3d.Finding3D` (z in slice
        indices).
    """
    model.eval()
    per_series: Dict[str, Tuple[list, list, list]] = {}
    for series_dir, z, _, _, packed in iter_series_slices(
            dataset, max_offset, show_progress):
        (res, ) = model.test_step(
            dict(inputs=[packed['inputs']],
                 data_samples=[packed['data_samples']]))
        pred = res.pred_instances
        zs, bs, ss = per_series.setdefault(
            osp.basename(osp.normpath(series_dir)), ([], [], []))
        zs.append(z)
        bs.append(pred.bboxes.cpu().numpy().reshape(-1, 4))
        ss.append(pred.scores.cpu().numpy().reshape(-1))
    return {
        name: stack_slice_boxes(zs, bs, ss,
                                StackSettings(iou_thr, score_thr=score_thr))
        for name, (zs, bs, ss) in per_series.items()
    }
