# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest
import SimpleITK as sitk

from mmlesion.evaluation.functional.hard_regions import (HardRegionSettings,
                                                         scan_hard_regions)
from mmlesion.structures.ct_geometry import ScanGrid

SPACING = (2.0, 0.5, 0.5)  # z, y, x
ORIGIN = (-100., 50., 200.)
EYE = np.eye(3).ravel()
GRID = ScanGrid(SPACING, ORIGIN, EYE)


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
        _box(22, 20, 10),  # hits A (1 mm off), 0.9
        _box(82, 80, 30),  # hits B (1 mm off), 0.3 -> B poorly scored
        _box(50, 21, 20),  # on the excluded finding, 0.95: not hard
        _box(20, 20, 12),  # 4 mm from A in z: outside A's sphere, 0.8
        _box(120, 10, 5),  # plain false positive, 0.6
        _box(5, 100, 35),  # false positive below the threshold, 0.4
    ])
    scores = np.array([0.9, 0.3, 0.95, 0.8, 0.6, 0.4])
    return scan_hard_regions(boxes, scores, GRID, INSTANCES, **kwargs)


def test_hand_worked_scan():
    regions = _run()
    kinds = [(r['kind'], round(r['score'], 2)) for r in regions]
    assert kinds == [('hard_negative', 0.8), ('hard_negative', 0.6),
                     ('hard_positive', 0.3)]
    fp = regions[0]
    assert np.allclose(fp['center_world'], _world(20, 20, 12))
    assert np.allclose(fp['center_voxel_zyx'], [12, 20, 20])
    assert np.isclose(fp['diameter_mm'], (2 + 2 + 8) / 3)  # 4 voxels a side
    assert np.allclose(
        regions[2]['center_world'],
        INSTANCES[1]['center_world']) and regions[2]['diameter_mm'] == 4.


def test_geometry_matches_simpleitk_with_a_direction():
    d = np.array([[0., -1., 0.], [1., 0., 0.], [0., 0., 1.]])
    img = sitk.Image(64, 64, 32, sitk.sitkFloat32)
    img.SetSpacing(SPACING[::-1])
    img.SetOrigin(ORIGIN)
    img.SetDirection(d.ravel().tolist())
    regions = scan_hard_regions(np.array([_box(30, 12, 7)]), np.array([0.7]),
                                ScanGrid(SPACING, ORIGIN, d.ravel()), [])
    assert len(regions) == 1
    assert np.allclose(
        regions[0]['center_world'],
        img.TransformContinuousIndexToPhysicalPoint((30., 12., 7.)))
    assert np.allclose(regions[0]['center_voxel_zyx'], [7, 12, 30])


def test_thresholds_cap_and_missed_nodules():
    # a stricter negative threshold and a cap of one
    regions = _run(settings=HardRegionSettings(
        neg_score_thr=0.7, max_negatives=1, pos_score_thr=0.2))
    assert [(r['kind'], r['score'])
            for r in regions] == [('hard_negative', 0.8)]
    # nothing detected: every nodule is a missed hard positive, score 0
    regions = scan_hard_regions(np.zeros((0, 6)), np.zeros(0), GRID, INSTANCES)
    assert [(r['kind'], r['score'])
            for r in regions] == [('hard_positive', 0.), ('hard_positive', 0.)]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='scan7: 1 boxes but 2 scores'):
        scan_hard_regions(np.zeros((1, 6)),
                          np.zeros(2),
                          GRID, [],
                          where='scan7')
    with pytest.raises(ValueError, match="scan7, instance 0: needs"):
        scan_hard_regions(np.zeros((0, 6)),
                          np.zeros(0),
                          GRID, [dict(diameter_mm=3.)],
                          where='scan7')


# ------------------------------------------------------------- boundaries
# Pinned: a score exactly at ``neg_score_thr`` is a hard negative and one
# exactly at ``pos_score_thr`` is not a hard positive; the defaults (0.5,
# 0.5, at most 20 negatives); no cap with ``None`` and none kept with 0;
# every detection of a scan is matched (more than the LUNA16 cap of 100
# marks too); ties in input order; excluded findings are neither;
# instances without ``ignore_flag`` count; the region fields and types; the
# exact messages (docs/mutation_testing.md).
NODULE = dict(center_world=_world(20, 20, 10), diameter_mm=6.)
EXCLUDED = dict(center_world=_world(50, 20, 20), diameter_mm=6., ignore_flag=1)


