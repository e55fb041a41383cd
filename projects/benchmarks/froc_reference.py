# Copyright (c) mmlesion contributors. All rights reserved.
"""A straightforward FROC reference and random cases, for tests and benchmarks.

:func:`reference_froc` follows docs/protocols.md §1 line by line, as the MULAN
evaluation code does (a Python loop over the globally sorted detections,
``IOU`` against the ground truths of the detection's image, a per-image
``hits`` list, ``scipy.interpolate.interp1d`` on the raw curve and the
hold-last rule). It is deliberately slow and plain: the fast implementation
in :mod:`mmlesion.evaluation.functional.froc` must give identical output.

It makes the same documented decisions as the fast code where the original
is silent: equal scores in stable descending order, a rate below the first
point gives 0, no detections gives 0 and no lesions gives NaN.
"""
from typing import List, Sequence, Tuple

import numpy as np
from scipy.interpolate import interp1d


def reference_overlaps(box: np.ndarray, gts: np.ndarray,
                       overlap: str = 'iou') -> np.ndarray:
    """Overlaps of one box with ``gts`` (legacy +1 pixel convention).

    Args:
        box (np.ndarray): ``(4,)`` detection ``x1, y1, x2, y2``.
        gts (np.ndarray): ``(M, 4)`` ground truths.
        overlap (str): ``'iou'`` or ``'iobb'`` (over the detection's area).

    Returns:
        np.ndarray: ``(M,)`` overlaps.
    """
    ixmin = np.maximum(gts[:, 0], box[0])
    iymin = np.maximum(gts[:, 1], box[1])
    ixmax = np.minimum(gts[:, 2], box[2])
    iymax = np.minimum(gts[:, 3], box[3])
    iw = np.maximum(ixmax - ixmin + 1., 0.)
    ih = np.maximum(iymax - iymin + 1., 0.)
    inters = iw * ih
    box_area = (box[2] - box[0] + 1.) * (box[3] - box[1] + 1.)
    if overlap == 'iobb':
        return inters / box_area
    uni = (box_area + (gts[:, 2] - gts[:, 0] + 1.) *
           (gts[:, 3] - gts[:, 1] + 1.) - inters)
    return inters / uni


def reference_froc(dets: Sequence[np.ndarray],
                   gts: Sequence[np.ndarray],
                   iou_thr: float = 0.5,
                   overlap: str = 'iou') -> Tuple[np.ndarray, np.ndarray]:
    """Raw FROC curve, the plain way.

    Args:
        dets (Sequence[np.ndarray]): per image ``(N_i, 5)`` detections.
        gts (Sequence[np.ndarray]): per image ``(M_i, 4)`` ground truths.
        iou_thr (float): overlap threshold.
        overlap (str): ``'iou'`` or ``'iobb'``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(fps_per_image, sensitivity)``.
    """
    num_images = len(dets)
    boxes_all = [np.asarray(d, dtype=np.float64).reshape(-1, 5) for d in dets]
    gts_all = [np.asarray(g, dtype=np.float64).reshape(-1, 4) for g in gts]
    img_idxs = np.concatenate(
        [np.full(len(b), i, dtype=int) for i, b in enumerate(boxes_all)])
    boxes_cat = np.concatenate(boxes_all)
    scores = boxes_cat[:, 4]
    order = np.argsort(-scores, kind='stable')  # ties: input order
    boxes_cat = boxes_cat[order, :4]
    img_idxs = img_idxs[order]

    hits = [np.zeros(len(g), dtype=bool) for g in gts_all]
    num_hits = 0
    num_miss = 0
    tps, fps = [], []
    for i in range(len(boxes_cat)):
        overlaps = reference_overlaps(boxes_cat[i], gts_all[img_idxs[i]],
                                      overlap)
        if len(overlaps) == 0 or overlaps.max() < iou_thr:
            num_miss += 1
        else:
            for j in range(len(overlaps)):
                if overlaps[j] >= iou_thr and not hits[img_idxs[i]][j]:
                    hits[img_idxs[i]][j] = True
                    num_hits += 1
        tps.append(num_hits)
        fps.append(num_miss)

    num_gts = sum(len(g) for g in gts_all)
    with np.errstate(invalid='ignore', divide='ignore'):
        sens = np.array(tps, dtype=float) / num_gts
    fp_per_img = np.array(fps, dtype=float) / num_images
    return fp_per_img, sens


