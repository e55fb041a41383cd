# Copyright (c) mmlesion contributors. All rights reserved.
"""The numpy CT geometry agrees with SimpleITK and with ``CTVolume``."""
import numpy as np
import pytest
import SimpleITK as sitk

from mmlesion.datasets.volumes import CTVolume
from mmlesion.structures.ct_geometry import (as_points, voxel_to_world,
                                             world_to_voxel)

SPACING_ZYX = (2.5, 0.7, 0.8)
ORIGIN = (-150.0, -180.0, -310.0)
C, S = np.cos(0.3), np.sin(0.3)
OBLIQUE = np.array([[C, -S, 0.0], [S, C, 0.0], [0.0, 0.0, 1.0]])


def test_matches_simpleitk_on_an_oblique_scan():
    img = sitk.Image(8, 9, 10, sitk.sitkFloat32)
    img.SetSpacing(SPACING_ZYX[::-1])
    img.SetOrigin(ORIGIN)
    img.SetDirection(OBLIQUE.ravel().tolist())
    idx_zyx = np.array([[1.5, 2.25, 3.0], [0.0, 0.0, 0.0], [9.5, -0.5, 7.]])
    world = voxel_to_world(idx_zyx, SPACING_ZYX, ORIGIN, OBLIQUE.ravel())
    for i, w in zip(idx_zyx, world):
        ref = img.TransformContinuousIndexToPhysicalPoint(
            tuple(float(v) for v in i[::-1]))
        np.testing.assert_allclose(w, ref, atol=1e-9)
    back = world_to_voxel(world, SPACING_ZYX, ORIGIN, OBLIQUE)
    np.testing.assert_allclose(back, idx_zyx, atol=1e-9)


def test_ct_volume_delegates():
    vol = CTVolume(np.zeros((2, 2, 2), np.float32), SPACING_ZYX, ORIGIN,
                   OBLIQUE)
    pts = np.array([[3.0, 1.0, 2.0]])
    np.testing.assert_array_equal(
        vol.voxel_to_world(pts),
        voxel_to_world(pts, SPACING_ZYX, ORIGIN, OBLIQUE))
    np.testing.assert_array_equal(
        vol.world_to_voxel(pts), world_to_voxel(pts, SPACING_ZYX, ORIGIN,
                                                OBLIQUE))


def test_bad_points_name_the_argument():
    assert as_points([1, 2, 3], 'p').shape == (1, 3)
    with pytest.raises(ValueError, match='points_xyz must be an'):
        world_to_voxel(np.zeros((2, 2)), SPACING_ZYX, ORIGIN)
