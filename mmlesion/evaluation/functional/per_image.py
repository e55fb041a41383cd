# Copyright (c) mmlesion contributors. All rights reserved.
"""Per-image scores for ranking test images (good / bad pictures).

mmdet's ``tools/analysis_tools/analyze_results.py`` ranks the test images by
a per-image COCO-style mAP: :func:`image_coco_style_map` gives that number
(mmdet's ``eval_map`` arithmetic through :func:`~.average_precision.
ap_at_iou`; ignored lesions neither TP nor FP). :func:`image_froc_at_fp`
gives the DeepLesion protocol's view (docs/protocols.md §1): the hit walk
runs on the **whole** test set, as ``FROCMetric`` does, and each image gets
the lesions its detections hit first and the false positives it kept within
the longest prefix of the global score order whose FPs per image stay
``<= fp_rate``.
"""
from typing import NamedTuple, Sequence

import numpy as np

from .average_precision import ap_at_iou
from .froc import match_detections

#: IoU thresholds of the COCO-style mAP (0.50, 0.55, ..., 0.95).
COCO_IOU_THRS = tuple(float(t) for t in np.linspace(.5, .95, 10))


class ImageFROC(NamedTuple):
    """Per-image outcome at the test set's FROC operating point.

    Attributes:
        hits (np.ndarray): ``(I,)`` lesions of each image hit by a kept
            detection.
        num_gts (np.ndarray): ``(I,)`` lesions of each image.
        fps (np.ndarray): ``(I,)`` kept false positives of each image.
        score_thr (float): score of the last kept detection (``inf`` when
            none is kept).
        fp_rate (float): the operating point, FPs per image.
    """
    hits: np.ndarray
    num_gts: np.ndarray
    fps: np.ndarray
    score_thr: float
    fp_rate: float

    def sensitivity(self) -> np.ndarray:
        """Hits / lesions per image; NaN for an image without lesions."""
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(self.num_gts > 0,
                            self.hits / np.maximum(self.num_gts, 1), np.nan)


def image_froc_at_fp(dets: Sequence[np.ndarray],
                     gts: Sequence[np.ndarray],
                     fp_rate: float = 4.,
                     iou_thr: float = 0.5,
                     overlap: str = 'iou') -> ImageFROC:
    """Per-image hits and false positives at ``fp_rate`` FPs per image.

    Args:
        dets (Sequence[np.ndarray]): per image ``(N_i, 5)`` detections
            ``x1, y1, x2, y2, score`` (original pixels).
        gts (Sequence[np.ndarray]): per image ``(M_i, 4)`` lesions (ignored
            lesions left out by the caller).
        fp_rate (float): the operating point. Defaults to 4 (the headline
            ``sens@4``).
        iou_thr (float): overlap for a hit. Defaults to 0.5.
        overlap (str): ``'iou'`` or ``'iobb'``. Defaults to ``'iou'``.

    Returns:
        ImageFROC: hits, lesions and false positives of each image.
    """
    if not np.isfinite(fp_rate) or fp_rate < 0:
        raise ValueError(f'fp_rate must be finite and >= 0, got {fp_rate}')
    match = match_detections(dets, gts, iou_thr, overlap)
    num_images = match.num_images
    cum_fps = np.cumsum(match.is_fp[match.order]) / num_images
    num_kept = int(np.searchsorted(cum_fps, fp_rate, side='right'))
    kept = np.zeros(len(match.scores), dtype=bool)
    kept[match.order[:num_kept]] = True
    num_gts = np.array([len(np.reshape(g, (-1, 4))) for g in gts],
                       dtype=np.int64)
    gt_img = np.repeat(np.arange(num_images), num_gts)
    hit = match.gt_first_hit >= 0
    hit[hit] = kept[match.gt_first_hit[hit]]
    hits = np.bincount(gt_img[hit], minlength=num_images)
    fps = np.bincount(
        match.img_inds[kept & match.is_fp], minlength=num_images)
    score_thr = (float(match.scores[match.order[num_kept - 1]])
                 if num_kept else float('inf'))
    return ImageFROC(hits, num_gts, fps, score_thr, float(fp_rate))


def image_coco_style_map(det: np.ndarray,
                         gt: np.ndarray,
                         gt_ignore: np.ndarray = None) -> float:
    """COCO-style mAP of one image (mean AP at IoU 0.50:0.05:0.95).

    The ``bbox_map_eval`` of mmdet's ``analyze_results.py`` for one class:
    VOC all-point AP, no legacy ``+ 1`` pixel.

    Args:
        det (np.ndarray): ``(N, 5)`` detections with scores.
        gt (np.ndarray): ``(M, 4)`` lesions.
        gt_ignore (np.ndarray, optional): ``(K, 4)`` ignored lesions.

    Returns:
        float: the mAP in [0, 1] (0 for an image without lesions).
    """
    ignore = [np.zeros((0, 4)) if gt_ignore is None else gt_ignore]
    return float(
        np.mean([
            ap_at_iou([det], [gt], ignore, thr, use_legacy_coordinate=False)
            for thr in COCO_IOU_THRS
        ]))
