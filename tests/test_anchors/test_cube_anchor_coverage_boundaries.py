# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the cube-anchor coverage
(:mod:`mmlesion.anchors.cube_anchor_coverage`).

Closed-form cases: the positions sampled at cell midpoints over one period
(the least common multiple of the strides), the nearest anchor centre per
axis (``center_offset``), the overlap of two segments (none, partial,
contained), the IoU threshold reached exactly (``>=``), lesions covered at
every / no position, the centred IoU, the rounding of the report, the
checks and their messages, and the LUNA16 diameter column
(docs/mutation_testing.md).
"""
import numpy as np
import pytest

from mmlesion.anchors.cube_anchor_coverage import (_axis_distance,
                                                   cube_anchor_coverage,
                                                   luna16_diameters,
                                                   optimise_cube_sizes)


def _cube_iou(d, a, dists):
    ov = [max(min(min(d, a), (d + a) / 2 - t), 0) for t in dists]
    inter = ov[0] * ov[1] * ov[2]
    return inter / (d**3 + a**3 - inter)


def test_axis_distance():
    pos = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.5])
    np.testing.assert_allclose(_axis_distance(pos, 4, 0.5),
                               [2, 1, 0, 1, 2, 0.5])
    np.testing.assert_allclose(_axis_distance(pos, 4, 0.0),
                               [0, 1, 2, 1, 0, 1.5])


def test_one_level_two_positions():
    # period 4, positions 1 and 3, anchor centres at 2: 1 voxel away
    out = cube_anchor_coverage([4.0], [4], [[4.0]], samples_per_axis=2)
    iou = _cube_iou(4, 4, [1, 1, 1])  # 27 / 101
    assert out['num_lesions'] == 1 and out['period'] == 4
    assert out['samples_per_axis'] == 2
    assert out['per_lesion'] == dict(diameter=[4.0], centred_iou=[1.0],
                                     frac_positions=[0.0])
    assert out['mean_best_iou'] == round(iou, 4)
    assert out['centred_ge_thr'] == 1
    assert out['covered_everywhere'] == 0 and out['covered_nowhere'] == 1
    assert out['mean_frac_positions'] == 0.0
    assert out['iou_thr'] == 0.5 and out['strides'] == [4]
    assert out['sizes'] == [[4.0]]


def test_one_level_four_positions_and_the_threshold():
    # positions 0.5, 1.5, 2.5, 3.5: distances 1.5, 0.5, 0.5, 1.5
    out = cube_anchor_coverage([4.0], [4], [[4.0]], samples_per_axis=4)
    near = _cube_iou(4, 4, [0.5] * 3)
    assert near > 0.5 > _cube_iou(4, 4, [0.5, 0.5, 1.5])
    assert out['per_lesion']['frac_positions'] == [0.125]
    assert out['covered_everywhere'] == 0 and out['covered_nowhere'] == 0
    ious = [_cube_iou(4, 4, [a, b, c]) for a in (1.5, .5, .5, 1.5)
            for b in (1.5, .5, .5, 1.5) for c in (1.5, .5, .5, 1.5)]
    assert out['mean_best_iou'] == round(float(np.mean(ious)), 4)
    # the threshold is reached at exactly its value
    exact = cube_anchor_coverage([4.0], [4], [[4.0]], samples_per_axis=4,
                                 iou_thr=near)
    assert exact['per_lesion']['frac_positions'] == [0.125]
    above = cube_anchor_coverage([4.0], [4], [[4.0]], samples_per_axis=4,
                                 iou_thr=near + 1e-9)
    assert above['per_lesion']['frac_positions'] == [0.0]
    assert above['covered_nowhere'] == 1


def test_covered_everywhere_and_centre_offset():
    # offset 0: anchor centres on the positions 0, 4: lesion centred
    out = cube_anchor_coverage([4.0, 8.0], [4], [[4.0]], samples_per_axis=1,
                               center_offset=0.0)
    # one position at 2: 2 voxels from both centres
    assert out['per_lesion']['frac_positions'] == [0.0, 0.0]
    out = cube_anchor_coverage([4.0], [4], [[4.0]], samples_per_axis=1)
    # offset 0.5: the anchor centre is at the position
    assert out['per_lesion']['frac_positions'] == [1.0]
    assert out['covered_everywhere'] == 1 and out['covered_nowhere'] == 0
    assert out['mean_frac_positions'] == 1.0 and out['mean_best_iou'] == 1.0


def test_segments_apart_and_contained():
    # a lesion much smaller than the anchor, 1.5 voxels off: contained
    out = cube_anchor_coverage([1.0], [4], [[4.0]], samples_per_axis=4)
    ious = [_cube_iou(1, 4, [a, b, c]) for a in (1.5, .5, .5, 1.5)
            for b in (1.5, .5, .5, 1.5) for c in (1.5, .5, .5, 1.5)]
    assert set(np.round(ious, 12)) == {1 / 64}
    assert out['mean_best_iou'] == round(1 / 64, 4)
    assert out['per_lesion']['centred_iou'] == [round(1 / 64, 4)]
    # segments that do not overlap: IoU 0, not negative
    out = cube_anchor_coverage([1.0], [8], [[1.0]], samples_per_axis=2)
    assert out['mean_best_iou'] == 0.0
    assert out['per_lesion']['centred_iou'] == [1.0]


def test_levels_and_sizes():
    out = cube_anchor_coverage([6.0, 3.0], [4, 6], [[4.0], [6.0, 3.0]],
                               samples_per_axis=3, iou_thr=0.125)
    assert out['period'] == 12 and out['strides'] == [4, 6]
    assert out['sizes'] == [[4.0], [6.0, 3.0]]
    assert out['per_lesion']['centred_iou'] == [1.0, 1.0]
    assert out['centred_ge_thr'] == 2
    # a centred IoU exactly at the threshold counts
    out = cube_anchor_coverage([2.0], [4], [[1.0]], iou_thr=0.125,
                               samples_per_axis=1)
    assert out['per_lesion']['centred_iou'] == [0.125]
    assert out['centred_ge_thr'] == 1
    out = cube_anchor_coverage([2.0], [4], [[1.0]], iou_thr=0.126,
                               samples_per_axis=1)
    assert out['centred_ge_thr'] == 0
    # the best of several anchors is kept
    out = cube_anchor_coverage([2.0], [4], [[1.0, 2.0, 8.0]],
                               samples_per_axis=1)
    assert out['per_lesion']['centred_iou'] == [1.0]
    assert out['per_lesion']['frac_positions'] == [1.0]


def test_report_rounding_and_types():
    out = cube_anchor_coverage([np.float32(4.123456)], (4.0, ), [[4.0]],
                               samples_per_axis=2.0, iou_thr=1)
    assert out['per_lesion']['diameter'] == [4.1235]
    assert type(out['num_lesions']) is int and type(out['period']) is int
    assert type(out['samples_per_axis']) is int
    assert type(out['iou_thr']) is float and type(out['strides'][0]) is int
    assert type(out['centred_ge_thr']) is int
    assert out['centred_ge_thr'] == 0  # 0.97 < 1
    assert out['per_lesion']['centred_iou'] == [round((4 / 4.123456)**3, 4)]


def test_checks():
    with pytest.raises(ValueError) as err:
        cube_anchor_coverage([], [4], [[4.0]])
    assert str(err.value) == 'cube_anchor_coverage: no lesions'
    with pytest.raises(ValueError) as err:
        cube_anchor_coverage([4.0], [4, 8], [[4.0]])
    assert str(err.value) == '2 strides but 1 size lists'


def test_luna16_diameters(tmp_path):
    path = tmp_path / 'annotations.csv'
    path.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n'
                    '1.2.3,1,2,3,4.5\n1.2.4,1,2,3,10\n')
    d = luna16_diameters(str(path))
    assert d.dtype == np.float64 and d.tolist() == [4.5, 10.0]
    path.write_text('seriesuid,coordX,coordY,coordZ\n1.2.3,1,2,3\n')
    with pytest.raises(ValueError) as err:
        luna16_diameters(str(path))
    assert str(err.value) == f'{path}: no diameter_mm column'
    path.write_text('seriesuid,coordX,coordY,coordZ,diameter_mm\n')
    with pytest.raises(ValueError, match='no diameter_mm column'):
        luna16_diameters(str(path))


def test_axis_distance_off_centre():
    # centres at 1 (+4k): 0.5 is 0.5 away, not 1.5
    np.testing.assert_allclose(
        _axis_distance(np.array([0.5, 3.5]), 4, 0.25), [0.5, 1.5])


def test_negative_overlaps_are_clipped():
    # positions 0.5 .. 7.5: two axes far off (overlap < 0), one close:
    # the product of two negative overlaps must not count
    out = cube_anchor_coverage([1.0], [8], [[1.0]], samples_per_axis=8)
    near = _cube_iou(1, 1, [0.5] * 3)
    assert out['per_lesion']['frac_positions'] == [0.0]
    assert out['mean_best_iou'] == round(near * 8 / 512, 4)


def test_defaults_and_report_rounding():
    out = cube_anchor_coverage([4.0], [4], [[4.0]])
    assert out['samples_per_axis'] == 32 and out['iou_thr'] == 0.5
    out = cube_anchor_coverage([4.0], [4], [[4.0]], samples_per_axis=4)
    assert out['mean_frac_positions'] == 0.125
    # fractions of 27 positions keep 4 decimals
    out = cube_anchor_coverage([4.0], [4], [[4.0]], samples_per_axis=3,
                               iou_thr=0.3)
    frac = out['per_lesion']['frac_positions'][0]
    assert frac == round(frac, 4) and 0 < frac < 1
    assert out['mean_frac_positions'] == frac
    assert round(frac * 27) / 27 != frac  # rounded
    # a column of diameters
    out = cube_anchor_coverage(np.array([[4.0], [2.0]]), [4], [[4.0]],
                               samples_per_axis=1)
    assert out['num_lesions'] == 2
    assert out['per_lesion']['diameter'] == [4.0, 2.0]


def test_narrow_integer_diameters():
    # in uint8, 10 ** 3 would wrap
    out = cube_anchor_coverage(np.array([10], np.uint8), [8], [[5.0]],
                               samples_per_axis=1)
    assert out['per_lesion']['centred_iou'] == [0.125]


def test_a_row_of_diameters():
    out = cube_anchor_coverage([[4.0, 2.0]], [4], [[4.0]],
                               samples_per_axis=1)
    assert out['num_lesions'] == 2
    assert out['per_lesion']['diameter'] == [4.0, 2.0]


def test_positions_are_exactly_the_cell_midpoints():
    # the threshold set to the IoU computed at one sampled position (the
    # midpoints (i + 0.5) * period / n, in floating point) counts there:
    # positions shifted by whole samples are the same modulo the period
    # only up to rounding
    # (and the anchor centres at exactly (j + offset) * stride, by default
    # j + 0.5)
    for stride, n, offset in ((5, 3, 0.25), (3, 1, 0.1), (3, 5, None)):
        kw = {} if offset is None else dict(center_offset=offset)
        dist = _axis_distance((np.arange(n) + 0.5) * stride / n, stride,
                              0.5 if offset is None else offset).tolist()
        thr = _cube_iou(stride, stride, [dist[0], dist[0], dist[-1]])
        ious = [_cube_iou(stride, stride, [a, b, c]) for a in dist
                for b in dist for c in dist]
        out = cube_anchor_coverage([float(stride)], [stride],
                                   [[float(stride)]], samples_per_axis=n,
                                   iou_thr=thr, **kw)
        frac = sum(v >= thr for v in ious) / n**3
        assert out['per_lesion']['frac_positions'] == [round(frac, 4)]


# lesions far smaller than the first level's anchors, near its second size,
# and far larger than the last level's: each level's sizes are pushed to
# their bounds [0.75, 3] * stride
_DIAM = [1.0] * 3 + [8.0] * 3 + [500.0] * 2
_STRIDES = (4, 32)
_SIZES = ((4, 8), (32, ))


def _centred(diam, flat):
    return np.mean([max(min(d, a)**3 / max(d, a)**3 for a in flat)
                    for d in diam])


def test_optimise_cube_sizes_result():
    sizes, iou = optimise_cube_sizes(_DIAM, _STRIDES, _SIZES)
    # the seeded search (scipy as installed)
    assert sizes == ((3.0, 8.36), (95.75, )) and iou == 0.3443
    assert optimise_cube_sizes(_DIAM, _STRIDES, _SIZES, seed=0) == (sizes,
                                                                    iou)
    assert optimise_cube_sizes(_DIAM, _STRIDES, _SIZES, seed=1) != (sizes,
                                                                    iou)
    # the count per level is kept, each level sorted within its bounds
    assert [len(s) for s in sizes] == [2, 1]
    for s, level in zip(_STRIDES, sizes):
        assert list(level) == sorted(level)
        assert all(0.75 * s <= v <= 3 * s for v in level)
        assert all(type(v) is float and v == round(v, 2) for v in level)
    assert sizes[0][0] == pytest.approx(3.0, abs=0.02)
    assert sizes[1][0] == pytest.approx(96.0, abs=0.5)
    # the mean best centred IoU of the returned sizes
    flat = [v for level in sizes for v in level]
    assert type(iou) is float and iou == round(_centred(_DIAM, flat), 4)


def test_optimise_cube_sizes_three_levels_and_a_column():
    # three levels of 1, 2, 1 sizes over disjoint bounds: each level's slice
    diam = np.array([[1.0], [9.0], [30.0], [400.0]])
    sizes, iou = optimise_cube_sizes(diam, (2, 8, 64), ((2, ), (8, 9),
                                                         (64, )))
    assert [len(s) for s in sizes] == [1, 2, 1]
    for s, level in zip((2, 8, 64), sizes):
        assert all(0.75 * s <= v <= 3 * s for v in level)
    flat = [v for level in sizes for v in level]
    assert iou == round(_centred(diam.ravel(), flat), 4)
    # a single lesion and a single size
    sizes, iou = optimise_cube_sizes([6.0], (4, ), ((4, ), ))
    assert sizes[0][0] == pytest.approx(6.0, abs=0.05)
    assert iou == pytest.approx(1.0, abs=1e-3)


def test_optimise_cube_sizes_no_lesions():
    with pytest.raises(ValueError) as err:
        optimise_cube_sizes([], (4, ), ((4, ), ))
    assert str(err.value) == 'optimise_cube_sizes: no lesions'
