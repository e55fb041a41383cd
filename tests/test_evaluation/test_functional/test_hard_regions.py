# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest
import SimpleITK as sitk

from mmlesion.evaluation.functional.hard_regions import scan_hard_regions

SPACING = (2.0, 0.5, 0.5)  # z, y, x
ORIGIN = (-100., 50., 200.)
EYE = np.eye(3).ravel()


def _box(cx, cy, cz, r=2.0):
    return [cx - r, cy - r, cz - r, cx + r, cy + r, cz + r]


def _world(cx, cy, cz):
    return [ORIGIN[0] + cx * 0.5, ORIGIN[1] + cy * 0.5, ORIGIN[2] + cz * 2]


# nodule A at voxel (x, y, z) = (20, 20, 10), 6 mm (radius 3 mm = 6 voxels
# in x / y, 1.5 in z); nodule B at (80, 80, 30), 4 mm; an excluded finding
# at (50, 20, 20), 6 mm
INSTANCES = [
    dict(center_world=_world(20, 20, 10), diameter_mm=6., ignore_flag=0),
    dict(center_world=_world(80, 80, 30), diameter_mm=4., ignore_flag=0),
    dict(center_world=_world(50, 20, 20), diameter_mm=6., ignore_flag=1),
]


def _run(**kwargs):
    boxes = np.array([
        _box(22, 20, 10),   # hits A (1 mm off), 0.9
        _box(82, 80, 30),   # hits B (1 mm off), 0.3 -> B poorly scored
        _box(50, 21, 20),   # on the excluded finding, 0.95: not hard
        _box(20, 20, 12),   # 4 mm from A in z: outside A's sphere, 0.8
        _box(120, 10, 5),   # plain false positive, 0.6
        _box(5, 100, 35),   # false positive below the threshold, 0.4
    ])
    scores = np.array([0.9, 0.3, 0.95, 0.8, 0.6, 0.4])
    return scan_hard_regions(boxes, scores, SPACING, ORIGIN, EYE, INSTANCES,
                             **kwargs)


def test_hand_worked_scan():
    regions = _run()
    kinds = [(r['kind'], round(r['score'], 2)) for r in regions]
    assert kinds == [('hard_negative', 0.8), ('hard_negative', 0.6),
                     ('hard_positive', 0.3)]
    fp = regions[0]
    assert np.allclose(fp['center_world'], _world(20, 20, 12))
    assert np.allclose(fp['center_voxel_zyx'], [12, 20, 20])
    assert np.isclose(fp['diameter_mm'], (2 + 2 + 8) / 3)  # 4 voxels a side
    assert np.allclose(regions[2]['center_world'], INSTANCES[1][
        'center_world']) and regions[2]['diameter_mm'] == 4.


def test_geometry_matches_simpleitk_with_a_direction():
    d = np.array([[0., -1., 0.], [1., 0., 0.], [0., 0., 1.]])
    img = sitk.Image(64, 64, 32, sitk.sitkFloat32)
    img.SetSpacing(SPACING[::-1])
    img.SetOrigin(ORIGIN)
    img.SetDirection(d.ravel().tolist())
    regions = scan_hard_regions(np.array([_box(30, 12, 7)]), np.array([0.7]),
                                SPACING, ORIGIN, d.ravel(), [])
    assert len(regions) == 1
    assert np.allclose(regions[0]['center_world'],
                       img.TransformContinuousIndexToPhysicalPoint(
                           (30., 12., 7.)))
    assert np.allclose(regions[0]['center_voxel_zyx'], [7, 12, 30])


def test_thresholds_cap_and_missed_nodules():
    # a stricter negative threshold and a cap of one
    regions = _run(neg_score_thr=0.7, max_negatives=1, pos_score_thr=0.2)
    assert [(r['kind'], r['score']) for r in regions] == [
        ('hard_negative', 0.8)]
    # nothing detected: every nodule is a missed hard positive, score 0
    regions = scan_hard_regions(np.zeros((0, 6)), np.zeros(0), SPACING,
                                ORIGIN, EYE, INSTANCES)
    assert [(r['kind'], r['score']) for r in regions] == [
        ('hard_positive', 0.), ('hard_positive', 0.)]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='scan7: 1 boxes but 2 scores'):
        scan_hard_regions(np.zeros((1, 6)), np.zeros(2), SPACING, ORIGIN,
                          EYE, [], where='scan7')
    with pytest.raises(ValueError, match="scan7, instance 0: needs"):
        scan_hard_regions(np.zeros((0, 6)), np.zeros(0), SPACING, ORIGIN,
                          EYE, [dict(diameter_mm=3.)], where='scan7')
