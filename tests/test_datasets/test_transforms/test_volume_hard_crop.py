# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest
import SimpleITK as sitk

from mmdet.registry import TRANSFORMS
from mmlesion.datasets.volumes.hard_regions import dump_hard_regions
from mmlesion.datasets.transforms import HardRegionRandomCrop3D

SHAPE = (64, 160, 160)
SPACING = (1.25, 0.8, 0.8)
ORIGIN = (-50., 20., 300.)
# hard negative at voxel (z, y, x) = (50, 140, 20), far from the nodule
HARD_ZYX = np.array([50., 140., 20.])
HARD_WORLD = [ORIGIN[0] + 20 * 0.8, ORIGIN[1] + 140 * 0.8,
              ORIGIN[2] + 50 * 1.25]


def _write(tmp_path, regions=None, scan_id='scan1'):
    path = str(tmp_path / 'hard.json')
    if regions is None:
        regions = [dict(kind='hard_negative', score=0.9,
                        center_world=HARD_WORLD,
                        center_voxel_zyx=HARD_ZYX.tolist(), diameter_mm=5.)]
    dump_hard_regions(path, [
        dict(id=scan_id, series_uid='uid1', img_path='scan1.mhd',
             shape_zyx=list(SHAPE), spacing_zyx=list(SPACING),
             origin_xyz=list(ORIGIN), direction=np.eye(3).ravel().tolist(),
             regions=regions)
    ], overwrite=True)
    return path


def _results(img_id='scan1', series_uid='uid1'):
    # one nodule near voxel (z, y, x) = (10, 20, 140)
    return dict(img=np.zeros(SHAPE, np.float32), img_shape=SHAPE,
                img_id=img_id, series_uid=series_uid, img_path='scan1.mhd',
                spacing_zyx=SPACING, origin_xyz=ORIGIN, direction=np.eye(3),
                gt_bboxes=np.array([[137., 17., 7., 143., 23., 13.]],
                                   np.float32),
                gt_bboxes_labels=np.array([0]),
                gt_ignore_flags=np.array([False]))


def _contains(origin, crop, zyx, margin):
    rel = np.asarray(zyx) - np.asarray(origin)
    return bool(np.all(rel >= margin) and np.all(rel <= crop - 1 - margin))


def test_crop_sources_at_the_configured_rates(tmp_path):
    np.random.seed(0)
    t = TRANSFORMS.build(dict(
        type='HardRegionRandomCrop3D', hard_regions_file=_write(tmp_path),
        hard_prob=0.4, crop_size=32, pos_prob=0.5, margin=4))
    n = 2000
    sources, near_hard = [], 0
    for _ in range(n):
        r = t(_results())
        sources.append(r['crop_source'])
        inside = _contains(r['crop_origin_zyx'], 32, HARD_ZYX, 4)
        near_hard += inside
        if r['crop_source'] == 'hard':
            assert inside and r['hard_region']['kind'] == 'hard_negative'
        if r['crop_source'] == 'positive':
            assert len(r['gt_bboxes']) == 1
    frac = {s: sources.count(s) / n for s in ('hard', 'positive', 'random')}
    # hard 0.4; of the rest, positive-biased sampling as RandomCrop3D: 0.5
    assert abs(frac['hard'] - 0.4) < 0.05
    assert abs(frac['positive'] - 0.3) < 0.05
    assert abs(frac['random'] - 0.3) < 0.05
    # crops near the hard region: the hard ones (uniform crops rarely are)
    assert 0.35 < near_hard / n < 0.47


def test_world_centre_through_the_volume_geometry(tmp_path):
    """The region is placed from its world centre with the geometry of the
    volume given (e.g. resampled differently from the mining run)."""
    np.random.seed(1)
    t = HardRegionRandomCrop3D(_write(tmp_path), hard_prob=1.0,
                               crop_size=16, margin=2)
    res = _results()
    res.update(img=np.zeros((80, 128, 128), np.float32),
               spacing_zyx=(1., 1., 1.))
    img = sitk.Image(128, 128, 80, sitk.sitkFloat32)
    img.SetOrigin(ORIGIN)
    expected = img.TransformPhysicalPointToContinuousIndex(HARD_WORLD)[::-1]
    for _ in range(20):
        r = t(dict(res))
        assert r['crop_source'] == 'hard'
        assert _contains(r['crop_origin_zyx'], 16, expected, 2)


def test_scan_lookup_kinds_and_fallbacks(tmp_path):
    np.random.seed(2)
    path = _write(tmp_path, scan_id='other-id')
    # found through the series UID when the id differs
    t = HardRegionRandomCrop3D(path, hard_prob=1.0, crop_size=32)
    assert t(_results())['crop_source'] == 'hard'
    # kinds filter: only hard positives wanted -> RandomCrop3D behaviour
    t = HardRegionRandomCrop3D(path, hard_prob=1.0, crop_size=32,
                               kinds=['hard_positive'], pos_prob=1.0)
    assert t(_results())['crop_source'] == 'positive'
    # a scan not in the file: cropped without hard regions
    t = HardRegionRandomCrop3D(path, hard_prob=1.0, crop_size=32,
                               pos_prob=0.0)
    r = t(_results(img_id='unknown', series_uid='unknown'))
    assert r['crop_source'] == 'random'


def test_errors(tmp_path):
    with pytest.raises(ValueError, match='hard_prob'):
        HardRegionRandomCrop3D('x.json', hard_prob=2)
    with pytest.raises(ValueError, match='kinds'):
        HardRegionRandomCrop3D('x.json', kinds=['false_positive'])
    # the file is read on first use, with a clear message
    t = HardRegionRandomCrop3D(str(tmp_path / 'missing.json'))
    with pytest.raises(FileNotFoundError, match='missing.json'):
        t(_results())
    # a region outside the volume: the file belongs to other scans
    far = dict(kind='hard_positive', score=0., center_world=[500., 0., 0.],
               center_voxel_zyx=[0., 0., 0.], diameter_mm=5.)
    t = HardRegionRandomCrop3D(_write(tmp_path, [far]), hard_prob=1.0,
                               crop_size=32)
    with pytest.raises(ValueError, match='outside the volume'):
        t(_results())
    assert 'hard_prob=1.0' in repr(t)
