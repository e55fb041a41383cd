# Copyright (c) mmlesion contributors. All rights reserved.
"""RECIST long and short axis of detected lesions (docs/infer_volume.md),
from a mask on their key slice (that of the largest 2D box): the model's
(the Improved RetinaNet's segmentation head, Zlocha et al. 2019), else
grown inside the box with GrabCut (Sec. 2.2 of the same paper).

Choice (nothing to follow in the papers): a box carries no RECIST end
points, so GrabCut's definite foreground is the rhombus of two pseudo
diameters through the box centre spanning ``seed_fraction`` (1/3) of its
sides; boxes too small for it (seed diameter under 2 px) or where it fails
get the inscribed ellipse (``mask_source='box_ellipse'``).

The bound (also a choice): the long axis is measured on the lesion, never
on the box. The model's mask counts only inside the box, so its long axis
is at most the box's diagonal. Without the model's mask, GrabCut's mask is
cut to the box's inscribed ellipse: a detector's box encloses a roundish
lesion whose corners are background, and a GrabCut that found no edge
fills the box to its corners (a long axis from corner to corner, longer
than any side). Its long axis is then at most the box's longer side (plus
one pixel: the mask's pixels count as whole squares,
:func:`~mmlesion.structures.recist.recist_diameters`); a lesion lying
diagonally in its box is measured short by at most the part of it beyond
that ellipse.
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmlesion.datasets.transforms import (GrabCutSettings, box_ellipse,
                                          key_slice_uint8, paste_crop,
                                          recist_grabcut_mask)
from mmlesion.datasets.volumes import CTVolume
from mmlesion.structures.recist import RecistDiameters, recist_diameters
from mmlesion.utils.distributed.forked_call import usable_cpus
from mmlesion.utils.reporting.progress import track_progress

from .results import Finding, RecistMeasurement, ScanResult

#: GrabCut window (HU), as :class:`~mmlesion.datasets.transforms.
#: RecistToMask`: soft tissue.
GRABCUT_WINDOW = (-160., 240.)
#: Where the lesion mask of a finding came from.
MASK_SOURCES = ('model', 'grabcut', 'box_ellipse')
#: Findings from which measuring shows its progress (GrabCut takes about
#: 0.14 s a finding on two cores).
PROGRESS_MIN_FINDINGS = 100


@dataclass(frozen=True)
class LesionMask:
    """A lesion's mask on one slice (:func:`grow_mask_in_box`).

    Args:
        mask (np.ndarray): (H, W) bool.
        source (str): where it came from (:data:`MASK_SOURCES`).
    """
    mask: np.ndarray
    source: str


@dataclass(frozen=True)
class LesionMeasurement(LesionMask):
    """One lesion masked and measured on one slice (:func:`measure_lesion`).

    Args:
        diameters (RecistDiameters, optional): None for an empty mask.
    """
    diameters: Optional[RecistDiameters] = None


@dataclass(frozen=True)
class MeasuredMask:
    """The mask a finding was measured on (:func:`measure_findings`).

    Args:
        finding_id (int): the finding's ``id``.
        slice (int): the resampled slice.
        mask (np.ndarray): the (H, W) bool mask on it.
    """
    finding_id: int
    slice: int
    mask: np.ndarray


def box_seed_points(bbox: Sequence[float],
                    seed_fraction: float = 1 / 3) -> np.ndarray:
    """Pseudo RECIST end points seeding GrabCut from a box (module doc).

    Args:
        bbox (Sequence[float]): ``x1, y1, x2, y2`` (pixel centres at
            integers).
        seed_fraction (float): length of the pseudo diameters as a fraction
            of the box sides, in (0, 0.5].

    Returns:
        np.ndarray: (4, 2) p1, p2 (along the longer side), p3, p4.
    """
    if not 0 < seed_fraction <= .5:
        raise ValueError(f'seed_fraction must be in (0, 0.5], got '
                         f'{seed_fraction}')
    x1, y1, x2, y2 = (float(v) for v in bbox)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    hw, hh = seed_fraction * (x2 - x1) / 2, seed_fraction * (y2 - y1) / 2
    horizontal = [[cx - hw, cy], [cx + hw, cy]]
    vertical = [[cx, cy - hh], [cx, cy + hh]]
    pts = horizontal + vertical if hw >= hh else vertical + horizontal
    return np.asarray(pts, dtype=np.float64)


def grow_mask_in_box(slice_hu: np.ndarray,
                     bbox: Sequence[float]) -> LesionMask:
    """A lesion mask grown with GrabCut inside a box's inscribed ellipse
    (module doc).

    Args:
        slice_hu (np.ndarray): (H, W) slice in HU.
        bbox (Sequence[float]): ``x1, y1, x2, y2`` in its pixels.

    Returns:
        LesionMask: the (H, W) bool mask and its source, ``'grabcut'`` or
        ``'box_ellipse'``; an all-False mask for a box outside the slice.
    """
    shape = tuple(int(v) for v in np.shape(slice_hu)[:2])
    image = key_slice_uint8(np.asarray(slice_hu, np.float32), GRABCUT_WINDOW)
    crop, offset, method = recist_grabcut_mask(
        image, bbox, box_seed_points(bbox), GrabCutSettings(min_diameter=2.))
    if method == 'empty':
        return LesionMask(np.zeros(shape, dtype=bool), 'box_ellipse')
    ellipse = box_ellipse(bbox, crop.shape, offset)
    if method == 'grabcut':
        crop = crop & ellipse  # the box's corners are no lesion
    if method != 'grabcut' or not crop.any():
        crop, method = ellipse, 'box_ellipse'
    return LesionMask(paste_crop(crop, offset, shape).astype(bool), method)


def model_mask_in_box(lesion_map: np.ndarray,
                      bbox: Sequence[float]) -> Optional[np.ndarray]:
    """The model's lesion mask inside a box: its largest connected
    component, holes filled.

    Args:
        lesion_map (np.ndarray): (H, W) bool map of the slice (the
            segmentation head's probability above its threshold).
        bbox (Sequence[float]): ``x1, y1, x2, y2``.

    Returns:
        np.ndarray | None: (H, W) bool mask; None when the map has no pixel
        in the box.
    """
    lesion_map = np.asarray(lesion_map, dtype=bool)
    h, w = lesion_map.shape
    x1, y1, x2, y2 = (float(v) for v in bbox)
    c0, r0 = max(int(np.ceil(x1)), 0), max(int(np.ceil(y1)), 0)
    c1, r1 = min(int(np.floor(x2)), w - 1), min(int(np.floor(y2)), h - 1)
    if c1 < c0 or r1 < r0:
        return None
    crop = lesion_map[r0:r1 + 1, c0:c1 + 1].astype(np.uint8)
    num, labels, stats, _ = cv2.connectedComponentsWithStats(crop, None, 8)
    if num < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    comp = (labels == best).astype(np.uint8)
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(comp, contours, -1, 1, thickness=cv2.FILLED)
    out = np.zeros((h, w), dtype=bool)
    out[r0:r1 + 1, c0:c1 + 1] = comp.astype(bool)
    return out


def _cover_a_pixel(bbox: Sequence[float],
                   shape_hw: Tuple[int, int]) -> List[float]:
    """The box grown to hold the pixel centre nearest to its centre (in the
    slice): a box thinner than a pixel still measures one pixel."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    cx = float(np.clip(round((x1 + x2) / 2), 0, shape_hw[1] - 1))
    cy = float(np.clip(round((y1 + y2) / 2), 0, shape_hw[0] - 1))
    return [min(x1, cx), min(y1, cy), max(x2, cx), max(y2, cy)]


def measure_lesion(slice_hu: np.ndarray,
                   bbox: Sequence[float],
                   spacing_xy: Tuple[float, float],
                   lesion_map: Optional[np.ndarray] = None
                   ) -> LesionMeasurement:
    """Mask one lesion on one slice and measure its two RECIST axes.

    Args:
        slice_hu (np.ndarray): (H, W) slice in HU.
        bbox (Sequence[float]): the lesion's box on it.
        spacing_xy (tuple): pixel spacing ``(sx, sy)`` in mm.
        lesion_map (np.ndarray, optional): the model's (H, W) bool lesion
            map of the slice; used when it has pixels in the box.

    Returns:
        LesionMeasurement: the diameters (None for an empty mask), the mask
        and its source. A box that holds no pixel centre is first grown to
        the pixel nearest to its centre. The long axis is at most the
        box's diagonal (the model's mask) or its longer side (otherwise),
        plus one pixel (module doc).
    """
    bbox = _cover_a_pixel(bbox, np.shape(slice_hu)[:2])
    mask = None if lesion_map is None else model_mask_in_box(lesion_map, bbox)
    lesion = (grow_mask_in_box(slice_hu, bbox) if mask is None else
              LesionMask(mask, 'model'))
    diameters = (recist_diameters(lesion.mask, spacing_xy)
                 if lesion.mask.any() else None)
    return LesionMeasurement(lesion.mask, lesion.source, diameters)


def slice_xy_to_world(volume: CTVolume, points_xy: Sequence,
                      z: float) -> np.ndarray:
    """(n, 2) ``x, y`` voxels of ``volume`` on slice ``z`` -> (n, 3) world
    mm."""
    pts = np.asarray(points_xy, np.float64).reshape(-1, 2)
    zyx = np.stack([np.full(len(pts), float(z)), pts[:, 1], pts[:, 0]], 1)
    return volume.voxel_to_world(zyx)


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """Closed outline of the largest component of a mask: (n >= 3, 2)
    ``x, y`` pixel centres of its boundary pixels (OpenCV, corners only);
    for a mask one or two pixels thin, the corners of its pixels' hull."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    best = max(contours, key=lambda c: (cv2.contourArea(c), len(c)))
    best = best.reshape(-1, 2).astype(np.float64)
    if len(best) >= 3 and cv2.contourArea(best.astype(np.float32)) > 0:
        return best
    corners = (best[:, None, :] + np.array(
        [[-.5, -.5], [.5, -.5], [.5, .5], [-.5, .5]])[None]).reshape(-1, 2)
    hull = cv2.convexHull(corners.astype(np.float32))
    return hull.reshape(-1, 2).astype(np.float64)


def measure_findings(findings: List[Finding],
                     resampled: CTVolume,
                     original: CTVolume,
                     lesion_maps: Optional[Sequence[np.ndarray]] = None,
                     workers: Optional[int] = None,
                     show_progress: bool = False
                     ) -> List[MeasuredMask]:
    """Set each finding's ``recist`` (None for an empty mask), measured in
    ``workers`` threads (GrabCut seeds its own thread's RNG: the same
    measurements for any number of threads).

    Args:
        findings (list[Finding]): the findings (``boxes_2d`` in
            ``resampled``).
        resampled (CTVolume): the volume the detector saw.
        original (CTVolume): the scan.
        lesion_maps (Sequence[np.ndarray], optional): per resampled slice
            the model's (H, W) bool lesion map (None: the model predicts no
            masks; GrabCut everywhere).
        workers (int, optional): threads measuring findings (None: the CPUs
            this process may use, at most 16; 1: one after another).
        show_progress (bool): report the progress (from
            :data:`PROGRESS_MIN_FINDINGS` findings on;
            :func:`~mmlesion.utils.reporting.progress.track_progress`).

    Returns:
        list[MeasuredMask]: the masks measured on (finding id, resampled
        slice, (H, W) bool mask), in the findings' order; none for a
        finding whose mask is empty.
    """
    sz, sy, sx = resampled.spacing_zyx

    def measure(f: Finding):
        box = max(f.boxes_2d, key=lambda b: b.area)
        z = int(box.slice)
        lmap = None if lesion_maps is None else lesion_maps[z]
        return z, measure_lesion(resampled.array[z], box.bbox, (sx, sy),
                                 lmap)

    if workers is None:
        workers = min(usable_cpus(), 16)

    def collect(results) -> list:
        if show_progress and len(findings) >= PROGRESS_MIN_FINDINGS:
            results = track_progress(results, len(findings),
                                     label='RECIST measuring, findings')
        return list(results)

    if workers > 1 and len(findings) > 1:
        with ThreadPoolExecutor(min(workers, len(findings))) as pool:
            measured = collect(pool.map(measure, findings))
    else:
        measured = collect(map(measure, findings))
    masks = []
    for f, (z, lesion) in zip(findings, measured):
        diam, mask, source = lesion.diameters, lesion.mask, lesion.source
        if diam is None:
            f.recist = None
            continue
        masks.append(MeasuredMask(f.id, z, mask))
        outline = mask_outline(mask)
        parts = [diam.long_axis, diam.short_axis, outline]
        mapped = original.world_to_voxel(
            slice_xy_to_world(resampled, np.concatenate(parts), z))
        z_orig = int(np.clip(np.round(mapped[:, 0].mean()), 0,
                             original.shape_zyx[0] - 1))
        xy = np.round(mapped[:, [2, 1]], 3)
        f.recist = RecistMeasurement(
            long_axis_mm=round(diam.long_mm, 2),
            short_axis_mm=round(diam.short_mm, 2),
            area_mm2=round(diam.area_px * sx * sy, 2), mask_source=source,
            key_slice=z, key_slice_original=z_orig,
            long_axis_voxel=xy[:2].tolist(), short_axis_voxel=xy[2:4].tolist(),
            outline_voxel=xy[4:].tolist(),
            long_axis_resampled=np.round(diam.long_axis, 3).tolist(),
            short_axis_resampled=np.round(diam.short_axis, 3).tolist())
    return masks


def measure_result(result: ScanResult,
                   original: CTVolume,
                   workers: Optional[int] = None
                   ) -> List[MeasuredMask]:
    """:func:`measure_findings` on a result detected with
    ``infer_volume(measure=False)``.

    Args:
        result (ScanResult): its findings get ``recist``.
        original (CTVolume): the scan the result was detected in.
        workers (int, optional): see :func:`measure_findings`.

    Returns:
        list[MeasuredMask]: as :func:`measure_findings`.

    Raises:
        ValueError: a result without its resampled volume.
    """
    if result.resampled is None:
        raise ValueError('measure_result: the result holds no resampled '
                         'volume to measure on')
    return measure_findings(result.findings, result.resampled, original,
                            result.lesion_maps, workers=workers,
                            show_progress=result.detection.show_progress)