def reference_sens_at_fp(fp_per_img: np.ndarray, sens: np.ndarray,
                         fp_rates: Sequence[float], num_gts: int) -> List:
    """Sensitivity at FP rates: ``interp1d`` inside, hold-last beyond.

    Args:
        fp_per_img (np.ndarray): raw curve x values.
        sens (np.ndarray): raw curve y values.
        fp_rates (Sequence[float]): the rates.
        num_gts (int): number of lesions (0 gives NaN).

    Returns:
        list[float]: sensitivity per rate.
    """
    if num_gts == 0:
        return [float('nan')] * len(fp_rates)
    if len(fp_per_img) == 0:
        return [0.0] * len(fp_rates)
    res = []
    for rate in fp_rates:
        if rate > fp_per_img[-1]:
            res.append(float(sens[-1]))  # hold-last (MULAN)
        elif rate < fp_per_img[0]:
            res.append(0.0)  # documented decision (the original raises)
        elif len(fp_per_img) == 1:
            res.append(float(sens[0]))  # interp1d needs two points
        else:
            res.append(float(interp1d(fp_per_img, sens)(rate)))
    return res


def random_froc_case(num_images: int = 100,
                     dets_per_image: int = 20,
                     seed: int = 0,
                     max_gts: int = 3,
                     score_decimals: int = 3,
                     ) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Random detections and lesions that exercise every rule of the walk.

    Each image gets 0..``max_gts`` lesions (a few images none), detections
    that are jittered copies of lesions (IoU around the threshold), exact
    duplicates and random boxes; some images have two nearly coincident
    lesions (one detection hits both). Half the
    coordinates are integers so that overlaps of exactly 0.5 occur, and
    scores are rounded to ``score_decimals`` so that equal scores are common.

    Args:
        num_images (int): number of images.
        dets_per_image (int): detections per image.
        seed (int): random seed.
        max_gts (int): most lesions per image.
        score_decimals (int): decimals kept in the scores.

    Returns:
        tuple[list[np.ndarray], list[np.ndarray]]: ``(dets, gts)`` with
        ``(dets_per_image, 5)`` and ``(M_i, 4)`` float64 arrays per image.
    """
    rng = np.random.default_rng(seed)
    size = 512.0
    dets, gts = [], []
    for _ in range(num_images):
        num_gt = int(rng.integers(0, max_gts + 1)) if rng.random() < 0.1 \
            else int(rng.integers(1, max_gts + 1))
        wh = rng.uniform(4, 60, size=(num_gt, 2))
        xy = rng.uniform(0, size - 64, size=(num_gt, 2))
        gt = np.concatenate([xy, xy + wh], axis=1)
        if rng.random() < 0.5:
            gt = np.round(gt)
        if num_gt >= 2 and rng.random() < 0.2:
            # a second lesion almost on top of the first: one box hits both
            gt[1] = gt[0] + rng.normal(0, 1.0, size=4)
            gt[1, 2:] = np.maximum(gt[1, 2:], gt[1, :2])
        kind = rng.random(dets_per_image)
        xy0 = rng.uniform(0, size - 64, size=(dets_per_image, 2))
        boxes = np.concatenate(
            [xy0, xy0 + rng.uniform(4, 60, size=(dets_per_image, 2))], axis=1)
        if num_gt:
            # jittered copies of lesions: overlaps around the threshold
            near = kind < 0.35
            src = gt[rng.integers(num_gt, size=int(near.sum()))]
            wh = np.tile(src[:, 2:] - src[:, :2] + 1, 2)
            boxes[near] = src + rng.normal(0, 0.18, size=src.shape) * wh
        rounded = rng.random(dets_per_image) < 0.5
        boxes[rounded] = np.round(boxes[rounded])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
        # exact duplicates of an earlier detection
        for k in np.flatnonzero((kind >= 0.35) & (kind < 0.45)):
            if k > 0:
                boxes[k] = boxes[rng.integers(k)]
        det = np.empty((dets_per_image, 5))
        det[:, :4] = boxes
        det[:, 4] = np.round(rng.random(dets_per_image), score_decimals)
        dets.append(det)
        gts.append(gt)
    return dets, gts
