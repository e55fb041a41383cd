# Copyright (c) mmlesion contributors. All rights reserved.
"""Dense lesion masks from weak RECIST labels with GrabCut.

Zlocha et al., "Improving RetinaNet for CT Lesion Detection with Dense
Masks from Weak RECIST Labels" (MICCAI 2019), Sec. 2.2 and Fig. 1(b): the
quadrilateral joining the four RECIST end points is definite foreground,
the outside of the lesion box definite background, everything else unknown,
and OpenCV's GrabCut (Rother et al. 2004) decides the unknown pixels.

Choices (the paper leaves them open)
------------------------------------
* **Pixel convention**: 0-based coordinates with pixel ``img[y, x]``
  centred at ``(x, y)`` (as :mod:`mmlesion.datasets.dl_info`). A pixel is
  in the box when its centre is (``x1 <= x <= x2``, ``y1 <= y <= y2``).
* **Quadrilateral**: the polygon ``p1, p3, p2, p4`` (long-axis ends p1, p2,
  short-axis ends p3, p4). When the two diameters cross (all but ~0.3 % of
  DeepLesion) it is convex and equals the convex hull of the four points;
  otherwise ``p1, p3, p2, p4`` would be a self-intersecting bow tie, so the
  convex hull is used in every case. Rasterised with ``cv2.fillPoly``
  (sub-pixel vertices) and clipped to the box.
* **Unknown pixels** (in the box, outside the quadrilateral): OpenCV needs
  them labelled *probable* foreground (``GC_PR_FGD``) or *probable*
  background (``GC_PR_BGD``); the label seeds the initial colour models
  and is then re-estimated. With ``unknown='ellipse'`` (default) those
  inside the ellipse inscribed in the box are ``GC_PR_FGD`` and the box
  corners ``GC_PR_BGD`` (lesions are mostly convex and round, and
  DeepLesion boxes are the RECIST extent padded by 5 px, so the corners
  are mostly background); ``'fg'``/``'bg'`` label them all one way.
* **Context**: GrabCut runs on a crop, the box grown by
  ``max(context_px, context_ratio * box side)`` on each side (clipped to the
  image), so the background model describes the lesion's surroundings, not
  the whole body, and a mask costs milliseconds.
* **Image**: the key slice (middle channel) is converted back to HU when
  ``WindowHU`` recorded ``hu_window``/``hu_out_range`` and windowed to
  ``window`` (default soft tissue, -160..240 HU: liver, lymph node and
  kidney lesions differ from their surroundings by tens of HU, which a
  2000 HU window squeezes into a few grey levels), rescaled to uint8 and
  replicated to 3 channels. ``window=None`` uses the pipeline's own window.
* **Result**: GrabCut's (probable) foreground, united with the
  quadrilateral, restricted to the box; only the connected component(s)
  touching the quadrilateral are kept and holes are filled (a lesion is one
  solid object).
* **Fallbacks** (a method name per lesion is reported by
  :func:`recist_grabcut_mask`):
  ``'degenerate'``: non-finite RECIST or a quadrilateral under
  ``min_quad_area`` px^2 (collinear points): the ellipse spanned by the
  RECIST diameters (centred on the long axis, minor semi-axis at least
  1 px) if the points are finite, else the ellipse inscribed in the box;
  ``'tiny'``: long diameter under ``min_diameter`` px (too few pixels for
  GrabCut's colour models): the quadrilateral united with the RECIST
  ellipse; ``'failed'``: GrabCut raised or had no background pixel (box
  covering the whole image): the same as ``'tiny'``. All fallbacks are
  clipped to the box.

Cache format
------------
``cache_dir/meta.json`` holds the mask parameters (``format`` and
``params``); ``cache_dir/<key slice file stem>.npz``, e.g.
``000002_01_01_162.npz``, holds one image's lesions: ``bboxes`` (N, 4)
float64, ``image_shape`` (2,) int64 ``(H, W)``, ``offsets`` (N, 2) int64
``(x0, y0)`` and ``mask_<i>`` uint8 0/1 crops (the box's pixels), in the
order of ``bboxes``. The transform matches lesions by box (within 0.01 px),
so filtering or reordering lesions does not break the cache. Written by
``tools/dataset_converters/recist_to_masks.py``.
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks
from mmlesion.utils.atomic_io import atomic_write

#: ``format`` written to ``meta.json`` of a cache directory.
CACHE_FORMAT = 'mmlesion-recist-masks-v1'
#: Mask parameters that must agree between a cache and the transform.
CACHE_PARAM_KEYS = ('window', 'iterations', 'unknown', 'context_px',
                    'context_ratio', 'min_diameter', 'min_quad_area',
                    'keep_connected', 'fill_holes', 'seed')
_SHIFT = 8  # sub-pixel bits for cv2.fillPoly / cv2.ellipse
_BOX_TOL = 1e-2

ArrayLike = Union[np.ndarray, Sequence]


# ----------------------------------------------------------------- geometry
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
    """The RECIST quadrilateral ``p1, p3, p2, p4`` as a convex polygon.

    Args:
        recist (ArrayLike): ``(4, 2)`` points: long axis p1, p2, short axis
            p3, p4.

    Returns:
        np.ndarray: ``(K, 2)`` float64 vertices (K <= 4): the quadrilateral
        ``p1, p3, p2, p4`` when the diameters cross, else the convex hull
        of the four points (see the module docstring).
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
        shape (tuple): ``(H, W)`` of the output.
        offset (tuple): ``(x0, y0)`` image coordinate of output pixel
            ``[0, 0]``.

    Returns:
        np.ndarray: bool ``(H, W)``.
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
        shape (tuple): ``(H, W)`` of the output.
        offset (tuple): ``(x0, y0)`` of output pixel ``[0, 0]``.

    Returns:
        np.ndarray: bool ``(H, W)``.
    """
    out = np.zeros(shape, dtype=np.uint8)
    c = _fixed(np.asarray(center, dtype=np.float64)[None], offset)[0, 0]
    ax = np.round(np.asarray(axes, dtype=np.float64) *
                  (1 << _SHIFT)).astype(int)
    cv2.ellipse(
        out, (int(c[0]), int(c[1])), (int(ax[0]), int(ax[1])),
        float(angle_deg),
        0,
        360,
        1,
        thickness=-1,
        lineType=cv2.LINE_8,
        shift=_SHIFT)
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


# -------------------------------------------------------------------- image
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


# --------------------------------------------------------------------- mask
def recist_grabcut_mask(image_u8: np.ndarray,
                        bbox: ArrayLike,
                        recist: Optional[ArrayLike],
                        iterations: int = 5,
                        unknown: str = 'ellipse',
                        context_px: int = 16,
                        context_ratio: float = 0.5,
                        min_diameter: float = 6.0,
                        min_quad_area: float = 2.0,
                        keep_connected: bool = True,
                        fill_holes: bool = True,
                        seed: int = 0
                        ) -> Tuple[np.ndarray, Tuple[int, int], str]:
    """GrabCut mask of one lesion from its box and RECIST diameters.

    Zlocha et al. 2019, Sec. 2.2; see the module docstring for every
    choice and fallback.

    Args:
        image_u8 (np.ndarray): ``(H, W, 3)`` uint8 image (see
            :func:`key_slice_uint8`).
        bbox (ArrayLike): ``x1, y1, x2, y2``.
        recist (ArrayLike, optional): ``(4, 2)`` p1, p2 (long axis), p3, p4
            (short axis); None or non-finite -> ``'degenerate'``.
        iterations (int): GrabCut iterations.
        unknown (str): initial label of the unknown pixels: ``'ellipse'``,
            ``'fg'`` or ``'bg'``.
        context_px (int): minimum margin of the GrabCut crop (px).
        context_ratio (float): margin as a fraction of the longer box side.
        min_diameter (float): RECIST long diameters below this (px) are
            ``'tiny'``.
        min_quad_area (float): quadrilaterals below this area (px^2) are
            ``'degenerate'``.
        keep_connected (bool): keep only components touching the
            quadrilateral.
        fill_holes (bool): fill holes of the mask.
        seed (int): OpenCV RNG seed set before GrabCut (its colour models
            start from k-means), for reproducible masks.

    Returns:
        tuple: ``(crop, (x0, y0), method)``: the bool mask of the box's
        pixels (``crop[r, c]`` is image pixel ``(x0 + c, y0 + r)``), its
        offset, and ``'grabcut'``, ``'tiny'``, ``'degenerate'``,
        ``'failed'`` or ``'empty'`` (box outside the image).
    """
    if unknown not in ('ellipse', 'fg', 'bg'):
        raise ValueError(f"unknown must be 'ellipse', 'fg' or 'bg', got "
                         f'{unknown!r}')
    height, width = image_u8.shape[:2]
    bbox = np.asarray(bbox, dtype=np.float64).reshape(4)
    c0, r0, c1, r1 = box_pixel_range(bbox, (height, width))
    if c1 < c0 or r1 < r0:
        return np.zeros((0, 0), dtype=bool), (max(c0, 0), max(r0, 0)), \
            'empty'
    box_shape = (r1 - r0 + 1, c1 - c0 + 1)
    pts = None if recist is None else np.asarray(
        recist, dtype=np.float64).reshape(4, 2)

    offset = (c0, r0)
    if pts is None or not np.all(np.isfinite(pts)):
        return box_ellipse(bbox, box_shape, offset), offset, 'degenerate'
    poly = recist_polygon(pts)
    quad = rasterize_polygon(poly, box_shape, offset)
    fallback = quad | recist_ellipse(pts, box_shape, offset)
    if polygon_area(poly) < min_quad_area:
        return fallback, offset, 'degenerate'
    long_d = float(np.hypot(*(pts[1] - pts[0])))
    if long_d < min_diameter or not quad.any():
        return fallback, offset, 'tiny'

    # GrabCut on the box plus context
    margin = int(math.ceil(max(context_px, context_ratio * max(box_shape))))
    x0, y0 = max(c0 - margin, 0), max(r0 - margin, 0)
    x1, y1 = min(c1 + margin, width - 1), min(r1 + margin, height - 1)
    roi_shape = (y1 - y0 + 1, x1 - x0 + 1)
    gc = np.full(roi_shape, cv2.GC_BGD, dtype=np.uint8)
    in_box = (slice(r0 - y0, r1 - y0 + 1), slice(c0 - x0, c1 - x0 + 1))
    if unknown == 'fg':
        gc[in_box] = cv2.GC_PR_FGD
    elif unknown == 'bg':
        gc[in_box] = cv2.GC_PR_BGD
    else:
        ell = box_ellipse(bbox, box_shape, (c0, r0))
        gc[in_box] = np.where(ell, cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    gc[in_box][quad] = cv2.GC_FGD
    if not np.any((gc == cv2.GC_BGD) | (gc == cv2.GC_PR_BGD)):
        return fallback, offset, 'failed'
    roi = np.ascontiguousarray(image_u8[y0:y1 + 1, x0:x1 + 1])
    bgd_model = np.zeros((1, 65), np.float64)
    fgd_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(int(seed))
    try:
        cv2.grabCut(roi, gc, None, bgd_model, fgd_model, int(iterations),
                    cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return fallback, offset, 'failed'
    fg = (gc[in_box] == cv2.GC_FGD) | (gc[in_box] == cv2.GC_PR_FGD)
    mask = fg | quad
    if keep_connected:
        mask = _components_touching(mask, quad)
    if fill_holes:
        mask = _fill_holes(mask)
    return mask, offset, 'grabcut'


def paste_crop(crop: np.ndarray, offset: Tuple[int, int],
               shape: Tuple[int, int]) -> np.ndarray:
    """Place a crop of :func:`recist_grabcut_mask` in an ``(H, W)`` mask."""
    out = np.zeros(shape, dtype=np.uint8)
    if crop.size:
        x0, y0 = offset
        h, w = crop.shape
        out[y0:y0 + h, x0:x0 + w] = crop
    return out


# -------------------------------------------------------------------- cache
def cache_file_name(results_or_path: Union[dict, str]) -> str:
    """``<stem>.npz`` of an image: ``000002_01_01_162.npz``.

    Uses ``file_name`` of a DeepLesion data_info, else
    ``<parent folder>_<stem>`` of ``img_path``.
    """
    if isinstance(results_or_path, dict):
        name = results_or_path.get('file_name')
        if name:
            return osp.splitext(osp.basename(name))[0] + '.npz'
        path = results_or_path['img_path']
    else:
        path = results_or_path
    parent = osp.basename(osp.dirname(path))
    stem = osp.splitext(osp.basename(path))[0]
    return f'{parent}_{stem}.npz' if parent else f'{stem}.npz'


def save_mask_npz(path: str, bboxes: np.ndarray, crops: Sequence[np.ndarray],
                  offsets: Sequence[Tuple[int, int]],
                  image_shape: Tuple[int, int]) -> None:
    """Write one image's masks in the cache format (module docstring)."""
    arrays = dict(
        bboxes=np.asarray(bboxes, dtype=np.float64).reshape(-1, 4),
        image_shape=np.asarray(image_shape, dtype=np.int64),
        offsets=np.asarray(offsets, dtype=np.int64).reshape(-1, 2))
    for i, crop in enumerate(crops):
        arrays[f'mask_{i}'] = np.asarray(crop, dtype=np.uint8)
    tmp = path + '.tmp.npz'
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_mask_npz(path: str) -> Dict[str, object]:
    """Read a cache file; returns ``bboxes``, ``image_shape``, ``masks``.

    ``masks`` are full-size ``(H, W)`` uint8 arrays.
    """
    with np.load(path) as data:
        bboxes = data['bboxes']
        shape = tuple(int(v) for v in data['image_shape'])
        offsets = data['offsets']
        masks = [
            paste_crop(data[f'mask_{i}'], tuple(offsets[i]), shape)
            for i in range(len(bboxes))
        ]
    return dict(bboxes=bboxes, image_shape=shape, masks=masks)


