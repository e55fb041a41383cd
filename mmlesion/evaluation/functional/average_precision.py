# Copyright (c) mmlesion contributors. All rights reserved.
"""Average precision at one IoU threshold, as keras-retinanet computes it.

Improved RetinaNet (Zlocha et al. 2019, Sec. 2.3) schedules its learning
rate and early stop on the mAP of keras-retinanet's ``Evaluate`` callback:
the PASCAL VOC all-point average precision at IoU 0.5 with the legacy ``+
1`` pixel overlaps. mmdet's :func:`mmdet.evaluation.functional.tpfp_default`
(greedy per-image matching, ignored ground truth neither TP nor FP) and
:func:`~mmdet.evaluation.functional.average_precision` (``mode='area'``)
are exactly these pieces; this module strings them together without
``eval_map``'s process pool and summary table.
"""
from typing import Optional, Sequence

import numpy as np
from mmdet.evaluation.functional import average_precision
from mmdet.evaluation.functional.mean_ap import tpfp_default


def ap_at_iou(dets: Sequence[np.ndarray],
              gts: Sequence[np.ndarray],
              gts_ignore: Optional[Sequence[np.ndarray]] = None,
              iou_thr: float = 0.5,
              use_legacy_coordinate: bool = True) -> float:
    """Single-class VOC average precision (all-point area) at ``iou_thr``.

    Args:
        dets (Sequence[np.ndarray]): per image ``(n, 5)`` boxes
            ``x1, y1, x2, y2, score``.
        gts (Sequence[np.ndarray]): per image ``(m, 4)`` ground truth.
        gts_ignore (Sequence[np.ndarray], optional): per image ``(k, 4)``
            ignored ground truth (a detection matching one is neither a TP
            nor an FP).
        iou_thr (float): IoU for a match. Defaults to 0.5 (keras-retinanet).
        use_legacy_coordinate (bool): ``+ 1`` pixel widths as
            keras-retinanet's ``compute_overlap`` and the DeepLesion FROC.
            Defaults to True.

    Returns:
        float: the AP in [0, 1]; 0 when there is no ground truth.
    """
    if len(dets) != len(gts):
        raise ValueError(f'ap_at_iou: {len(dets)} images of detections but '
                         f'{len(gts)} of ground truth')
    if gts_ignore is None:
        gts_ignore = [np.zeros((0, 4))] * len(gts)
    tps, fps, scores = [], [], []
    num_gts = 0
    for det, gt, ign in zip(dets, gts, gts_ignore):
        det = np.asarray(det, dtype=np.float32).reshape(-1, 5)
        gt = np.asarray(gt, dtype=np.float32).reshape(-1, 4)
        ign = np.asarray(ign, dtype=np.float32).reshape(-1, 4)
        num_gts += len(gt)
        if not len(det):
            continue
        tp, fp = tpfp_default(
            det, gt, ign, iou_thr, use_legacy_coordinate=use_legacy_coordinate)
        tps.append(tp[0])
        fps.append(fp[0])
        scores.append(det[:, 4])
    if num_gts == 0 or not scores:
        return 0.0
    order = np.argsort(-np.concatenate(scores), kind='stable')
    tp = np.cumsum(np.concatenate(tps)[order])
    fp = np.cumsum(np.concatenate(fps)[order])
    eps = np.finfo(np.float32).eps
    recalls = tp / num_gts
    precisions = tp / np.maximum(tp + fp, eps)
    return float(average_precision(recalls, precisions, mode='area'))
