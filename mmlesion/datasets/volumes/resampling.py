# Copyright (c) mmlesion contributors. All rights reserved.
"""Resampling of CT volumes (SimpleITK) with boxes and points carried along.

Used to bring scans to the spacing a detector expects: e.g. 0.8 x 0.8 x
2 mm for the 2.5D detectors (LENS Sec. IV-A) or 1 mm isotropic for the 3D
Aggregated Faster R-CNN (Sec. IV-A). Boxes and points go through world
coordinates, so any two volumes of the same scan can be mapped.
"""
from typing import Optional, Sequence

import numpy as np
import SimpleITK as sitk

from .ct_volume import CTVolume

_INTERPOLATORS = {
    'nearest': sitk.sitkNearestNeighbor,
    'linear': sitk.sitkLinear,
    'bspline': sitk.sitkBSpline,
    'lanczos': sitk.sitkLanczosWindowedSinc,
}


def resample_volume(volume: CTVolume,
                    spacing_zyx: Sequence[float],
                    interpolator: str = 'linear',
                    default_value: Optional[float] = None) -> CTVolume:
    """Resample a volume to a new spacing over the same world extent.

    The output grid keeps the direction and the outer edges of the input
    (``size * spacing`` per axis, rounded to a whole number of output
    voxels): the edge of voxel 0 stays where it was, so the new origin is
    the centre of the new first voxel. SimpleITK's ``ResampleImageFilter``
    interpolates.

    Args:
        volume (CTVolume): the input.
        spacing_zyx (sequence[float]): target voxel size in mm (z, y, x).
        interpolator (str): ``'linear'`` (default), ``'nearest'`` (label
            maps), ``'bspline'`` or ``'lanczos'``.
        default_value (float, optional): value outside the input. Defaults
            to air (-1024 HU) for images and to 0 (background) for label
            maps (``'nearest'``); it must fit the label map's dtype.

    Returns:
        CTVolume: the resampled volume (float32 for images; the input dtype
        for ``'nearest'``), ``meta`` copied with ``resampled_from``
        (the input spacing) added.
    """
    spacing_zyx = tuple(float(s) for s in spacing_zyx)
    if len(spacing_zyx) != 3 or not all(np.isfinite(spacing_zyx)) or min(
            spacing_zyx) <= 0:
        raise ValueError(f'spacing_zyx must be 3 positive numbers, got '
                         f'{spacing_zyx}')
    if interpolator not in _INTERPOLATORS:
        raise ValueError(f'interpolator must be one of '
                         f'{sorted(_INTERPOLATORS)}, got {interpolator!r}')
    if default_value is None:
        default_value = 0. if interpolator == 'nearest' else -1024.
    elif interpolator == 'nearest' and np.issubdtype(volume.array.dtype,
                                                     np.integer):
        info = np.iinfo(volume.array.dtype)
        if not (info.min <= default_value <= info.max
                and float(default_value).is_integer()):
            raise ValueError(
                f'default_value {default_value} does not fit the label '
                f'map dtype {volume.array.dtype} ({info.min} .. {info.max})')
    old_sp = np.asarray(volume.spacing_zyx)
    new_sp = np.asarray(spacing_zyx)
    size_zyx = np.asarray(volume.shape_zyx)
    new_size = np.maximum(np.round(size_zyx * old_sp / new_sp), 1).astype(int)
    # centre of the new voxel 0 in the old continuous index (z, y, x)
    first = -0.5 + 0.5 * new_sp / old_sp
    origin = volume.voxel_to_world(first[None])[0]
    src = volume.to_sitk()
    out_type = sitk.sitkFloat32 if interpolator != 'nearest' else \
        src.GetPixelID()
    ref = sitk.Image([int(s) for s in new_size[::-1]], out_type)
    ref.SetSpacing(tuple(new_sp[::-1].tolist()))
    ref.SetOrigin(tuple(origin.tolist()))
    ref.SetDirection(tuple(volume.direction.ravel().tolist()))
    res = sitk.ResampleImageFilter()
    res.SetReferenceImage(ref)
    res.SetInterpolator(_INTERPOLATORS[interpolator])
    res.SetDefaultPixelValue(float(default_value))
    res.SetOutputPixelType(out_type)
    out = res.Execute(src)
    meta = dict(volume.meta, resampled_from=tuple(volume.spacing_zyx))
    return CTVolume.from_sitk(
        out, dtype=None if interpolator == 'nearest' else np.float32, **meta)


def map_points_zyx(points: np.ndarray, src: CTVolume,
                   dst: CTVolume) -> np.ndarray:
    """Map continuous voxel points (z, y, x) of ``src`` into ``dst``.

    Args:
        points (np.ndarray): (N, 3) continuous indices in ``src``.
        src (CTVolume): the volume the points are given in.
        dst (CTVolume): another volume of the same scan (e.g. resampled).

    Returns:
        np.ndarray: (N, 3) continuous indices (z, y, x) in ``dst``.
    """
    return dst.world_to_voxel(src.voxel_to_world(points))


def resample_boxes_3d(boxes: np.ndarray, src: CTVolume,
                      dst: CTVolume) -> np.ndarray:
    """Map 3D boxes ``[x1, y1, z1, x2, y2, z2]`` from ``src`` to ``dst``.

    The 8 corners go through world coordinates; the result is their
    axis-aligned bounding box in ``dst`` (exact when both volumes share
    the direction, as after :func:`resample_volume`).

    Args:
        boxes (np.ndarray): (N, 6) boxes in continuous voxels of ``src``.
        src (CTVolume): their volume.
        dst (CTVolume): the target volume.

    Returns:
        np.ndarray: (N, 6) float32 boxes in continuous voxels of ``dst``.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 6), dtype=np.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 6:
        raise ValueError(f'boxes must be (N, 6) [x1, y1, z1, x2, y2, z2], '
                         f'got shape {boxes.shape}')
    x1, y1, z1, x2, y2, z2 = boxes.T
    corners = np.stack([
        np.stack([z, y, x], axis=1) for z in (z1, z2) for y in (y1, y2)
        for x in (x1, x2)
    ], axis=1)  # (N, 8, 3) zyx
    mapped = map_points_zyx(corners.reshape(-1, 3), src,
                            dst).reshape(-1, 8, 3)
    lo, hi = mapped.min(1), mapped.max(1)
    out = np.concatenate([lo[:, ::-1], hi[:, ::-1]], axis=1)
    return out.astype(np.float32)
