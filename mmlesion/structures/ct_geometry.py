# Copyright (c) mmlesion contributors. All rights reserved.
"""CT geometry: world <-> continuous voxel coordinates, numpy only (no
volume needed). World points are SimpleITK's ``(x, y, z)`` mm, LPS;
continuous voxel coordinates are its continuous index in numpy order
``(z, y, x)`` (voxel ``i`` centred at ``i``); ``direction`` is its 3x3
direction matrix.
"""
from typing import NamedTuple, Sequence

import numpy as np


class ScanGrid(NamedTuple):
    """The voxel grid of a scan: what :func:`world_to_voxel` and
    :func:`voxel_to_world` take after the points.

    Args:
        spacing_zyx (Sequence[float]): voxel size (mm) along z, y, x.
        origin_xyz (Sequence[float]): world position of voxel (0, 0, 0).
        direction (Sequence[float]): 3x3 (or 9) direction cosines.
    """
    spacing_zyx: Sequence[float]
    origin_xyz: Sequence[float]
    direction: Sequence[float]


def as_points(points: np.ndarray, name: str) -> np.ndarray:
    """Return ``points`` as an ``(N, 3)`` float64 array.

    Args:
        points (np.ndarray): ``(3,)`` or ``(N, 3)`` points.
        name (str): the argument's name, for the error message.

    Returns:
        np.ndarray: ``(N, 3)`` float64 (a single point becomes ``(1, 3)``).

    Raises:
        ValueError: if the shape is neither.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 1 and pts.shape[0] == 3:
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f'{name} must be an (N, 3) array, got shape '
                         f'{np.shape(points)}')
    return pts


def direction_matrix(direction: Sequence[float]) -> np.ndarray:
    """A 3x3 float64 direction matrix from 9 values or a 3x3 array."""
    return np.asarray(direction, dtype=np.float64).reshape(3, 3)


def world_to_voxel(points_xyz: np.ndarray, spacing_zyx: Sequence[float],
                   origin_xyz: Sequence[float],
                   direction: Sequence[float] = np.eye(3)) -> np.ndarray:
    """World points (x, y, z) mm -> continuous voxel indices (z, y, x).

    Agrees with SimpleITK's ``TransformPhysicalPointToContinuousIndex``
    (index = D^-1 (p - origin) / spacing), reversed to (z, y, x).

    Args:
        points_xyz (np.ndarray): (N, 3) world points.
        spacing_zyx (Sequence[float]): voxel size (mm) along z, y, x.
        origin_xyz (Sequence[float]): world position of voxel (0, 0, 0).
        direction (Sequence[float]): 3x3 (or 9) direction; identity by
            default.

    Returns:
        np.ndarray: (N, 3) float64 continuous indices (z, y, x).

    Example:
        >>> world_to_voxel([[10., 20., 30.]], (2., 1., 1.), (0., 0., 0.))
        array([[15., 20., 10.]])
    """
    pts = as_points(points_xyz, 'points_xyz')
    rel = pts - np.asarray(origin_xyz, dtype=np.float64)
    spacing_xyz = np.asarray(spacing_zyx, dtype=np.float64)[::-1]
    idx_xyz = np.linalg.solve(direction_matrix(direction), rel.T).T
    return (idx_xyz / spacing_xyz)[:, ::-1].copy()


def voxel_to_world(points_zyx: np.ndarray, spacing_zyx: Sequence[float],
                   origin_xyz: Sequence[float],
                   direction: Sequence[float] = np.eye(3)) -> np.ndarray:
    """Continuous voxel indices (z, y, x) -> world points (x, y, z) mm.

    Agrees with SimpleITK's ``TransformContinuousIndexToPhysicalPoint``.

    Args:
        points_zyx (np.ndarray): (N, 3) continuous indices.
        spacing_zyx, origin_xyz, direction: as :func:`world_to_voxel`.

    Returns:
        np.ndarray: (N, 3) float64 world points (x, y, z).

    Example:
        >>> voxel_to_world([[15., 20., 10.]], (2., 1., 1.), (0., 0., 0.))
        array([[10., 20., 30.]])
    """
    idx = as_points(points_zyx, 'points_zyx')[:, ::-1]
    spacing_xyz = np.asarray(spacing_zyx, dtype=np.float64)[::-1]
    return (direction_matrix(direction) @ (idx * spacing_xyz).T).T + \
        np.asarray(origin_xyz, dtype=np.float64)
