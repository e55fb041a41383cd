# Copyright (c) mmlesion contributors. All rights reserved.
"""RECIST 1.1 diameters of a lesion mask on one axial slice.

Eisenhauer et al., Eur J Cancer 45 (2009), Sec. 3: the *longest diameter*
on the axial slice, and the *short axis*, the longest diameter
perpendicular to it. RECIST leaves the digital geometry open; here each
pixel is its ``(sx, sy)`` mm rectangle, the long axis is the exact maximum
Feret diameter of their union (two convex-hull corners), and the short
axis the longest chord across it in bands one pixel wide (not split at
gaps, as a calliper spans a notch).
"""
from dataclasses import dataclass
from typing import NamedTuple, Tuple

import cv2
import numpy as np


@dataclass(frozen=True)
class RecistDiameters:
    """The two RECIST axes of a mask on one slice.

    Attributes:
        long_mm (float): long axis (longest diameter), mm.
        short_mm (float): short axis (longest perpendicular diameter), mm.
        long_axis (np.ndarray): (2, 2) end points ``[[x, y], [x, y]]`` in
            the mask's pixel coordinates (pixel centres at integers).
        short_axis (np.ndarray): (2, 2) end points, likewise.
        area_px (int): pixels in the mask.
    """
    long_mm: float
    short_mm: float
    long_axis: np.ndarray
    short_axis: np.ndarray
    area_px: int


def _pixel_corners(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(4n, 2) corners ``[x, y]`` of the pixels centred at ``(xs, ys)``."""
    offsets = np.array([[-.5, -.5], [.5, -.5], [.5, .5], [-.5, .5]])
    centres = np.stack([xs, ys], axis=1).astype(np.float64)
    return (centres[:, None, :] + offsets[None]).reshape(-1, 2)


class FeretDiameter(NamedTuple):
    """The longest distance between two points and their indices."""
    distance: float
    i: int
    j: int


def max_feret_diameter(points_mm: np.ndarray) -> FeretDiameter:
    """Longest distance between two points (through their convex hull).

    Args:
        points_mm (np.ndarray): (n, 2) points in mm, n >= 1.

    Returns:
        tuple: the distance and the indices of the two points in
        ``points_mm``.
    """
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 2:
        return FeretDiameter(0., 0, 0)
    hull = cv2.convexHull(pts.astype(np.float32), returnPoints=False)
    idx = np.unique(hull.reshape(-1))
    h = pts[idx]
    d2 = ((h[:, None, :] - h[None, :, :])**2).sum(-1)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    return FeretDiameter(float(np.sqrt(d2[i, j])), int(idx[i]), int(idx[j]))


def recist_diameters(mask: np.ndarray,
                     spacing_xy: Tuple[float, float] = (1., 1.)
                     ) -> RecistDiameters:
    """Long and short axis of a 2D lesion mask (see the module doc).

    Args:
        mask (np.ndarray): (H, W) bool mask of one lesion on one slice.
        spacing_xy (tuple[float, float]): pixel spacing ``(sx, sy)`` in mm.

    Returns:
        RecistDiameters: the axes in mm and their end points in pixels.

    Raises:
        ValueError: an empty or non-2D mask, or a spacing that is not
            positive and finite.
    """
    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f'recist_diameters: a 2D mask is needed, got shape '
                         f'{mask.shape}')
    sx, sy = (float(v) for v in spacing_xy)
    if not (np.isfinite(sx) and np.isfinite(sy) and sx > 0 and sy > 0):
        raise ValueError(f'recist_diameters: pixel spacing must be > 0 mm, '
                         f'got {spacing_xy}')
    ys, xs = np.nonzero(mask)
    if not len(xs):
        raise ValueError('recist_diameters: the mask is empty')
    scale = np.array([sx, sy])
    corners = _pixel_corners(xs, ys)
    long_mm, i, j = max_feret_diameter(corners * scale)
    p, q = corners[i], corners[j]
    u = (q - p) * scale / long_mm  # unit long-axis direction (mm space)
    v = np.array([-u[1], u[0]])  # perpendicular
    centres = np.stack([xs, ys], axis=1) * scale
    pu = (centres - p * scale) @ u
    pv = (centres - p * scale) @ v
    # half extent of a pixel rectangle along u and v (support function)
    hu = .5 * (sx * abs(u[0]) + sy * abs(u[1]))
    hv = .5 * (sx * abs(v[0]) + sy * abs(v[1]))
    band = min(sx, sy)
    bins = np.floor(pu / band).astype(np.int64)
    order = np.argsort(bins, kind='stable')
    b_sorted = bins[order]
    starts = np.flatnonzero(np.r_[True, b_sorted[1:] != b_sorted[:-1]])
    lo = np.minimum.reduceat(pv[order], starts) - hv
    hi = np.maximum.reduceat(pv[order], starts) + hv
    k = int(np.argmax(hi - lo))
    short_mm = float(hi[k] - lo[k])
    t = (b_sorted[starts[k]] + .5) * band
    t = float(np.clip(t, -hu, long_mm + hu))
    ends_mm = p * scale + t * u + np.outer([lo[k], hi[k]], v)
    return RecistDiameters(
        long_mm=float(long_mm), short_mm=short_mm,
        long_axis=np.stack([p, q]), short_axis=ends_mm / scale,
        area_px=int(len(xs)))
