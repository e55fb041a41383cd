# Copyright (c) mmlesion contributors. All rights reserved.
"""Lung masks and the lung crop geometry (3D Aggregated Faster R-CNN,
Sec. IV-A), checked on a phantom and on a real CT against TotalSegmentator's
lung lobes."""
import numpy as np
import pytest
import SimpleITK as sitk

from mmlesion.datasets.volumes import (CTVolume, LungMaskSettings,
                                       VolumeOptions, compute_lung_mask,
                                       crop_volume, load_ct_volume,
                                       mask_region, resample_volume)
from mmlesion.testing import shared_data_root
from tests.helpers.lung_phantom import chest_phantom

_SHARED = shared_data_root()
TOTALSEG = None if _SHARED is None else \
    _SHARED / 'ct_volumes' / 'totalsegmentator'
LOBES = (10, 11, 12, 13, 14)  # TotalSegmentator v2: the five lung lobes


def _dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_phantom_lungs_not_gas_table_or_air():
    vol, lungs, stomach = chest_phantom()
    mask = compute_lung_mask(vol)
    assert _dice(mask, lungs) > 0.97
    assert not (mask & stomach).any()
    assert mask[24, 26:31, 20:25].all()  # the vessel hole is filled
    assert not mask[:, 56:60].any()
    # without the gas test the stomach (larger than a lung) would be kept
    no_gas_test = compute_lung_mask(vol, LungMaskSettings(max_gas_fraction=1.))
    assert (no_gas_test & stomach).any()
    # nothing lung-like: empty
    empty = CTVolume(np.full((8, 16, 16), 40., np.float32), (1, 1, 1),
                     (0, 0, 0))
    assert not compute_lung_mask(empty).any()
    assert mask_region(CTVolume(compute_lung_mask(empty), (1, 1, 1),
                                (0, 0, 0)), empty) is None


def test_crop_keeps_world_coordinates_like_sitk_region_of_interest():
    rng = np.random.default_rng(0)
    vol = CTVolume(
        rng.normal(size=(12, 14, 16)).astype(np.float32), (2.5, 0.7, 0.8),
        (10., -20., 30.), np.diag([-1., -1., 1.]))
    start, stop = (3, 2, 5), (10, 13, 15)
    crop = crop_volume(vol, start, stop)
    ref = sitk.RegionOfInterest(
        vol.to_sitk(), [b - a for a, b in zip(start[::-1], stop[::-1])],
        list(start[::-1]))
    np.testing.assert_allclose(crop.origin_xyz, ref.GetOrigin(), atol=1e-9)
    np.testing.assert_array_equal(crop.array, sitk.GetArrayFromImage(ref))
    pts = np.array([[0., 0., 0.], [4.3, 7.2, 1.5]])
    np.testing.assert_allclose(
        crop.voxel_to_world(pts), vol.voxel_to_world(pts + start), atol=1e-9)
    with pytest.raises(ValueError, match='non-empty region'):
        crop_volume(vol, (0, 0, 0), (13, 14, 16))


def test_mask_region_across_grids_with_margin():
    vol, lungs, _ = chest_phantom()
    mask = CTVolume(lungs, vol.spacing_zyx, vol.origin_xyz)
    start, stop = mask_region(mask, vol)
    idx = np.nonzero(lungs)
    assert start == tuple(int(i.min()) for i in idx)
    assert stop == tuple(int(i.max()) + 1 for i in idx)
    # 6 mm of margin: 3 slices of 2 mm, 4 rows / columns of 1.5 mm, clipped
    s2, e2 = mask_region(mask, vol, 6.)
    assert s2 == (max(start[0] - 3, 0), start[1] - 4, start[2] - 4)
    assert e2 == (min(stop[0] + 3, 40), stop[1] + 4, stop[2] + 4)
    # the same mask seen from the volume resampled to 1 mm covers the same
    # world box (to one target voxel)
    res = resample_volume(vol, (1., 1., 1.))
    s1, e1 = mask_region(mask, res)
    lo_w = vol.voxel_to_world(np.array([start]) - 0.5)[0]
    lo_r = res.voxel_to_world(np.array([s1]) - 0.5)[0]
    assert np.all(np.abs(lo_w - lo_r) <= 1.0 + 1e-6)


@pytest.mark.skipif(TOTALSEG is None
                    or not (TOTALSEG / 'example_seg.nii.gz').exists(),
                    reason='shared TotalSegmentator CT not available')
def test_computed_mask_against_totalsegmentator_lobes():
    """A real CT (the lung bases of an abdominal scan, 3 mm) and
    TotalSegmentator's five lobes as the independent reference."""
    vol = load_ct_volume(TOTALSEG / 'example_ct_sm.nii.gz')
    seg = load_ct_volume(TOTALSEG / 'example_seg.nii.gz',
                         scan_checks=dict(force_ct=True),
                         options=VolumeOptions(dtype=None))
    lobes = np.isin(seg.array, LOBES)
    assert lobes.sum() > 4000
    mask = compute_lung_mask(vol)
    assert _dice(mask, lobes) > 0.9  # 0.956 measured
    # the 10 mm crop keeps 4306 of the 4307 lobe voxels: the other one is
    # in a fragment of the right lung in the top slice, apart from the rest
    # within the scan (the lung goes on above it); 15 mm keep all
    mask_vol = CTVolume(mask, vol.spacing_zyx, vol.origin_xyz, vol.direction)
    for margin, min_inside in ((10., 0.995), (15., 1.)):
        start, stop = mask_region(mask_vol, vol, margin)
        region = tuple(slice(a, b) for a, b in zip(start, stop))
        assert lobes[region].sum() >= min_inside * lobes.sum()
    # on the 1 mm grid of the training pipeline too
    res = resample_volume(vol, (1., 1., 1.))
    ref = resample_volume(
        CTVolume(lobes.astype(np.uint8), vol.spacing_zyx, vol.origin_xyz,
                 vol.direction), (1., 1., 1.), 'nearest', 0.).array > 0
    assert _dice(compute_lung_mask(res), ref) > 0.9  # 0.928 measured
