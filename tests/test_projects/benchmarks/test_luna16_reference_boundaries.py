# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the plain LUNA16 reference and its random cases
(:mod:`projects.benchmarks.luna16_reference`).

Pinned without the real CSVs: the reference and the vectorised evaluation
agree on a LUNA16-like synthetic case (curve, counts, band), including the
per-scan cap with a tie at the cut for a small ``max_marks``; the hand
counts of the reference (TPs, FPs, marks on excluded findings, double
detections, missed nodules in the total) on a tiny case; the random case
builds every corner it promises (scans without marks, scans over the cap
with a tie at the 100th/101st mark, marks exactly on a sphere, twins,
marks in excluded findings, probabilities with two decimals, ``num_marks``);
the synthetic annotations have the documented sizes and ranges
(docs/mutation_testing.md).
"""
import math

import numpy as np
import pytest

from mmlesion.evaluation.functional import luna16 as L
from projects.benchmarks.luna16_reference import (
    _on_sphere_x, findings_rows, random_luna16_case, reference_luna16,
    rows_to_candidates, rows_to_findings, synthetic_luna16_annotations)


@pytest.fixture(scope='module')
def synthetic():
    ann, exc, uids = synthetic_luna16_annotations(
        num_scans=40, num_nodule_scans=30, num_nodules=502,
        excluded_per_scan=3, seed=1)
    return ann, exc, uids


@pytest.fixture(scope='module')
def case(synthetic):
    return random_luna16_case(*synthetic, seed=2, big_every=5, max_marks=30)


# --- the synthetic annotations -------------------------------------------------


def test_synthetic_annotations_sizes_and_ranges(synthetic):
    ann, exc, uids = synthetic
    assert uids[:2] == ['1.2.826.0.1.1.0', '1.2.826.0.1.1.1']
    assert len(uids) == 40 and len(set(uids)) == 40
    assert len(ann.seriesuids) == 502 and len(set(ann.seriesuids)) == 30
    assert ann.seriesuids.dtype == object and exc.seriesuids.dtype == object
    assert ann.xyz.shape == (502, 3)
    assert ((ann.diameter_mm >= 3) & (ann.diameter_mm < 30)).all()
    centre = np.array([0., -150., -150.])
    assert (np.abs(ann.xyz - centre) <= 120).all()
    assert len(exc.seriesuids) == 120 and exc.xyz.shape == (120, 3)
    assert (np.abs(exc.xyz - centre) <= 150).all()
    unknown = exc.diameter_mm == -1
    assert 0.5 < unknown.mean() < 0.8
    known = exc.diameter_mm[~unknown]
    assert ((known >= 1) & (known < 10)).all()
    assert set(exc.seriesuids) <= set(uids)


def test_synthetic_annotations_defaults_are_luna16_sized():
    ann, exc, uids = synthetic_luna16_annotations()
    assert len(uids) == 888 and uids[0] == '1.2.826.0.1.0.0'
    assert len(ann.seriesuids) == 1186 and len(set(ann.seriesuids)) == 601
    assert len(exc.seriesuids) == 888 * 40
    again = synthetic_luna16_annotations()
    assert np.array_equal(again[0].xyz, ann.xyz)


# --- the random case -------------------------------------------------------------


def test_random_case_corners(synthetic, case):
    ann, exc, uids = synthetic
    ann_rows, exc_rows, uids2, cands, corners = case
    assert uids2 is uids
    assert exc_rows == findings_rows(exc)
    # three twins, 1 mm from nodules 0, 100 and 500, a mark between each
    assert len(ann_rows) == 502 + 3
    base = findings_rows(ann)
    for j, k in enumerate((0, 100, 500)):
        u, x, y, z, d = base[k]
        assert ann_rows[502 + j] == (u, x + 1.0, y, z, d)
        assert corners['twins'][j] == (u, x + 0.5, y, z)
    marks = {(c[0], c[1], c[2], c[3]) for c in cands}
    assert all(t in marks for t in corners['twins'])
    # marks exactly on a sphere
    assert len(corners['on_radius']) > 5
    for u, x2, y, z in corners['on_radius']:
        assert any(
            r[0] == u and r[2] == y and r[3] == z
            and math.pow(r[1] - x2, 2.) == (r[4] / 2)**2 for r in ann_rows)
    # marks inside excluded findings
    assert len(corners['excluded']) > 10
    for mark in corners['excluded']:
        assert mark[:4] in marks
    # scans without any mark (every 13th, unless a twin's) and over the cap
    counts = {u: 0 for u in uids}
    for c in cands:
        counts[c[0]] += 1
    twin_scans = {t[0] for t in corners['twins']}
    for i, u in enumerate(uids):
        if i % 13 == 0 and u not in twin_scans:
            assert counts[u] == 0
        elif i % 5 == 0:
            assert counts[u] > 100
        else:
            assert counts[u] >= 1  # 1 to 30 random marks, or built ones
    assert sum(v > 100 for v in counts.values()) >= 3
    # probabilities with two decimals, many ties
    probs = np.array([c[4] for c in cands])
    assert np.array_equal(probs, np.round(probs, 2))
    assert len(np.unique(probs)) <= 101 and ((probs >= 0) & (probs <= 1)).all()
    # a tie at the cut in every third scan over 101 marks
    for i, u in enumerate(uids):
        p = np.sort([c[4] for c in cands if c[0] == u])[::-1]
        if len(p) > 101 and i % 3 == 0:
            assert p[99] == p[100]


def test_random_case_is_seeded(synthetic, case):
    again = random_luna16_case(*synthetic, seed=2, big_every=5, max_marks=30)
    assert again[3] == case[3]
    other = random_luna16_case(*synthetic, seed=3, big_every=5, max_marks=30)
    assert other[3] != case[3]


def test_random_case_defaults(synthetic):
    _, _, uids, cands, _ = random_luna16_case(*synthetic)
    counts = np.array([sum(c[0] == u for c in cands) for u in uids])
    # every 7th scan has at least 101 marks (the cap applies)
    assert all(101 <= counts[i] for i in range(0, 40, 7) if i % 13)
    assert (counts[[i for i in range(40) if i % 7 and i % 13]] >= 1).all()


def test_random_case_with_a_fixed_number_of_marks(synthetic):
    _, _, uids, cands, _ = random_luna16_case(*synthetic, seed=0,
                                              num_marks=7)
    counts = {u: 0 for u in uids}
    for c in cands:
        counts[c[0]] += 1
    assert set(counts.values()) == {7}


def test_on_sphere_x():
    assert _on_sphere_x(0.0, 5.0) == 5.0
    assert _on_sphere_x(0.0, 0.0) == 0.0
    # found a few float64 steps away from x + r
    x2 = _on_sphere_x(2.2, 8.0)
    assert x2 is not None and math.pow(2.2 - x2, 2.) == 64.0
    assert x2 != 2.2 + 8.0
    # no float64 x2 squares to r**2 exactly: None
    assert _on_sphere_x(-123.4567, 3.21) is None


# --- the reference against the vectorised evaluation ------------------------------


def test_reference_equals_the_vectorised_evaluation(case):
    ann_rows, exc_rows, uids, cands, _ = case
    ref = reference_luna16(ann_rows, exc_rows, uids, cands, num_boot=6,
                           seed=4)
    res = L.evaluate_luna16(rows_to_candidates(cands),
                            rows_to_findings(ann_rows),
                            rows_to_findings(exc_rows), uids,
                            L.LUNA16Options(num_bootstrap=6, seed=4))
    assert np.array_equal(res.fps, ref['fps'])
    assert np.array_equal(res.sens, ref['sens'])
    assert np.array_equal(res.thresholds, ref['thr'])
    counts = res.counts()
    assert counts['num_detected'] == ref['tps']
    assert counts['num_fp'] == ref['fps_count']
    assert counts['num_nodules'] == ref['total'] == 505
    assert counts['num_irrelevant'] == ref['irrelevant'] > 0
    assert counts['num_double_detections'] == ref['double'] > 0
    assert counts['num_kept'] < counts['num_candidates']
    b = res.bootstrap
    for mine, theirs in ((b.mean, 'boot_mean'), (b.lower, 'boot_lb'),
                         (b.upper, 'boot_ub')):
        assert theirs in ref and ref[theirs].dtype == np.float32
        np.testing.assert_allclose(mine, ref[theirs], rtol=0, atol=2e-7)
    assert (ref['boot_ub'] > ref['boot_lb']).any()
    assert (ref['boot_mean'] > ref['boot_lb']).any()
    assert len(ref['boot_mean']) == 10000
    assert 'boot_mean' not in reference_luna16(ann_rows, exc_rows, uids,
                                               cands)


@pytest.mark.parametrize('max_marks', [2, 3, 4])
def test_reference_cap_with_a_tie_at_the_cut(max_marks):
    uids = ['a', 'b']
    ann = [('a', 0., 0., 0., 10.), ('b', 0., 0., 0., 10.)]
    # scan a: 6 marks, the 4th and 5th largest tied (.5); scan b: 3 marks
    cands = [('a', 0., 0., 0., .5), ('a', 90., 0., 0., .9),
             ('a', 80., 0., 0., .5), ('a', 70., 0., 0., .7),
             ('a', 60., 0., 0., .1), ('a', 50., 0., 0., .6),
             ('b', 0., 0., 0., .2), ('b', 40., 0., 0., .3),
             ('b', 30., 0., 0., .4)]
    ref = reference_luna16(ann, [], uids, cands, max_marks=max_marks)
    res = L.evaluate_luna16(rows_to_candidates(cands), rows_to_findings(ann),
                            None, uids,
                            L.LUNA16Options(max_marks=max_marks,
                                            num_bootstrap=0))
    # cap 2: the cut is .6 in a (a mark follows the 2nd kept one), .2 in b
    assert res.counts()['num_kept'] == {2: 4, 3: 6, 4: 6}[max_marks]
    assert ref['tps'] == res.counts()['num_detected'] == (
        0 if max_marks == 2 else 1)
    assert ref['fps_count'] == res.counts()['num_fp']
    assert np.array_equal(res.fps, ref['fps'])
    if max_marks == 2:
        # no TP: the official tpr is NaN, mmlesion's sensitivity 0
        assert np.isnan(ref['sens']).all() and (res.sens == 0).all()
    else:
        assert np.array_equal(res.sens, ref['sens'])
    # the default cap is 100: every mark kept, the TP of a found
    assert reference_luna16(ann, [], uids, cands)['tps'] == 2


def test_reference_counts_by_hand():
    uids = ['a', 'b', 'n']
    ann = [('a', 0., 0., 0., 10.), ('a', 1., 0., 0., 10.),
           ('b', 0., 0., 0., 10.), ('b', 50., 0., 0., 10.),
           ('zz', 0., 0., 0., 10.)]  # unlisted: ignored
    exc = [('n', 0., 0., 0., -1.), ('zz', 0., 0., 0., 1.)]
    cands = [
        ('a', 0.5, 0., 0., .9),  # TP for both nodules of a
        ('a', 0., 0., 0., .4),  # again both: 2 double detections
        ('b', 0., 0., 0., .6),  # TP
        ('b', 5., 0., 0., .2),  # exactly on the sphere: FP
        ('n', 4.99, 0., 0., .8),  # in the excluded finding (10 mm)
        ('n', 5., 0., 0., .3),  # on its sphere: FP
    ]
    ref = reference_luna16(ann, exc, uids, cands)
    assert (ref['tps'], ref['fps_count'], ref['irrelevant'],
            ref['double'], ref['total']) == (3, 2, 1, 2, 4)
    # a nodule found by its largest mark (.9), a missed one not in the ROC
    assert ref['sens'][-1] == 0.75
    assert ref['fps'][-1] == 2 / 3
    assert ref['thr'][1] == 0.9
    # no FP at all: FPs per scan all zero
    ref = reference_luna16(ann, exc, uids, cands[:3])
    assert (ref['fps'] == 0).all() and ref['sens'][-1] == 0.75


def test_seeded_cases_are_reproducible_snapshots():
    # the benchmark compares runs on these cases: a change of the
    # generators (ranges, corners, counts, rounding) changes them
    ann, exc, uids = synthetic_luna16_annotations(
        num_scans=40, num_nodule_scans=30, num_nodules=502,
        excluded_per_scan=3, seed=1)
    case = random_luna16_case(ann, exc, uids, seed=2, big_every=5,
                              max_marks=30)
    assert ann.xyz.sum() == pytest.approx(-150013.16586892944, abs=1e-6)
    assert ann.diameter_mm.sum() == pytest.approx(8215.245833074807,
                                                  abs=1e-6)
    assert exc.xyz.sum() == pytest.approx(-37276.160073720835, abs=1e-6)
    assert exc.diameter_mm.sum() == pytest.approx(104.81860899452668,
                                                  abs=1e-6)
    assert [uids.index(u) for u in exc.seriesuids[:5]] == [2, 27, 26, 37, 37]
    c = np.array([x[1:] for x in case[3]])
    assert len(c) == 1685
    np.testing.assert_allclose(
        c.sum(0), [-1338.4265575379452, -254548.12342498678,
                   -250108.87396035838, 835.4300000000003], rtol=0,
        atol=1e-6)
    _, _, _, c2, _ = random_luna16_case(ann, exc, uids)  # the defaults
    c2 = np.array([x[1:] for x in c2])
    assert len(c2) == 2478
    np.testing.assert_allclose(
        c2.sum(0), [425.87205162333976, -375628.65127238544,
                    -371175.2581600965, 1219.8799999999997], rtol=0,
        atol=1e-6)


def test_reference_band_tails_and_default_seed(case):
    ann_rows, exc_rows, uids, cands, _ = case
    # 40 resamples: the tails are the 2nd and the 40th sorted values
    ref = reference_luna16(ann_rows, exc_rows, uids, cands, num_boot=40)
    res = L.evaluate_luna16(rows_to_candidates(cands),
                            rows_to_findings(ann_rows),
                            rows_to_findings(exc_rows), uids,
                            # seed 0 on both sides
                            L.LUNA16Options(num_bootstrap=40))
    b = res.bootstrap
    assert np.array_equal(b.lower, ref['boot_lb'])
    assert np.array_equal(b.upper, ref['boot_ub'])
    assert float(np.mean(b.mean == ref['boot_mean'])) > 0.99


def test_reference_diameter_edges():
    uids = ['a']
    cands = [('a', 0., 0., 0., .5), ('a', 2., 0., 0., .4)]
    # 0 mm: nothing inside (0 < 0 is false); 0.5 mm: only the centre mark
    for diameter, tps in ((0.0, 0), (0.5, 1), (-1.0, 1)):
        ref = reference_luna16([('a', 0., 0., 0., diameter)], [], uids,
                               cands)
        assert ref['tps'] == tps
    ref = reference_luna16([('a', 0., 0., 0., 0.5)], [], uids, cands)
    assert ref['fps_count'] == 1 and ref['double'] == 0
    ref = reference_luna16([('a', 0., 0., 0., -1.)], [], uids, cands)
    assert ref['fps_count'] == 0 and ref['double'] == 1
    # no FP: one zero FPs-per-scan value per point of the curve
    assert ref['fps'].shape == ref['sens'].shape and (ref['fps'] == 0).all()


def test_at_most_ten_marks_on_excluded_findings_per_scan():
    ann, exc, uids = synthetic_luna16_annotations(
        num_scans=12, num_nodule_scans=10, num_nodules=501,
        excluded_per_scan=30, seed=4)
    _, exc_rows, _, _, corners = random_luna16_case(ann, exc, uids, seed=1,
                                                    max_marks=5)
    per_scan = {}
    for mark in corners['excluded']:
        per_scan[mark[0]] = per_scan.get(mark[0], 0) + 1
    assert max(per_scan.values()) == 10
    # each lies inside its excluded finding (10 mm for diameter -1)
    for mark in corners['excluded']:
        assert any(
            e[0] == mark[0] and sum((a - b)**2 for a, b in zip(
                e[1:4], mark[1:4])) < ((10.0 if e[4] < 0 else e[4]) / 2)**2
            for e in exc_rows)
