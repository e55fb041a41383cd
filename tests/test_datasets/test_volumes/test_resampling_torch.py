# Copyright (c) mmlesion contributors. All rights reserved.
"""Torch linear resampling (``resample_volume(..., backend='torch')``)
against SimpleITK's: the same grid, the same values within
``TORCH_LINEAR_ATOL_HU``, the same voxels outside the input."""
import numpy as np
import pytest

from mmlesion.datasets.volumes import CTVolume, resample_volume
from mmlesion.datasets.volumes.resampling import (TORCH_LINEAR_ATOL_HU,
                                                  resample_volume_torch,
                                                  source_positions)
from mmlesion.testing import shared_data_root

#: Real CT scans of the shared data folder (../shared/data/README.md): a
#: NIfTI volume (122 x 101 x 112 voxels at 3 mm) and a DICOM series (20
#: slices of 512 x 512)
REAL_SCANS = ('ct_volumes/totalsegmentator/example_ct.nii.gz',
              'ct_volumes/totalsegmentator/example_ct_dicom')


#: The value outside the input in the comparisons: one no scan holds, so
#: the voxels outside are told apart from air (-1024) inside
OUTSIDE = -7777.


def _assert_same(vol: CTVolume, spacing, atol=TORCH_LINEAR_ATOL_HU):
    ref = resample_volume(vol, spacing, default_value=OUTSIDE)
    new = resample_volume(vol, spacing, default_value=OUTSIDE,
                          backend='torch')
    assert new.shape_zyx == ref.shape_zyx
    assert new.spacing_zyx == ref.spacing_zyx
    np.testing.assert_allclose(new.origin_xyz, ref.origin_xyz, rtol=0,
                               atol=1e-9)
    np.testing.assert_array_equal(new.direction, ref.direction)
    assert new.array.dtype == np.float32
    # the voxels SimpleITK sets to the default value are those set here
    np.testing.assert_array_equal(new.array == OUTSIDE, ref.array == OUTSIDE)
    np.testing.assert_allclose(new.array, ref.array, rtol=0, atol=atol)
    assert new.meta['resampled_from'] == ref.meta['resampled_from']
    return ref, new


def test_random_geometries_match_simpleitk():
    """Down- and upsampling, oblique directions, values spanning the HU
    range with 4000 HU jumps between neighbours (the worst case for the
    float32 weights)."""
    rng = np.random.default_rng(0)
    for i in range(24):
        shape = tuple(int(v) for v in rng.integers(3, 40, 3))
        direction = (np.linalg.qr(rng.normal(size=(3, 3)))[0]
                     if i % 2 else np.eye(3))
        vol = CTVolume(
            rng.uniform(-1000., 3000., shape).astype(np.float32),
            tuple(rng.uniform(.3, 3., 3)), tuple(rng.uniform(-500, 500, 3)),
            direction)
        _assert_same(vol, tuple(rng.uniform(.3, 3., 3)))


def test_an_axis_of_unchanged_size_is_still_resampled():
    """torch copies an axis whose size does not change whatever the
    scale; 21 x 2.214 mm -> 21 x 2.171 mm must still move the points."""
    rng = np.random.default_rng(1)
    vol = CTVolume(rng.uniform(-1000, 1000, (6, 8, 21)).astype(np.float32),
                   (1., 1., 2.2141), (0., 0., 0.))
    ref, new = _assert_same(vol, (1., 1., 2.1706))
    assert ref.shape_zyx[2] == 21
    assert not np.allclose(new.array, vol.array, atol=1.)


