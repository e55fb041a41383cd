# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest
import SimpleITK as sitk

from mmlesion.datasets.volumes import CTVolume


def _oblique_image() -> sitk.Image:
    rng = np.random.default_rng(0)
    img = sitk.GetImageFromArray(
        rng.normal(size=(6, 7, 8)).astype(np.float32))
    img.SetSpacing((0.7, 0.8, 2.5))
    img.SetOrigin((-120.5, 33.0, -400.25))
    rot = sitk.Euler3DTransform()
    rot.SetRotation(0.2, -0.1, 0.3)
    img.SetDirection(rot.GetMatrix())
    return img


def test_world_voxel_agree_with_simpleitk():
    img = _oblique_image()
    vol = CTVolume.from_sitk(img, path='x')
    assert vol.shape_zyx == (6, 7, 8)
    assert vol.spacing_zyx == (2.5, 0.8, 0.7)
    rng = np.random.default_rng(1)
    world = rng.uniform(-300, 300, size=(20, 3))
    idx = vol.world_to_voxel(world)
    ref = np.array([
        img.TransformPhysicalPointToContinuousIndex(p.tolist())
        for p in world
    ])[:, ::-1]
    np.testing.assert_allclose(idx, ref, atol=1e-6)
    vox = rng.uniform(-5, 10, size=(20, 3))
    ref_w = np.array([
        img.TransformContinuousIndexToPhysicalPoint(v[::-1].tolist())
        for v in vox
    ])
    np.testing.assert_allclose(vol.voxel_to_world(vox), ref_w, atol=1e-6)
    np.testing.assert_allclose(
        vol.voxel_to_world(vol.world_to_voxel(world)), world, atol=1e-6)


def test_to_sitk_round_trip():
    img = _oblique_image()
    vol = CTVolume.from_sitk(img)
    back = vol.to_sitk()
    assert back.GetSpacing() == pytest.approx(img.GetSpacing())
    assert back.GetOrigin() == pytest.approx(img.GetOrigin())
    assert back.GetDirection() == pytest.approx(img.GetDirection())
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img))


def test_bad_points_and_arrays():
    vol = CTVolume(np.zeros((2, 3, 4), np.float32), (1, 1, 1), (0, 0, 0))
    np.testing.assert_allclose(vol.world_to_voxel([1, 2, 3]), [[3, 2, 1]])
    with pytest.raises(ValueError, match=r'\(N, 3\)'):
        vol.world_to_voxel(np.zeros((2, 2)))
    with pytest.raises(ValueError, match='z, y, x'):
        CTVolume(np.zeros((3, 4)), (1, 1, 1), (0, 0, 0))
