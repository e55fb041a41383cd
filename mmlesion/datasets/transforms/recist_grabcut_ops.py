# Copyright (c) mmlesion contributors. All rights reserved.
"""Mask operations for RECIST -> dense masks: box pixels, the RECIST
quadrilateral and ellipses, the key slice as uint8 and the GrabCut mask of
one lesion (choices: :mod:`.recist_grabcut`)."""
import math
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np


_SHIFT = 8  # sub-pixel bits for cv2.fillPoly / cv2.ellipse
_BOX_TOL = 1e-2

ArrayLike = Union[np.ndarray, Sequence]


def box_pixel_range(bbox: ArrayLike,
                    shape: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """Pixel indices whose centres lie in the box, clipped to the image.

    Args:
        bbox (ArrayLike): ``x1, y1, x2, y2`` (0-based, pixel centres at
            integers).
        shape (tuple): ``(H, W)`` of the image.

    Returns:
        tuple: inclusive ``(c0, r0, c1, r1)``; empty when ``c1 < c0`` or
        ``r1 < r0``.
    """
    x1, y1, x2, y2 = (float(v) for v in bbox)
    h, w = shape
    c0 = max(int(math.ceil(x1 - 1e-6)), 0)
    r0 = max(int(math.ceil(y1 - 1e-6)), 0)
    c1 = min(int(math.floor(x2 + 1e-6)), w - 1)
    r1 = min(int(math.floor(y2 + 1e-6)), h - 1)
    return c0, r0, c1, r1


def box_pixel_mask(bbox: ArrayLike, shape: Tuple[int, int]) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the pixels whose centres are in the box."""
    out = np.zeros(shape, dtype=bool)
    c0, r0, c1, r1 = box_pixel_range(bbox, shape)
    if c1 >= c0 and r1 >= r0:
        out[r0:r1 + 1, c0:c1 + 1] = True
    return out


def recist_polygon(recist: ArrayLike) -> np.ndarray:
    """The RECIST quadrilateral as a convex polygon.

    Args:
        recist (ArrayLike): ``(4, 2)``: long axis p1, p2, short axis p3, p4.

    Returns:
        np.ndarray: ``(K <= 4, 2)`` float64: ``p1, p3, p2, p4`` when the
        diameters cross, else the convex hull.
    """
    pts = np.asarray(recist, dtype=np.float64).reshape(4, 2)
    quad = pts[[0, 2, 1, 3]]
    if _is_convex(quad):
        return quad
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)
    return hull.astype(np.float64)


def _is_convex(poly: np.ndarray) -> bool:
    d = np.roll(poly, -1, axis=0) - poly
    cross = d[:, 0] * np.roll(d, -1, axis=0)[:, 1] - \
        d[:, 1] * np.roll(d, -1, axis=0)[:, 0]
    return bool(np.all(cross > 0) or np.all(cross < 0))


def polygon_area(poly: ArrayLike) -> float:
    """Area of a simple polygon (shoelace formula)."""
    p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(
        float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


def _fixed(points: np.ndarray, offset: Tuple[int, int]) -> np.ndarray:
    pts = (np.asarray(points, dtype=np.float64) -
           np.asarray(offset, dtype=np.float64)) * (1 << _SHIFT)
    return np.round(pts).astype(np.int32).reshape(-1, 1, 2)


def rasterize_polygon(poly: ArrayLike,
                      shape: Tuple[int, int],
                      offset: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """Fill a polygon (``cv2.fillPoly``, sub-pixel vertices).

    Args:
        poly (ArrayLike): ``(K, 2)`` vertices in image coordinates.
        shape (tuple): ``(H, W)`` of the bool output.
        offset (tuple): ``(x0, y0)`` of output pixel ``[0, 0]``.
    """
    out = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(
        out, [_fixed(poly, offset)], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return out.astype(bool)


def rasterize_ellipse(center: ArrayLike,
                      axes: ArrayLike,
                      angle_deg: float,
                      shape: Tuple[int, int],
                      offset: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """Fill an ellipse given by its centre, semi-axes and angle.

    Args:
        center (ArrayLike): ``(x, y)`` in image coordinates.
        axes (ArrayLike): semi-axes ``(a, b)`` in pixels.
        angle_deg (float): rotation of the ``a`` axis from +x, degrees.
        shape (tuple): ``(H, W)`` of the bool output.
        offset (tuple): ``(x0, y0)`` of output pixel ``[0, 0]``.
    """
    out = np.zeros(shape, dtype=np.uint8)
    c = _fixed(np.asarray(center, dtype=np.float64)[None], offset)[0, 0]
    ax = np.round(np.asarray(axes, dtype=np.float64) *
                  (1 << _SHIFT)).astype(int)
    cv2.ellipse(out, (int(c[0]), int(c[1])), (int(ax[0]), int(ax[1])),
                float(angle_deg), 0, 360, 1, thickness=-1,
                lineType=cv2.LINE_8, shift=_SHIFT)
    return out.astype(bool)


def recist_ellipse(recist: np.ndarray, shape: Tuple[int, int],
                   offset: Tuple[int, int]) -> np.ndarray:
    """The ellipse spanned by the RECIST diameters (ULDor-style).

    Centre: midpoint of the long axis p1-p2; semi-axes: half the long and
    half the short diameter (at least 1 px); orientation: p1 -> p2.
    """
    p1, p2, p3, p4 = recist
    long_d = float(np.hypot(*(p2 - p1)))
    short_d = float(np.hypot(*(p4 - p3)))
    angle = math.degrees(math.atan2(p2[1] - p1[1], p2[0] - p1[0]))
    return rasterize_ellipse(
        (p1 + p2) / 2, (max(long_d / 2, 1.0), max(short_d / 2, 1.0)), angle,
        shape, offset)


def box_ellipse(bbox: ArrayLike, shape: Tuple[int, int],
                offset: Tuple[int, int]) -> np.ndarray:
    """The axis-aligned ellipse inscribed in the box."""
    x1, y1, x2, y2 = (float(v) for v in bbox)
    return rasterize_ellipse(((x1 + x2) / 2, (y1 + y2) / 2), (max(
        (x2 - x1) / 2, 0.5), max((y2 - y1) / 2, 0.5)), 0.0, shape, offset)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.zeros(mask.shape, dtype=np.uint8)
    cv2.drawContours(out, contours, -1, 1, thickness=cv2.FILLED)
    return out.astype(bool) | mask


def _components_touching(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    num, labels = cv2.connectedComponents(mask.astype(np.uint8), None, 8)
    if num <= 2:
        return mask
    keep = np.unique(labels[seed & mask])
    keep = keep[keep > 0]
    return np.isin(labels, keep)


def key_slice_uint8(img: np.ndarray,
                    window: Optional[Tuple[float, float]] = (-160., 240.),
                    hu_window: Optional[Tuple[float, float]] = None,
                    hu_out_range: Optional[Tuple[float,
                                                 float]] = None) -> np.ndarray:
    """The key slice (middle channel) as a 3-channel uint8 GrabCut image.

    Args:
        img (np.ndarray): ``(H, W)`` or ``(H, W, C)`` image of the pipeline.
        window (tuple, optional): ``(low, high)`` HU mapped to 0..255; None
            maps the pipeline's own window (``hu_out_range``, or the
            slice's min..max when unknown) to 0..255.
        hu_window (tuple, optional): HU window ``WindowHU`` applied (None:
            ``img`` is in HU).
        hu_out_range (tuple, optional): the values ``hu_window`` was mapped
            to.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8.
    """
    img = np.asarray(img)
    key = img if img.ndim == 2 else img[..., img.shape[-1] // 2]
    key = key.astype(np.float32)
    if window is None:
        if hu_out_range is not None:
            lo, hi = float(min(hu_out_range)), float(max(hu_out_range))
        else:
            lo, hi = float(key.min()), float(key.max())
        values = key
    else:
        lo, hi = float(window[0]), float(window[1])
        if hu_window is not None and hu_out_range is not None:
            a, b = float(hu_out_range[0]), float(hu_out_range[1])
            values = float(hu_window[0]) + (key - a) * (
                (float(hu_window[1]) - float(hu_window[0])) / (b - a))
        else:
            values = key
    if not hi > lo:
        hi = lo + 1.0
    u8 = np.clip((values - lo) * (255.0 / (hi - lo)), 0, 255)
    u8 = np.round(u8).astype(np.uint8)
    return np.repeat(u8[..., None], 3, axis=2)


@dataclass(frozen=True)
class GrabCutSettings:
    """How :func:`recist_grabcut_mask` makes a lesion's mask (also the
    arguments of :class:`~.recist_grabcut.RecistToMask` of these names).

    Attributes:
        iterations (int): GrabCut iterations. Defaults to 5.
        unknown (str): initial label of unknown pixels (``'ellipse'``,
            ``'fg'``, ``'bg'``). Defaults to ``'ellipse'``.
        context_px (int): minimum context margin (px). Defaults to 16.
        context_ratio (float): context margin / longer box side. Defaults
            to 0.5.
        min_diameter (float): 'tiny' below this long diameter (px).
        min_quad_area (float): 'degenerate' below this area (px^2).
        keep_connected (bool): keep components touching the quadrilateral.
        fill_holes (bool): fill holes.
        seed (int): OpenCV's RNG seed, set before GrabCut for reproducible
            masks. Defaults to 0.

    Raises:
        ValueError: ``unknown`` is none of the three.
    """
    iterations: int = 5
    unknown: str = 'ellipse'
    context_px: int = 16
    context_ratio: float = 0.5
    min_diameter: float = 6.0
    min_quad_area: float = 2.0
    keep_connected: bool = True
    fill_holes: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.unknown not in ('ellipse', 'fg', 'bg'):
            raise ValueError(f"unknown must be 'ellipse', 'fg' or 'bg', got "
                             f'{self.unknown!r}')


class GrabCutMask(NamedTuple):
    """A lesion's mask of :func:`recist_grabcut_mask`.

    Attributes:
        crop (np.ndarray): the bool mask of the box's pixels (``crop[r, c]``
            is image pixel ``(x0 + c, y0 + r)``).
        offset (tuple[int, int]): ``(x0, y0)``.
        method (str): ``'grabcut'``, ``'tiny'``, ``'degenerate'``,
            ``'failed'`` or ``'empty'`` (box outside the image).
    """
    crop: np.ndarray
    offset: Tuple[int, int]
    method: str


def recist_grabcut_mask(image_u8: np.ndarray,
                        bbox: ArrayLike,
                        recist: Optional[ArrayLike],
                        settings: GrabCutSettings = GrabCutSettings()
                        ) -> GrabCutMask:
    """GrabCut mask of one lesion from its box and RECIST diameters
    (Zlocha et al. 2019, Sec. 2.2; choices: :mod:`.recist_grabcut`).

    Args:
        image_u8 (np.ndarray): ``(H, W, 3)`` uint8 image (see
            :func:`key_slice_uint8`).
        bbox (ArrayLike): ``x1, y1, x2, y2``.
        recist (ArrayLike, optional): ``(4, 2)`` p1, p2 (long axis), p3, p4
            (short axis); None or non-finite -> ``'degenerate'``.
        settings (GrabCutSettings): GrabCut, context, fallbacks and clean-up.

    Returns:
        GrabCutMask: the box's mask, its offset and how it was made.
    """
    s = settings
    height, width = image_u8.shape[:2]
    bbox = np.asarray(bbox, dtype=np.float64).reshape(4)
    c0, r0, c1, r1 = box_pixel_range(bbox, (height, width))
    if c1 < c0 or r1 < r0:
        return GrabCutMask(np.zeros((0, 0), dtype=bool),
                           (max(c0, 0), max(r0, 0)), 'empty')
    box_shape = (r1 - r0 + 1, c1 - c0 + 1)
    pts = None if recist is None else np.asarray(
        recist, dtype=np.float64).reshape(4, 2)

    offset = (c0, r0)
    if pts is None or not np.all(np.isfinite(pts)):
        return GrabCutMask(box_ellipse(bbox, box_shape, offset), offset,
                           'degenerate')
    poly = recist_polygon(pts)
    quad = rasterize_polygon(poly, box_shape, offset)
    fallback = quad | recist_ellipse(pts, box_shape, offset)
    if polygon_area(poly) < s.min_quad_area:
        return GrabCutMask(fallback, offset, 'degenerate')
    long_d = float(np.hypot(*(pts[1] - pts[0])))
    if long_d < s.min_diameter or not quad.any():
        return GrabCutMask(fallback, offset, 'tiny')

    # GrabCut on the box plus context
    margin = math.ceil(max(s.context_px, s.context_ratio * max(box_shape)))
    x0, y0 = max(c0 - margin, 0), max(r0 - margin, 0)
    x1, y1 = min(c1 + margin, width - 1), min(r1 + margin, height - 1)
    roi_shape = (y1 - y0 + 1, x1 - x0 + 1)
    gc = np.full(roi_shape, cv2.GC_BGD, dtype=np.uint8)
    in_box = (slice(r0 - y0, r1 - y0 + 1), slice(c0 - x0, c1 - x0 + 1))
    if s.unknown == 'fg':
        gc[in_box] = cv2.GC_PR_FGD
    elif s.unknown == 'bg':
        gc[in_box] = cv2.GC_PR_BGD
    else:
        ell = box_ellipse(bbox, box_shape, (c0, r0))
        gc[in_box] = np.where(ell, cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    gc[in_box][quad] = cv2.GC_FGD
    if not np.any((gc == cv2.GC_BGD) | (gc == cv2.GC_PR_BGD)):
        return GrabCutMask(fallback, offset, 'failed')
    roi = np.ascontiguousarray(image_u8[y0:y1 + 1, x0:x1 + 1])
    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(int(s.seed))
    try:
        cv2.grabCut(roi, gc, None, bgd_model, fgd_model, int(s.iterations),
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return GrabCutMask(fallback, offset, 'failed')
    fg = (gc[in_box] == cv2.GC_FGD) | (gc[in_box] == cv2.GC_PR_FGD)
    mask = fg | quad
    if s.keep_connected:
        mask = _components_touching(mask, quad)
    if s.fill_holes:
        mask = _fill_holes(mask)
    return GrabCutMask(mask, offset, 'grabcut')


def paste_crop(crop: np.ndarray, offset: Tuple[int, int],
               shape: Tuple[int, int]) -> np.ndarray:
    """Place a crop of :func:`recist_grabcut_mask` in an ``(H, W)`` mask."""
    out = np.zeros(shape, dtype=np.uint8)
    if crop.size:
        x0, y0 = offset
        h, w = crop.shape
        out[y0:y0 + h, x0:x0 + w] = crop
    return out