def _far(k):
    return _box(100 + 10 * (k % 30), 10 + 10 * (k // 30), 30)


def _kinds(regions):
    return [(r['kind'], r['score']) for r in regions]


def test_thresholds_are_inclusive_for_negatives_strict_for_positives():
    boxes = np.array([_box(20, 20, 10), _far(0), _far(1)])
    # the nodule scored exactly 0.5 is not hard; an FP at 0.5 is
    regions = scan_hard_regions(boxes, np.array([.5, .5, .4999]), GRID,
                                [NODULE])
    assert _kinds(regions) == [('hard_negative', .5)]
    regions = scan_hard_regions(boxes, np.array([.4999, .5, .4999]), GRID,
                                [NODULE])
    assert _kinds(regions) == [('hard_negative', .5), ('hard_positive', .4999)]
    regions = scan_hard_regions(boxes,
                                np.array([.3, .3, .2]),
                                GRID, [NODULE],
                                settings=HardRegionSettings(neg_score_thr=.3,
                                                            pos_score_thr=.3))
    assert _kinds(regions) == [('hard_negative', .3)]
    regions = scan_hard_regions(boxes,
                                np.array([.3, .3, .2]),
                                GRID, [NODULE],
                                settings=HardRegionSettings(neg_score_thr=.2,
                                                            pos_score_thr=.31))
    assert _kinds(regions) == [('hard_negative', .3), ('hard_negative', .2),
                               ('hard_positive', .3)]


def test_cap_default_none_and_zero():
    boxes = np.array([_far(k) for k in range(25)])
    scores = np.linspace(.99, .6, 25)
    regions = scan_hard_regions(boxes, scores, GRID, [])
    assert len(regions) == 20
    assert [r['score'] for r in regions] == scores[:20].tolist()
    regions = scan_hard_regions(
        boxes,
        scores,
        GRID, [],
        settings=HardRegionSettings(max_negatives=None))
    assert len(regions) == 25
    assert scan_hard_regions(
        boxes, scores, GRID, [],
        settings=HardRegionSettings(max_negatives=0)) == []
    # listed in increasing score: sorted by decreasing score
    regions = scan_hard_regions(boxes[::-1],
                                scores[::-1],
                                GRID, [],
                                settings=HardRegionSettings(max_negatives=3))
    assert [r['score'] for r in regions] == scores[:3].tolist()
    assert regions[0]['center_world'] == pytest.approx(_world(100, 10, 30))


def test_every_detection_is_matched_beyond_the_luna16_cap():
    # 120 false positives: all of them are marks (LUNA16 keeps 100)
    boxes = np.array([_far(k) for k in range(120)])
    scores = np.full(120, .9)
    regions = scan_hard_regions(
        boxes,
        scores,
        GRID, [],
        settings=HardRegionSettings(max_negatives=None))
    assert len(regions) == 120
    # equal scores keep the input order
    assert [r['center_world'] for r in regions[:3]] == [
        pytest.approx(_world(100 + 10 * k, 10, 30)) for k in range(3)
    ]
    # one detection, on a nodule, ranked last of many
    boxes = np.concatenate([boxes, [_box(20, 20, 10)]])
    scores = np.concatenate([scores, [.1]])
    regions = scan_hard_regions(boxes,
                                scores,
                                GRID, [NODULE],
                                settings=HardRegionSettings(max_negatives=0))
    assert _kinds(regions) == [('hard_positive', .1)]
    regions = scan_hard_regions(boxes[-1:],
                                scores[-1:],
                                GRID, [NODULE],
                                settings=HardRegionSettings(pos_score_thr=.1))
    assert regions == []


def test_excluded_findings_and_default_flag():
    boxes = np.array([_box(50, 20, 20), _far(0)])
    scores = np.array([.9, .8])
    regions = scan_hard_regions(boxes, scores, GRID, [EXCLUDED])
    assert _kinds(regions) == [('hard_negative', .8)]
    # the same finding without ignore_flag is a nodule: found, not hard
    found = dict(EXCLUDED)
    del found['ignore_flag']
    regions = scan_hard_regions(boxes, scores, GRID, [found])
    assert _kinds(regions) == [('hard_negative', .8)]
    regions = scan_hard_regions(boxes[1:], scores[1:], GRID, [found])
    assert _kinds(regions) == [('hard_negative', .8), ('hard_positive', 0.)]
    regions = scan_hard_regions(boxes[1:], scores[1:], GRID,
                                [dict(found, ignore_flag=0)])
    assert _kinds(regions)[-1] == ('hard_positive', 0.)
    assert scan_hard_regions(boxes[1:], scores[1:], GRID,
                             [EXCLUDED]) == scan_hard_regions(
                                 boxes[1:], scores[1:], GRID, [])


def test_region_fields():
    regions = scan_hard_regions([_box(30, 12, 7, r=4.)], [.75], GRID, [NODULE])
    neg, pos = regions
    assert neg == dict(kind='hard_negative',
                       score=.75,
                       center_world=_world(30, 12, 7),
                       center_voxel_zyx=[7., 12., 30.],
                       diameter_mm=(4. + 4. + 16.) / 3)
    assert pos == dict(kind='hard_positive',
                       score=0.,
                       center_world=NODULE['center_world'],
                       center_voxel_zyx=[10., 20., 20.],
                       diameter_mm=6.)
    for r in regions:
        assert type(r['score']) is float and type(r['diameter_mm']) is float
        assert all(type(v) is float for v in r['center_world'])
        assert all(type(v) is float for v in r['center_voxel_zyx'])


def test_messages():
    with pytest.raises(ValueError) as err:
        scan_hard_regions(np.zeros((2, 6)), np.zeros(3), GRID, [])
    assert str(err.value) == '<scan>: 2 boxes but 3 scores'
    with pytest.raises(ValueError) as err:
        scan_hard_regions(np.zeros((0, 6)),
                          np.zeros(0),
                          GRID, [NODULE, dict(center_world=[1, 2])],
                          where='s1')
    assert str(err.value).startswith(
        "s1, instance 1: needs 'center_world' [x, y, z] and 'diameter_mm' (")
    for bad in (dict(center_world=[1, 2, 3]),
                dict(center_world=[1, 2, 3],
                     diameter_mm='big'), dict(center_world=None,
                                              diameter_mm=1.)):
        with pytest.raises(ValueError, match='instance 0: needs'):
            scan_hard_regions(np.zeros((0, 6)), np.zeros(0), GRID, [bad])
    assert scan_hard_regions(np.zeros(0), [], GRID, []) == []


def test_many_score_ties_keep_the_input_order():
    rng = np.random.default_rng(0)
    scores = rng.choice([.6, .7, .8], 64)
    boxes = np.array([_far(k) for k in range(64)])
    regions = scan_hard_regions(
        boxes,
        scores,
        GRID, [],
        settings=HardRegionSettings(max_negatives=None))
    order = np.argsort(-scores, kind='stable')
    assert [r['score'] for r in regions] == scores[order].tolist()
    assert [r['center_world'] for r in regions] == [
        pytest.approx(_world(100 + 10 * (k % 30), 10 + 10 * (k // 30), 30))
        for k in order
    ]


def test_score_column_and_text_coordinates():
    boxes = np.array([_box(20, 20, 10), _far(0), _far(1)])
    regions = scan_hard_regions(boxes, np.array([[.9], [.8], [.3]]), GRID,
                                [NODULE])
    assert _kinds(regions) == [('hard_negative', .8)]
    # coordinates read as text (a CSV row) are numbers
    text = dict(center_world=[str(v) for v in NODULE['center_world']],
                diameter_mm='6')
    regions = scan_hard_regions(boxes[1:], [.8, .3], GRID, [text])
    assert regions[-1] == dict(kind='hard_positive',
                               score=0.,
                               center_world=NODULE['center_world'],
                               center_voxel_zyx=[10., 20., 20.],
                               diameter_mm=6.)


def test_scores_as_text():
    # a prediction file read back as text: the same regions
    boxes = np.array([_box(20, 20, 10), _far(0), _far(1)])
    regions = scan_hard_regions(boxes, ['0.9', '0.8', '0.3'], GRID, [NODULE])
    assert _kinds(regions) == [('hard_negative', .8)]