def test_the_last_slice_on_the_outer_edge_is_air_as_in_simpleitk():
    """300 slices of 1.25 mm -> 188 of 2 mm: the last new slice's centre
    is on the outer edge of the input (continuous index 299.5), outside for
    SimpleITK: all -1024, here too. 26 slices of 1 mm -> 13 of 2 mm: the
    last centre is at 24.5, inside: tissue."""
    rng = np.random.default_rng(2)
    for depth, old, new_sp, air in ((300, 1.25, 2., True),
                                    (26, 1., 2., False)):
        vol = CTVolume(rng.uniform(0, 100, (depth, 4, 5)).astype(np.float32),
                       (old, .7, .7), (-12.3, 45.6, -78.9))
        ref, new = _assert_same(vol, (new_sp, .7, .7))
        last = source_positions(vol, (new_sp, .7, .7))[0][-1]
        assert (last >= depth - .5) == air
        assert bool((new.array[-1] == OUTSIDE).all()) == air
        assert bool((ref.array[-1] == OUTSIDE).all()) == air


def test_edge_positions_computed_as_simpleitk_does():
    """Geometries whose last new centre falls on the input's outer edge up
    to rounding: SimpleITK's float64 arithmetic decides which side; ours
    must decide the same (a last slice of air or of tissue)."""
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(3000):
        old = float(rng.choice([.3, .5, .625, .7, .9, 1.25, 1.5, .703125]))
        new_sp = old * float(rng.choice([2, 4, 1.6, 2.5, .5, 1.25]))
        depth = int(rng.integers(3, 120))
        origin = tuple(rng.uniform(-600, 600, 3).round(
            int(rng.integers(0, 6))))
        vol = CTVolume(np.full((depth, 2, 2), 5., np.float32),
                       (old, 1., 1.), origin)
        last = source_positions(vol, (new_sp, 1., 1.))[0][-1]
        if abs(last - (depth - .5)) > 1e-6:
            continue
        checked += 1
        ref = resample_volume(vol, (new_sp, 1., 1.))
        new = resample_volume_torch(vol, (new_sp, 1., 1.))
        assert (ref.array[-1] == -1024).all() == (last >= depth - .5)
        np.testing.assert_array_equal(new.array[-1], ref.array[-1])
    assert checked > 50


def test_a_synthetic_chest_scan_matches_simpleitk(tmp_path):
    from projects.study_demo.synthetic.volumes import generate_demo_volumes
    from mmlesion.datasets.volumes import load_ct_volume
    generate_demo_volumes(tmp_path / 'v', seed=0, num_luna=1, num_kits=0,
                          num_lits=0, val_fraction=0., size_range=(96, 96),
                          num_slices_range=(60, 60))
    vol = load_ct_volume(str(next((tmp_path / 'v').rglob('*.mhd'))))
    for spacing in ((2., .8, .8), (1., 1., 1.), (.7, .5, .5)):
        _, new = _assert_same(vol, spacing, atol=.05)
        assert new.array.max() > 0  # tissue, not only air


def _real_scans():
    root = shared_data_root()
    if root is None:
        return []
    return [root / p for p in REAL_SCANS if (root / p).exists()]


@pytest.mark.skipif(not _real_scans(),
                    reason='no real CT scan: the shared data folder '
                    '(MMLESION_SHARED_DATA, ../shared/data) is absent')
def test_real_scans_match_simpleitk():
    from mmlesion.datasets.volumes import load_ct_volume
    for path in _real_scans():
        vol = load_ct_volume(str(path))
        for spacing in ((2., .8, .8), (1., 1., 1.), (5., 1.4, 1.4)):
            _assert_same(vol, spacing)


def test_bad_arguments():
    vol = CTVolume(np.zeros((3, 4, 5), np.float32), (1., 1., 1.),
                   (0., 0., 0.))
    with pytest.raises(ValueError, match='backend'):
        resample_volume(vol, (1, 1, 1), backend='numpy')
    with pytest.raises(ValueError, match="linear' only"):
        resample_volume(vol, (1, 1, 1), interpolator='nearest',
                        backend='torch')
    with pytest.raises(ValueError, match='positive'):
        resample_volume_torch(vol, (0, 1, 1))
    # an integer volume is resampled as float32 HU
    ints = CTVolume(np.arange(60, dtype=np.int16).reshape(3, 4, 5),
                    (1., 1., 1.), (0., 0., 0.))
    _assert_same(ints, (.5, 2., 2.))
