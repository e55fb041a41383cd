# Copyright (c) mmlesion contributors. All rights reserved.
"""FROC of the DeepLesion 2D "official" protocol (docs/protocols.md §1).

The evaluation code of the 3DCE / MULAN lineage (Yan et al., MICCAI 2018
and 2019), whose numbers the DeepLesion papers report, in vectorised numpy:
its matching and curve reading are those of docs/protocols.md §1.

Where the reference code is silent or undefined (shared with the plain
reference ``projects/benchmarks/froc_reference.py``):

* **Equal scores** keep their input order (stable sort; the reference's
  ``np.argsort(scores)[::-1]`` is unstable). Only curve points inside a run
  of equal scores depend on it, not the counts at its end.
* **Equal FP values**: at such a rate ``np.interp`` returns the sensitivity of
  the *last* point of the run, i.e. the sensitivity just before the first
  detection whose FPs per image exceed ``r`` (3DCE's ``'extrapolate'`` path,
  which returns the first point, is not reproduced).
* **A rate below the first point** (the top detection is an FP and
  ``r < 1 / num_images``): the curve's first value, 0 (the reference raises).
* **No detections**: sensitivity 0 (the reference crashes). **No ground
  truth** (e.g. an empty breakdown subset): NaN.
* **Malformed input** (wrong shape, non-finite values, ``x2 < x1`` or
  ``y2 < y1``, NaN scores) raises ``ValueError`` naming the image and row.

A lesion is hit by the first detection, in global score order, whose overlap
with it is ``>= iou_thr``, and FP status does not depend on the order, so the
walk is one vectorised pass over all (detection, same-image ground truth)
pairs, a ``np.minimum.at`` over the global ranks and two cumulative sums.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .overlaps import (BOX_COLUMNS, OVERLAP_MODES, _pair_overlaps,
                       legacy_box_sizes)

#: Default FP-per-image rates of the DeepLesion protocol.
DEFAULT_FP_RATES = (0.5, 1, 2, 4, 8, 16)
#: Rates averaged for the usual "mean sensitivity" headline.
DEFAULT_MEAN_RATES = (0.5, 1, 2, 4)

#: DeepLesion ``Coarse_lesion_type`` codes 1..8 (``-1`` = unknown).
LESION_TYPE_NAMES = dict(
    enumerate(('bone', 'abdomen', 'mediastinum', 'liver', 'lung', 'kidney',
               'soft tissue', 'pelvis'),
              start=1))

#: Long-diameter bins of the DeepLesion papers, as ``(key, label)``:
#: ``d < 10``, ``10 <= d <= 30`` and ``d > 30`` (mm).
DIAMETER_BINS = (('lt10mm', '<10 mm'), ('10to30mm', '10-30 mm'),
                 ('gt30mm', '>30 mm'))

#: Outcome codes of :meth:`FROCMatch.outcomes`.
TRUE_POSITIVE = 1
DUPLICATE = 0
FALSE_POSITIVE = -1

# Upper bound of (detection, ground truth) pairs evaluated at once.
_PAIR_CHUNK = 1 << 22


class FROCCurve(NamedTuple):
    """A raw FROC curve: one point per detection in global score order.

    Attributes:
        fps_per_image (np.ndarray): ``(D,)`` false positives so far divided by
            the number of images (non-decreasing).
        sensitivity (np.ndarray): ``(D,)`` lesions hit so far divided by the
            number of lesions (NaN everywhere when there are no lesions).
        num_images (int): number of images (the FP denominator).
        num_gts (int): number of ground-truth lesions.
    """
    fps_per_image: np.ndarray
    sensitivity: np.ndarray
    num_images: int
    num_gts: int


class FROCMatch(NamedTuple):
    """Per-detection result of the protocol's hit walk.

    Arrays are indexed like the concatenation of the per-image detection
    arrays (image 0 first, rows in input order).

    Attributes:
        img_inds (np.ndarray): ``(D,)`` image index of each detection.
        scores (np.ndarray): ``(D,)`` float64 scores.
        order (np.ndarray): ``(D,)`` the global processing order (indices
            into the concatenation): stable sort by descending score.
        new_hits (np.ndarray): ``(D,)`` number of lesions this detection hit
            first (> 0 means a true positive).
        is_fp (np.ndarray): ``(D,)`` True for false positives.
        num_images (int): number of images.
        num_gts (int): number of ground-truth lesions.
        gt_first_hit (np.ndarray): ``(G,)`` index (into the concatenation) of
            the detection that hit each lesion first, ``-1`` if never hit;
            lesions are the concatenation of the per-image ground truths.
    """
    img_inds: np.ndarray
    scores: np.ndarray
    order: np.ndarray
    new_hits: np.ndarray
    is_fp: np.ndarray
    num_images: int
    num_gts: int
    gt_first_hit: np.ndarray

    @classmethod
    def from_walk(cls, img_inds: np.ndarray, scores: np.ndarray,
                  order: np.ndarray, num_images: int, first_rank: np.ndarray,
                  is_fp: Optional[np.ndarray] = None) -> 'FROCMatch':
        """The result of a walk from each lesion's first hit.

        Args:
            img_inds (np.ndarray): ``(D,)`` image of each detection.
            scores (np.ndarray): ``(D,)`` scores.
            order (np.ndarray): ``(D,)`` the walk's order.
            num_images (int): images walked.
            first_rank (np.ndarray): ``(G,)`` per lesion the rank in the
                walk of the first detection hitting it, ``D`` if none does.
            is_fp (np.ndarray, optional): ``(D,)`` the false positives
                (None: the detections that hit no lesion first, duplicates
                included).
        """
        num_dets = len(scores)
        hit = first_rank < num_dets
        gt_first_hit = np.full(len(first_rank), -1, dtype=np.int64)
        gt_first_hit[hit] = order[first_rank[hit]]
        new_hits = np.bincount(gt_first_hit[hit], minlength=num_dets)
        return cls(img_inds, scores, order, new_hits,
                   new_hits == 0 if is_fp is None else is_fp, num_images,
                   len(first_rank), gt_first_hit)

    def curve(self) -> FROCCurve:
        """Return the raw FROC curve (see :func:`froc_curve`)."""
        tps = np.cumsum(self.new_hits[self.order])
        fps = np.cumsum(self.is_fp[self.order])
        if self.num_gts > 0:
            sens = tps.astype(np.float64) / self.num_gts
        else:
            sens = np.full(tps.shape, np.nan)
        return FROCCurve(
            fps_per_image=fps.astype(np.float64) / self.num_images,
            sensitivity=sens,
            num_images=self.num_images,
            num_gts=self.num_gts)

    def outcomes(self) -> List[np.ndarray]:
        """Per-image outcome codes of the detections, in input order.

        Returns:
            list[np.ndarray]: for each image an int8 array with
            :data:`TRUE_POSITIVE` (1), :data:`DUPLICATE` (0, neither TP nor
            FP) or :data:`FALSE_POSITIVE` (-1) per detection.
        """
        codes = np.where(self.is_fp, FALSE_POSITIVE,
                         np.where(self.new_hits > 0, TRUE_POSITIVE,
                                  DUPLICATE)).astype(np.int8)
        counts = np.bincount(self.img_inds, minlength=self.num_images)
        return np.split(codes, np.cumsum(counts)[:-1])

    def thresholds_at_fp(self, fp_rates: Sequence[float]) -> np.ndarray:
        """The score threshold of each FP rate: keeping the detections
        whose score is ``>=`` it gives at most that many FPs per image.

        It is the lowest score above that of the first detection (global
        order) whose FPs per image exceed the rate, so a run of equal scores
        is kept or dropped whole; the lowest score of all where the curve
        never exceeds the rate, just above the best where the first
        detection does.

        Args:
            fp_rates (Sequence[float]): FPs per image, each >= 0.

        Returns:
            np.ndarray: float64 threshold per rate (NaN without
            detections).
        """
        rates = np.asarray(fp_rates, dtype=np.float64).reshape(-1)
        if len(self.scores) == 0:
            return np.full(rates.shape, np.nan)
        ranked = self.scores[self.order]
        fps = np.cumsum(self.is_fp[self.order]) / self.num_images
        out = np.empty(rates.shape)
        for i, rate in enumerate(rates):
            first_over = int(np.searchsorted(fps, rate, side='right'))
            if first_over == len(ranked):
                out[i] = ranked[-1]
                continue
            higher = ranked[ranked > ranked[first_over]]
            out[i] = (higher[-1] if len(higher) else np.nextafter(
                ranked[first_over], np.inf))
        return out


def _concat_boxes(boxes: Sequence[np.ndarray], name: str, ndim: int,
                  with_score: bool) -> Tuple[np.ndarray, np.ndarray]:
    """Validate per-image ``(N_i, 2 ndim [+ 1])`` boxes and concatenate."""
    width = 2 * ndim + int(with_score)
    what = 'N' if with_score else 'M'
    cols = BOX_COLUMNS[ndim] + (', score' if with_score else '')
    arrays, counts = [], []
    for i, box in enumerate(boxes):
        arr = np.asarray(box, dtype=np.float64)
        if arr.size == 0:
            arr = arr.reshape(0, width)
        elif arr.ndim != 2 or arr.shape[1] != width:
            raise ValueError(
                f'{name}[{i}] must have shape ({what}, {width}) with columns '
                f'{cols}; got shape {arr.shape}')
        arrays.append(arr)
        counts.append(arr.shape[0])
    counts = np.asarray(counts, dtype=np.int64)
    cat = np.concatenate(arrays) if arrays else np.zeros((0, width))
    _check_finite_boxes(cat, counts, name, ndim)
    return cat, counts


def _check_finite_boxes(cat: np.ndarray, counts: np.ndarray, name: str,
                        ndim: int) -> None:
    """Raise ``ValueError`` naming image and row of the first bad entry."""
    nb = 2 * ndim
    bad_box = ~np.isfinite(cat[:, :nb]).all(axis=1)
    bad_box |= (cat[:, ndim:nb] < cat[:, :ndim]).any(axis=1)
    bad_score = (np.isnan(cat[:, nb]) if cat.shape[1] == nb + 1 else np.zeros(
        len(cat), dtype=bool))
    if not (bad_box.any() or bad_score.any()):
        return
    flat = int(np.flatnonzero(bad_box | bad_score)[0])
    ends = np.cumsum(counts)
    img = int(np.searchsorted(ends, flat, side='right'))
    row = flat - int(ends[img] - counts[img])
    if bad_box[flat]:
        rule = ('x2 >= x1 and y2 >= y1' if ndim == 2 else
                'x2 >= x1, y2 >= y1 and z2 >= z1')
        raise ValueError(
            f'{name}[{img}] row {row}: invalid box {cat[flat, :nb].tolist()} '
            f'(coordinates must be finite with {rule})')
    raise ValueError(f'{name}[{img}] row {row}: the score is NaN')


def match_detections(dets: Sequence[np.ndarray],
                     gts: Sequence[np.ndarray],
                     iou_thr: float = 0.5,
                     overlap: str = 'iou',
                     ndim: int = 2) -> FROCMatch:
    """Run the hit walk of docs/protocols.md §1 on all images at once.

    Args:
        dets (Sequence[np.ndarray]): per image, ``(N_i, 5)`` detections
            ``x1, y1, x2, y2, score`` in original image pixels (class-agnostic;
            an empty array for an image without detections).
        gts (Sequence[np.ndarray]): per image (one per entry of ``dets``, each
            an image of the FP denominator), ``(M_i, 4)`` ground-truth boxes.
        iou_thr (float): overlap threshold (a hit needs ``>= iou_thr``).
            Defaults to 0.5.
        overlap (str): ``'iou'`` (legacy +1 pixel IoU) or ``'iobb'``
            (intersection over the detected box's area). Defaults to
            ``'iou'``.
        ndim (int): 2 (default), or 3 for ``(N_i, 7)`` detections ``x1, y1,
            z1, x2, y2, z2, score`` and ``(M_i, 6)`` ground truths (the LENS
            protocol, :mod:`mmlesion.evaluation.functional.froc_3d`).

    Returns:
        FROCMatch: per-detection TP / FP / duplicate status and the order.
    """
    if overlap not in OVERLAP_MODES:
        raise ValueError(
            f'overlap must be one of {OVERLAP_MODES}, got {overlap!r}')
    if not 0.0 <= float(iou_thr) <= 1.0:
        raise ValueError(f'iou_thr must be in [0, 1], got {iou_thr}')
    if len(dets) != len(gts):
        raise ValueError(f'dets has {len(dets)} images but gts has '
                         f'{len(gts)}; give one (possibly empty) entry per '
                         'image in both')
    num_images = len(dets)
    if num_images == 0:
        raise ValueError('FROC needs at least one image')
    det_cat, det_counts = _concat_boxes(dets, 'dets', ndim, True)
    gt_cat, gt_counts = _concat_boxes(gts, 'gts', ndim, False)
    nb = 2 * ndim
    num_dets, num_gts = det_cat.shape[0], gt_cat.shape[0]

    img_inds = np.repeat(np.arange(num_images), det_counts)
    scores = det_cat[:, nb].copy()
    # One global, stable, descending sort (equal scores keep input order).
    order = np.argsort(-scores, kind='stable')
    rank = np.empty(num_dets, dtype=np.int64)
    rank[order] = np.arange(num_dets)

    # (detection, ground truth of its own image) pairs, in chunks.
    gt_offsets = np.cumsum(gt_counts) - gt_counts
    pairs_per_det = gt_counts[img_inds]
    pair_ends = np.cumsum(pairs_per_det)
    # pair p of detection d is ground truth p + shift[d]
    gt_shift = gt_offsets[img_inds] - (pair_ends - pairs_per_det)
    det_cols = np.ascontiguousarray(det_cat[:, :nb].T)  # (2 ndim, D)
    gt_cols = np.ascontiguousarray(gt_cat.T)  # (2 ndim, G)
    det_areas = legacy_box_sizes(det_cat[:, :nb], ndim)
    gt_areas = legacy_box_sizes(gt_cat, ndim)
    has_hit = np.zeros(num_dets, dtype=bool)
    first_rank = np.full(num_gts, num_dets, dtype=np.int64)
    start = 0
    while start < num_dets:
        done = int(pair_ends[start - 1]) if start > 0 else 0
        stop = int(np.searchsorted(pair_ends, done + _PAIR_CHUNK, 'right'))
        stop = max(stop, start + 1)
        num_pairs = int(pair_ends[stop - 1]) - done
        if num_pairs:
            pair_det = np.repeat(
                np.arange(start, stop), pairs_per_det[start:stop])
            pair_gt = np.arange(done, done + num_pairs) + gt_shift[pair_det]
            ovr = _pair_overlaps(
                np.take(det_cols, pair_det, axis=1),
                np.take(gt_cols, pair_gt, axis=1),
                np.take(det_areas, pair_det), np.take(gt_areas, pair_gt),
                overlap)
            hit = ovr >= iou_thr
            hit_det = pair_det[hit]
            has_hit[hit_det] = True
            np.minimum.at(first_rank, pair_gt[hit], rank[hit_det])
        start = stop

    # No overlap >= thr (incl. images without lesions): false positive.
    return FROCMatch.from_walk(img_inds, scores, order, num_images,
                               first_rank, is_fp=~has_hit)


def froc_curve(dets: Sequence[np.ndarray],
               gts: Sequence[np.ndarray],
               iou_thr: float = 0.5,
               overlap: str = 'iou') -> FROCCurve:
    """Raw FROC curve of the DeepLesion 2D official protocol.

    Args:
        dets (Sequence[np.ndarray]): per image, ``(N_i, 5)`` detections
            ``x1, y1, x2, y2, score``.
        gts (Sequence[np.ndarray]): per image, ``(M_i, 4)`` ground truths.
        iou_thr (float): overlap threshold. Defaults to 0.5.
        overlap (str): ``'iou'`` or ``'iobb'``. Defaults to ``'iou'``.

    Returns:
        FROCCurve: FPs per image and sensitivity after each detection in the
        global score order, plus the numbers of images and lesions.
    """
    return match_detections(dets, gts, iou_thr, overlap).curve()


def sens_at_fp(curve: FROCCurve,
               fp_rates: Sequence[float] = DEFAULT_FP_RATES) -> np.ndarray:
    """Sensitivity at given average FPs per image: ``np.interp`` on the raw
    curve, holding the last sensitivity beyond it (see the module docstring).

    Args:
        curve (FROCCurve): from :func:`froc_curve`.
        fp_rates (Sequence[float]): FPs per image, each finite and >= 0.
            Defaults to ``(0.5, 1, 2, 4, 8, 16)``.

    Returns:
        np.ndarray: float64 sensitivity per rate (NaN when the curve has no
        lesions, 0 when it has no detections).
    """
    rates = np.asarray(fp_rates, dtype=np.float64).reshape(-1)
    if not np.isfinite(rates).all() or (rates < 0).any():
        raise ValueError(f'fp_rates must be finite and >= 0, got {fp_rates}')
    if curve.num_gts == 0:
        return np.full(rates.shape, np.nan)
    if len(curve.fps_per_image) == 0:
        return np.zeros(rates.shape)
    return np.interp(rates, curve.fps_per_image, curve.sensitivity)


def filter_gts(gts: Sequence[np.ndarray],
               keep: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Keep a subset of the ground truth of every image (the protocol's
    breakdowns filter only the ground truth).

    Args:
        gts (Sequence[np.ndarray]): per image, ``(M_i, 4)`` boxes (or
            ``(M_i, 6)`` 3D boxes).
        keep (Sequence[np.ndarray]): per image, ``(M_i,)`` boolean masks.

    Returns:
        list[np.ndarray]: per image, the kept ``(K_i, 4)`` boxes.
    """
    if len(gts) != len(keep):
        raise ValueError(f'gts has {len(gts)} images but keep has '
                         f'{len(keep)}')
    out = []
    for i, (gt, mask) in enumerate(zip(gts, keep)):
        arr = np.asarray(gt, dtype=np.float64)
        arr = arr.reshape(-1, arr.shape[1] if arr.ndim == 2 else 4)
        mask = np.asarray(mask, dtype=bool).reshape(-1)
        if mask.shape[0] != arr.shape[0]:
            raise ValueError(f'keep[{i}] has {mask.shape[0]} entries but '
                             f'gts[{i}] has {arr.shape[0]} boxes')
        out.append(arr[mask])
    return out


def lesion_type_subsets(
        gt_types: Sequence[np.ndarray]) -> Dict[str, List[np.ndarray]]:
    """Masks of the coarse lesion-type breakdown.

    Args:
        gt_types (Sequence[np.ndarray]): per image, ``(M_i,)`` DeepLesion
            coarse types (1..8; -1 or any other value = unknown, in no
            subset).

    Returns:
        dict[str, list[np.ndarray]]: for each type name of
        :data:`LESION_TYPE_NAMES` (in code order), per-image boolean masks.
    """
    types = [np.asarray(t).reshape(-1) for t in gt_types]
    return {
        name: [t == code for t in types]
        for code, name in LESION_TYPE_NAMES.items()
    }


def diameter_subsets(
        gt_long_diameters_mm: Sequence[np.ndarray]
) -> Dict[str, List[np.ndarray]]:
    """Masks of the long-diameter breakdown (``d < 10``, ``10 <= d <= 30``,
    ``d > 30`` mm; a NaN diameter is in no subset).

    Args:
        gt_long_diameters_mm (Sequence[np.ndarray]): per image, ``(M_i,)``
            long (RECIST) diameters in millimetres.

    Returns:
        dict[str, list[np.ndarray]]: keys ``'lt10mm'``, ``'10to30mm'``,
        ``'gt30mm'`` (see :data:`DIAMETER_BINS`), per-image boolean masks.
    """
    diams = [
        np.asarray(d, dtype=np.float64).reshape(-1)
        for d in gt_long_diameters_mm
    ]
    return {
        'lt10mm': [d < 10 for d in diams],
        '10to30mm': [(d >= 10) & (d <= 30) for d in diams],
        'gt30mm': [d > 30 for d in diams],
    }