def _json_value(v):
    if isinstance(v, tuple):
        return [_json_value(x) for x in v]
    return v


def write_cache_meta(cache_dir: str, params: dict) -> None:
    """Write ``meta.json`` (format and mask parameters)."""
    os.makedirs(cache_dir, exist_ok=True)
    with atomic_write(osp.join(cache_dir, 'meta.json')) as f:
        json.dump(
            dict(
                format=CACHE_FORMAT,
                params={
                    k: _json_value(v)
                    for k, v in params.items()
                }),
            f,
            indent=2)


def read_cache_meta(cache_dir: str) -> dict:
    """Read ``meta.json`` of a cache; raises if missing or foreign."""
    path = osp.join(cache_dir, 'meta.json')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} not found: not a RECIST mask cache (write one with '
            'tools/dataset_converters/recist_to_masks.py)')
    with open(path) as f:
        meta = json.load(f)
    if meta.get('format') != CACHE_FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected "
                         f'{CACHE_FORMAT!r}')
    return meta


@TRANSFORMS.register_module()
class RecistToMask(BaseTransform):
    """GrabCut masks from RECIST diameters, as ``gt_masks``.

    Zlocha et al., MICCAI 2019, Sec. 2.2 / Fig. 1(b) (dense supervision from
    weak RECIST labels). One mask per instance, aligned with ``gt_bboxes``
    (ignored instances included, as ``LoadAnnotations``), made on the key
    slice (middle channel) of ``img``. Must run before any geometric
    transform (it refuses results that carry ``scale_factor``, ``flip`` or
    ``homography_matrix``); mmdet's geometric transforms then move the
    ``BitmapMasks`` with the boxes. All choices and fallbacks are in the
    module docstring.

    Required keys: ``img``, ``gt_bboxes``, ``gt_recists`` (from
    ``LoadRecistPoints``; instances without RECIST may hold NaN and get the
    box ellipse); optional ``hu_window``/``hu_out_range`` (``WindowHU``),
    ``file_name``/``img_path`` (cache).

    Added keys: ``gt_masks`` (:class:`BitmapMasks`, ``(N, H, W)`` uint8).

    Args:
        window (tuple, optional): HU window of the GrabCut image. Defaults
            to (-160, 240) (soft tissue); None uses the pipeline's window.
        iterations (int): GrabCut iterations. Defaults to 5.
        unknown (str): initial label of unknown pixels (``'ellipse'``,
            ``'fg'``, ``'bg'``). Defaults to ``'ellipse'``.
        context_px (int): minimum context margin (px). Defaults to 16.
        context_ratio (float): context margin / longer box side. Defaults
            to 0.5.
        min_diameter (float): long diameters below this are 'tiny'
            (px). Defaults to 6.
        min_quad_area (float): quadrilaterals below this are degenerate
            (px^2). Defaults to 2.
        keep_connected (bool): keep components touching the quadrilateral.
        fill_holes (bool): fill holes.
        seed (int): OpenCV RNG seed for GrabCut. Defaults to 0.
        cache_dir (str, optional): read precomputed masks from this folder
            (see the module docstring); lesions not found are computed, or
            raise with ``cache_missing='error'``.
        cache_missing (str): ``'compute'`` or ``'error'``.
    """

    def __init__(self,
                 window: Optional[Tuple[float, float]] = (-160., 240.),
                 iterations: int = 5,
                 unknown: str = 'ellipse',
                 context_px: int = 16,
                 context_ratio: float = 0.5,
                 min_diameter: float = 6.0,
                 min_quad_area: float = 2.0,
                 keep_connected: bool = True,
                 fill_holes: bool = True,
                 seed: int = 0,
                 cache_dir: Optional[str] = None,
                 cache_missing: str = 'compute') -> None:
        if window is not None and not (len(window) == 2
                                       and window[0] < window[1]):
            raise ValueError(f'window must be (low, high) HU, got {window}')
        if unknown not in ('ellipse', 'fg', 'bg'):
            raise ValueError(f"unknown must be 'ellipse', 'fg' or 'bg', got "
                             f'{unknown!r}')
        if iterations < 1:
            raise ValueError(f'iterations must be >= 1, got {iterations}')
        if cache_missing not in ('compute', 'error'):
            raise ValueError(f"cache_missing must be 'compute' or 'error', "
                             f'got {cache_missing!r}')
        self.window = None if window is None else (float(window[0]),
                                                   float(window[1]))
        self.iterations = int(iterations)
        self.unknown = unknown
        self.context_px = int(context_px)
        self.context_ratio = float(context_ratio)
        self.min_diameter = float(min_diameter)
        self.min_quad_area = float(min_quad_area)
        self.keep_connected = bool(keep_connected)
        self.fill_holes = bool(fill_holes)
        self.seed = int(seed)
        self.cache_dir = cache_dir
        self.cache_missing = cache_missing
        self._cache_checked = False

    @property
    def params(self) -> dict:
        """The parameters that define a mask (stored in cache meta)."""
        return {k: getattr(self, k) for k in CACHE_PARAM_KEYS}

    def _check_cache(self) -> None:
        if self._cache_checked:
            return
        meta = read_cache_meta(self.cache_dir)
        stored = meta.get('params', {})
        mine = {k: _json_value(v) for k, v in self.params.items()}
        diff = {
            k: (stored.get(k), mine[k])
            for k in CACHE_PARAM_KEYS if stored.get(k) != mine[k]
        }
        if diff:
            raise ValueError(
                f'{osp.join(self.cache_dir, "meta.json")}: the cached masks '
                f'were made with other parameters (cache, transform): {diff}.'
                ' Use the same RecistToMask arguments or rebuild the cache '
                'with tools/dataset_converters/recist_to_masks.py --force')
        self._cache_checked = True

    def compute_masks(
        self, results: dict
    ) -> Tuple[List[np.ndarray], List[Tuple[int, int]], List[str]]:
        """GrabCut crops, offsets and methods of every instance."""
        bboxes = _boxes_array(results.get('gt_bboxes'))
        recists = results.get('gt_recists')
        if recists is None:
            raise KeyError(
                f"{results.get('img_path', '<image>')}: RecistToMask needs "
                "'gt_recists': put LoadRecistPoints before it")
        recists = np.asarray(recists, dtype=np.float64).reshape(-1, 4, 2)
        if len(recists) != len(bboxes):
            raise ValueError(
                f"{results.get('img_path', '<image>')}: {len(bboxes)} boxes "
                f'but {len(recists)} RECIST annotations')
        image = key_slice_uint8(results['img'], self.window,
                                results.get('hu_window'),
                                results.get('hu_out_range'))
        crops, offsets, methods = [], [], []
        for bbox, recist in zip(bboxes, recists):
            crop, offset, method = recist_grabcut_mask(
                image,
                bbox,
                recist,
                iterations=self.iterations,
                unknown=self.unknown,
                context_px=self.context_px,
                context_ratio=self.context_ratio,
                min_diameter=self.min_diameter,
                min_quad_area=self.min_quad_area,
                keep_connected=self.keep_connected,
                fill_holes=self.fill_holes,
                seed=self.seed)
            crops.append(crop)
            offsets.append(offset)
            methods.append(method)
        return crops, offsets, methods

    def _from_cache(self, results: dict, bboxes: np.ndarray,
                    shape: Tuple[int, int]) -> List[Optional[np.ndarray]]:
        self._check_cache()
        path = osp.join(self.cache_dir, cache_file_name(results))
        found: List[Optional[np.ndarray]] = [None] * len(bboxes)
        if osp.isfile(path):
            data = load_mask_npz(path)
            if tuple(data['image_shape']) != tuple(shape):
                raise ValueError(
                    f"{path}: masks of a {data['image_shape']} image, but "
                    f'the image is {shape}')
            stored = np.asarray(data['bboxes'])
            for i, box in enumerate(bboxes):
                if len(stored) == 0:
                    break
                err = np.abs(stored - box[None]).max(axis=1)
                j = int(np.argmin(err))
                if err[j] <= _BOX_TOL:
                    found[i] = data['masks'][j]
        missing = [i for i, m in enumerate(found) if m is None]
        if missing and self.cache_missing == 'error':
            raise FileNotFoundError(f'{path}: no cached mask for box(es) '
                                    f'{bboxes[missing].tolist()} of '
                                    f"{results.get('img_path', '<image>')}")
        return found

    def transform(self, results: dict) -> dict:
        """Add ``gt_masks``.

        Args:
            results (dict): see the class docstring.

        Returns:
            dict: with ``gt_masks``.
        """
        for key in ('scale_factor', 'flip', 'homography_matrix'):
            if key in results and not _is_identity(key, results[key]):
                raise ValueError(
                    f"{results.get('img_path', '<image>')}: RecistToMask "
                    f'must run before geometric transforms (found {key!r} '
                    f'= {results[key]!r}); place it right after '
                    'LoadRecistPoints')
        height, width = results['img'].shape[:2]
        bboxes = _boxes_array(results.get('gt_bboxes'))
        masks: List[Optional[np.ndarray]] = [None] * len(bboxes)
        if self.cache_dir is not None and len(bboxes):
            masks = self._from_cache(results, bboxes, (height, width))
        if any(m is None for m in masks):
            crops, offsets, _ = self.compute_masks(results)
            for i, m in enumerate(masks):
                if m is None:
                    masks[i] = paste_crop(crops[i], offsets[i],
                                          (height, width))
        stack = np.stack(masks, axis=0).astype(np.uint8) if masks else \
            np.zeros((0, height, width), dtype=np.uint8)
        results['gt_masks'] = BitmapMasks(stack, height, width)
        return results

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in self.params.items())
        return (f'{self.__class__.__name__}({args}, '
                f'cache_dir={self.cache_dir!r})')


def _is_identity(key: str, value) -> bool:
    if key == 'flip':
        return not bool(value)
    if key == 'scale_factor':
        return np.allclose(np.asarray(value, dtype=np.float64), 1.0)
    return np.allclose(np.asarray(value, dtype=np.float64), np.eye(3))


def _boxes_array(gt_bboxes) -> np.ndarray:
    if gt_bboxes is None:
        return np.zeros((0, 4), dtype=np.float64)
    if hasattr(gt_bboxes, 'tensor'):
        gt_bboxes = gt_bboxes.tensor.detach().cpu().numpy()
    return np.asarray(gt_bboxes, dtype=np.float64).reshape(-1, 4)
