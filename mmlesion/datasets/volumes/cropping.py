# Copyright (c) mmlesion contributors. All rights reserved.
"""Cropping a CT volume to a region, keeping its world geometry.

A crop of voxels ``start .. stop - 1`` is the sub-array plus the world
position of its first voxel as the new origin (what SimpleITK's
``RegionOfInterest`` does), so world points, and with them LUNA16
annotations and candidates, are the same before and after.
"""
from typing import Optional, Sequence, Tuple

import numpy as np

from .ct_volume import CTVolume
from .resampling import resample_boxes_3d


def crop_volume(volume: CTVolume, start_zyx: Sequence[int],
                stop_zyx: Sequence[int]) -> CTVolume:
    """Voxels ``start_zyx`` (inclusive) to ``stop_zyx`` (exclusive).

    Args:
        volume (CTVolume): the volume.
        start_zyx (Sequence[int]): first voxel, inside the volume.
        stop_zyx (Sequence[int]): one past the last voxel.

    Returns:
        CTVolume: a view of the array, the same spacing and direction, and
        the origin moved to the world position of ``start_zyx``.
    """
    start = np.asarray(start_zyx, dtype=np.int64)
    stop = np.asarray(stop_zyx, dtype=np.int64)
    shape = np.asarray(volume.shape_zyx)
    if start.shape != (3, ) or stop.shape != (3, ) or np.any(start < 0) \
            or np.any(stop > shape) or np.any(stop <= start):
        raise ValueError(f'crop {start.tolist()} .. {stop.tolist()} is not '
                         f'a non-empty region of a volume of shape '
                         f'{tuple(shape.tolist())}')
    region = tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
    origin = volume.voxel_to_world(start[None].astype(np.float64))[0]
    return CTVolume(
        array=volume.array[region],
        spacing_zyx=volume.spacing_zyx,
        origin_xyz=tuple(origin.tolist()),
        direction=volume.direction,
        meta=dict(volume.meta, cropped_from=volume.shape_zyx,
                  crop_start_zyx=tuple(int(v) for v in start)))


def mask_region(mask: CTVolume,
                target: CTVolume,
                margin_mm: float = 0.) -> Optional[Tuple[Tuple[int, ...],
                                                         Tuple[int, ...]]]:
    """The voxels of ``target`` covering a mask's bounding box plus a margin.

    The mask's bounding box goes through world coordinates into ``target``
    (another grid of the same scan), is widened by ``margin_mm`` on every
    side and clipped to ``target``.

    Args:
        mask (CTVolume): a boolean (z, y, x) mask with its geometry.
        target (CTVolume): the volume to crop (only its geometry is used).
        margin_mm (float): margin around the mask's box.

    Returns:
        tuple | None: ``(start_zyx, stop_zyx)`` for :func:`crop_volume`, or
        None if the mask is empty.
    """
    arr = np.asarray(mask.array, dtype=bool)
    # two passes: the slices, then the (y, x) plane of those in between
    zs = np.flatnonzero(arr.any(axis=(1, 2)))
    if not len(zs):
        return None
    plane = arr[zs[0]:zs[-1] + 1].any(axis=0)
    lo, hi = [zs[0] - 0.5], [zs[-1] + 0.5]
    for idx in (np.flatnonzero(plane.any(axis=1)),
                np.flatnonzero(plane.any(axis=0))):
        lo.append(idx[0] - 0.5)
        hi.append(idx[-1] + 0.5)
    box = np.array([lo[::-1] + hi[::-1]], dtype=np.float64)  # x1..z2
    mapped = resample_boxes_3d(box, mask, target)[0].astype(np.float64)
    margin = margin_mm / np.asarray(target.spacing_zyx)[::-1]  # x, y, z
    a = mapped[:3] - margin
    b = mapped[3:] + margin
    shape_xyz = np.asarray(target.shape_zyx)[::-1]
    start = np.clip(np.floor(a + 0.5 + 1e-6), 0, shape_xyz).astype(int)
    stop = np.clip(np.ceil(b - 0.5 - 1e-6) + 1, 0, shape_xyz).astype(int)
    if np.any(stop <= start):
        return None  # the mask lies outside the target
    return tuple(start[::-1].tolist()), tuple(stop[::-1].tolist())
