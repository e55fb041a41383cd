# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the LUNA16 matching (:mod:`...functional.luna16.matching`).

Pinned: the hit test is strict (a mark exactly on the sphere misses, one a
float64 step inside hits) with a radius of half the diameter, any diameter
``< 0`` is 10 mm while 0 hits nothing; the per-scan cap keeps exactly
``max_marks`` marks, drops every mark tied at the cut, applies per scan
(only the scans over the cap lose marks, whatever the row order) and is off
for ``max_marks <= 0``; marks of unlisted scans are an error by default
(naming the row and the UID) or never kept with ``unknown='ignore'``;
nodules and excluded findings of unlisted scans are ignored; a mark hitting
a nodule and an excluded finding is a TP; a nodule's probability is the
largest of its marks; a dropped (capped) mark hits nothing; the ROC
entries and per-scan counts. Synthetic findings only
(docs/mutation_testing.md).
"""
import numpy as np
import pytest

from mmlesion.evaluation.functional import luna16 as L
from tests.helpers.luna16_rows import cands, findings


# --- constants ---------------------------------------------------------------


def test_constants_of_the_official_script():
    assert L.MAX_MARKS_PER_SCAN == 100
    assert L.UNKNOWN_DIAMETER_MM == 10.0
    assert (L.MARK_TP, L.MARK_IRRELEVANT, L.MARK_FP) == (1, 0, -1)


# --- scan_indices ------------------------------------------------------------


def test_scan_indices_error_names_the_first_unlisted_row():
    uids = np.array(['a', 'x', 'b', 'y'], dtype=object)
    with pytest.raises(ValueError,
                       match=r'^my\.csv, data row 2: seriesuid x is not in '
                       r'the seriesuids list \(2 scans\)$'):
        L.scan_indices(uids, ['a', 'b'], 'my.csv')
    with pytest.raises(ValueError, match=r'^candidates, data row 2'):
        L.scan_indices(uids, ['a', 'b'])  # default: error, 'candidates'
    out = L.scan_indices(uids, ['b', 'a'], unknown='ignore')
    assert out.dtype == np.int64 and out.tolist() == [1, -1, 0, -1]
    assert L.scan_indices(np.array(['a'], object), ['a', 'b'],
                          'f').tolist() == [0]
    assert L.scan_indices(np.array([], object), ['a']).shape == (0, )


@pytest.mark.parametrize('bad', ['Error', 'drop', None])
def test_scan_indices_refuses_other_unknown_modes(bad):
    with pytest.raises(ValueError,
                       match=r"^unknown must be 'error' or 'ignore', got "):
        L.scan_indices(np.array(['a'], object), ['a'], unknown=bad)


# --- cap_marks ---------------------------------------------------------------


def test_cap_keeps_exactly_max_marks_and_drops_the_rest():
    probs = np.arange(6, dtype=float)[::-1] / 10  # .5 .4 .3 .2 .1 0
    scans = np.zeros(6, np.int64)
    assert L.cap_marks(scans, probs, 3).tolist() == [1, 1, 1, 0, 0, 0]
    assert L.cap_marks(scans, probs, 5).tolist() == [1, 1, 1, 1, 1, 0]
    assert L.cap_marks(scans, probs, 6).all()  # exactly at the cap
    assert L.cap_marks(scans, probs, 7).all()
    # ties at the cut: the 3rd and 4th largest equal -> both dropped
    tied = np.array([.5, .4, .3, .3, .1, 0.])
    assert L.cap_marks(scans, tied, 3).tolist() == [1, 1, 0, 0, 0, 0]
    # a tie above the cut is kept
    tied = np.array([.5, .5, .3, .2, .1, 0.])
    assert L.cap_marks(scans, tied, 3).tolist() == [1, 1, 1, 0, 0, 0]


def test_cap_default_is_100():
    scans = np.zeros(101, np.int64)
    probs = np.linspace(1, 0, 101)
    keep = L.cap_marks(scans, probs)
    assert keep.sum() == 100 and not keep[-1]
    assert L.cap_marks(scans[:100], probs[:100]).all()


@pytest.mark.parametrize('max_marks', [0, -1])
def test_cap_off_for_non_positive_max_marks(max_marks):
    scans = np.array([0, 0, 0, -1])
    keep = L.cap_marks(scans, np.array([.1, .2, .3, .4]), max_marks)
    assert keep.dtype == bool and keep.tolist() == [True, True, True, False]


def test_cap_applies_per_scan_in_any_row_order():
    # scan 1 has 3 marks (over a cap of 2), scans 0 and 2 have 2 and 1;
    # the rows interleave and scan 1 is not the first
    scans = np.array([1, 0, 1, 2, 0, 1, -1, -1, -1])
    probs = np.array([.2, .1, .9, .05, .15, .5, .99, .98, .97])
    keep = L.cap_marks(scans, probs, 2)
    assert keep.tolist() == [0, 1, 1, 1, 1, 1, 0, 0, 0]
    # two scans over the cap, each cut at its own third largest
    scans = np.array([0, 0, 0, 1, 1, 1, 1])
    probs = np.array([.3, .2, .1, .9, .8, .7, .6])
    assert L.cap_marks(scans, probs, 2).tolist() == [1, 1, 0, 1, 1, 0, 0]
    # the over-full scan is scan 0, unlisted marks present
    scans = np.array([-1, 0, 0, 0, 1])
    probs = np.array([.9, .3, .2, .1, .01])
    assert L.cap_marks(scans, probs, 2).tolist() == [0, 1, 1, 0, 1]


def test_cap_with_only_unlisted_marks_keeps_nothing():
    keep = L.cap_marks(np.array([-1, -1]), np.array([.5, .6]), 1)
    assert keep.tolist() == [False, False]
    assert L.cap_marks(np.zeros(0, np.int64), np.zeros(0), 1).shape == (0, )


def test_cap_accepts_lists():
    assert L.cap_marks([0, 0, 0], [.3, .2, .1], 2).tolist() == [1, 1, 0]


# --- same_scan_pairs ---------------------------------------------------------


def test_same_scan_pairs_in_a_order_then_b_order():
    a = np.array([1, -1, 0, 1])
    b = np.array([1, 0, -1, 1, 2])
    ia, ib = L.same_scan_pairs(a, b)
    assert ia.dtype == np.int64 and ib.dtype == np.int64
    assert list(zip(ia.tolist(), ib.tolist())) == [(0, 0), (0, 3), (2, 1),
                                                   (3, 0), (3, 3)]
    assert list(L.same_scan_pairs([2, 2], [0, 2, 1, 2])[1]) == [1, 3, 1, 3]


def test_same_scan_pairs_empty_sides():
    for a, b in (([], [0]), ([0], []), ([], [])):
        ia, ib = L.same_scan_pairs(np.array(a, np.int64), np.array(b,
                                                                   np.int64))
        assert ia.shape == ib.shape == (0, )
        assert ia.dtype == ib.dtype == np.int64
    ia, ib = L.same_scan_pairs(np.array([-1, -1]), np.array([-1, 0]))
    assert len(ia) == len(ib) == 0
    # the largest scan index may be only on the a side or only on the b side
    assert L.same_scan_pairs([3], [0, 3])[1].tolist() == [1]
    assert L.same_scan_pairs([0, 3], [3])[0].tolist() == [1]


# --- the hit test ------------------------------------------------------------


def _outcome(diameter, dx, **kw):
    nod = findings([('a', 0., 0., 0., diameter)])
    c = cands([('a', dx, 0., 0., 0.5)])
    return L.match_luna16(c, nod, None, ['a'],
                         L.MatchSettings(**kw)).outcome[0]


def test_a_mark_exactly_on_the_sphere_misses():
    assert _outcome(10.0, 5.0) == L.MARK_FP  # 25 < 25 is false
    assert _outcome(10.0, np.nextafter(5.0, 0)) == L.MARK_TP
    assert _outcome(10.0, -np.nextafter(5.0, 0)) == L.MARK_TP
    assert _outcome(10.0, 0.0) == L.MARK_TP
    # the radius is half the diameter, not the diameter
    assert _outcome(10.0, 6.0) == L.MARK_FP
    assert _outcome(4.0, 1.99) == L.MARK_TP and _outcome(4.0, 2.0) == L.MARK_FP


def test_each_axis_counts_in_the_distance():
    nod = findings([('a', 1., 2., 3., 2.0)])  # radius 1
    for d in np.eye(3):
        inside = cands([('a', *(np.array([1., 2., 3.]) + 0.9 * d), .5)])
        out = cands([('a', *(np.array([1., 2., 3.]) + 1.0 * d), .5)])
        assert L.match_luna16(inside, nod, None,
                              ['a']).outcome[0] == L.MARK_TP
        assert L.match_luna16(out, nod, None, ['a']).outcome[0] == L.MARK_FP
    # the squares add up: 0.6**2 * 3 = 1.08 >= 1
    diag = cands([('a', 1.6, 2.6, 3.6, .5)])
    assert L.match_luna16(diag, nod, None, ['a']).outcome[0] == L.MARK_FP
    diag = cands([('a', 1.5, 2.5, 3.5, .5)])  # 0.75 < 1
    assert L.match_luna16(diag, nod, None, ['a']).outcome[0] == L.MARK_TP


def test_negative_diameter_is_10mm_and_zero_hits_nothing():
    for diameter in (-1.0, -0.001, -50.0):
        assert _outcome(diameter, 4.99) == L.MARK_TP
        assert _outcome(diameter, 5.0) == L.MARK_FP
    assert _outcome(0.0, 0.0) == L.MARK_FP  # 0 < 0 is false
    assert _outcome(0.001, 0.0) == L.MARK_TP


def test_excluded_finding_hit_is_strict_and_uses_10mm_for_unknown():
    nod = findings([])
    for diameter, dx, expected in ((-1.0, 4.99, L.MARK_IRRELEVANT),
                                   (-1.0, 5.0, L.MARK_FP),
                                   (2.0, 0.99, L.MARK_IRRELEVANT),
                                   (2.0, 1.0, L.MARK_FP)):
        exc = findings([('a', 0., 0., 0., diameter)])
        c = cands([('a', dx, 0., 0., .5)])
        assert L.match_luna16(c, nod, exc, ['a']).outcome[0] == expected


# --- match_luna16 ------------------------------------------------------------


def test_match_outcomes_and_nodule_results():
    uids = ['s0', 's1', 's2']
    nod = findings([
        ('s0', 0., 0., 0., 10.),  # hit by two marks
        ('s0', 100., 0., 0., 10.),  # missed
        ('s1', 0., 0., 0., 10.),  # its mark is also in an excluded finding
        ('zz', 0., 0., 0., 10.),  # unlisted scan: ignored
    ])
    exc = findings([
        ('s1', 0., 0., 0., -1.),
        ('s2', 50., 0., 0., 4.),
        ('s0', 200., 0., 0., -1.),  # only an FP... see mark 4
        ('zz', 0., 0., 0., 100.),  # unlisted: ignored
    ])
    c = cands([
        ('s0', 1., 0., 0., 0.3),
        ('s0', -1., 0., 0., 0.7),
        ('s1', 0., 0., 0., 0.2),
        ('s2', 50., 1., 0., 0.6),  # irrelevant
        ('s0', 200., 0., 0., 0.1),  # irrelevant
        ('s2', 0., 0., 0., 0.4),  # FP (no finding of s2 there)
    ])
    m = L.match_luna16(c, nod, exc, uids)
    assert m.num_scans == 3
    assert m.outcome.dtype == np.int8
    assert m.outcome.tolist() == [1, 1, 1, 0, 0, -1]
    assert m.kept.all()
    assert m.cand_scan.tolist() == [0, 0, 1, 2, 0, 2]
    assert m.nodule_scan.tolist() == [0, 0, 1]
    assert m.nodule_prob.tolist() == [0.7, -np.inf, 0.2]
    assert m.nodule_hits.dtype == np.int64
    assert m.nodule_hits.tolist() == [2, 0, 1]
    assert m.detected.tolist() == [True, False, True]
    assert m.is_fp.tolist() == [0, 0, 0, 0, 0, 1]
    labels, probs, scans = m.entries()
    assert labels.dtype == np.float64
    assert labels.tolist() == [1., 1., 0.]
    assert probs.tolist() == [0.7, 0.2, 0.4]
    assert scans.tolist() == [0, 1, 2]
    nods, det, fps = m.per_scan_counts()
    assert nods.tolist() == [2, 1, 0] and det.tolist() == [1, 1, 0]
    assert fps.tolist() == [0, 0, 1]
    assert m.probability.dtype == np.float64


def test_one_mark_in_two_nodules_is_a_tp_for_both():
    nod = findings([('a', 0., 0., 0., 10.), ('a', 1., 0., 0., 10.)])
    c = cands([('a', 0.5, 0., 0., 0.4)])
    m = L.match_luna16(c, nod, None, ['a'])
    assert m.nodule_hits.tolist() == [1, 1]
    assert m.nodule_prob.tolist() == [0.4, 0.4]
    assert m.entries()[0].tolist() == [1., 1.]


def test_capped_marks_hit_nothing_and_are_not_fps():
    nod = findings([('a', 0., 0., 0., 10.)])
    exc = findings([('a', 50., 0., 0., 10.)])
    c = cands([('a', 0., 0., 0., 0.1), ('a', 50., 0., 0., 0.2),
               ('a', 90., 0., 0., 0.9)])
    m = L.match_luna16(c, nod, exc, ['a'], L.MatchSettings(max_marks=1))
    assert m.kept.tolist() == [False, False, True]
    assert m.nodule_hits.tolist() == [0] and m.nodule_prob[0] == -np.inf
    assert m.outcome.tolist() == [L.MARK_FP, L.MARK_FP, L.MARK_FP]
    assert m.is_fp.tolist() == [False, False, True]
    # default cap 100: all three kept
    assert L.match_luna16(c, nod, exc, ['a']).kept.all()


def test_unlisted_candidates_error_or_ignored():
    nod = findings([('a', 0., 0., 0., 10.)])
    c = cands([('a', 0., 0., 0., 0.5), ('zz', 0., 0., 0., 0.9)])
    with pytest.raises(ValueError, match=r'^preds\.csv, data row 2: '
                       r'seriesuid zz is not in the seriesuids list'):
        L.match_luna16(c, nod, None, ['a'],
                       L.MatchSettings(source='preds.csv'))
    with pytest.raises(ValueError, match=r'^candidates, data row 2'):
        L.match_luna16(c, nod, None, ('a', ))
    m = L.match_luna16(c, nod, None, iter(['a']),
                       L.MatchSettings(unknown='ignore'))
    assert m.kept.tolist() == [True, False]
    assert m.cand_scan.tolist() == [0, -1]
    assert m.num_scans == 1 and m.is_fp.tolist() == [False, False]
    # a scan of the list without any nodule or mark still counts
    m = L.match_luna16(c, nod, None, ['a', 'b', 'zz'])
    assert m.num_scans == 3 and m.per_scan_counts()[0].tolist() == [1, 0, 0]


def test_empty_excluded_and_no_candidates():
    nod = findings([('a', 0., 0., 0., 10.)])
    c = cands([('a', 0., 0., 0., 0.5)])
    for exc in (None, findings([])):
        m = L.match_luna16(c, nod, exc, ['a'])
        assert m.outcome.tolist() == [L.MARK_TP]
    m = L.match_luna16(cands([]), nod, findings([('a', 0., 0., 0., 1.)]),
                       ['a'])
    assert m.outcome.shape == (0, ) and m.nodule_hits.tolist() == [0]
    labels, probs, scans = m.entries()
    assert labels.shape == probs.shape == scans.shape == (0, )


def test_nodule_and_excluded_rows_order_does_not_matter():
    # excluded findings listed for a scan after the nodules' scan
    nod = findings([('b', 0., 0., 0., 10.), ('a', 0., 0., 0., 10.)])
    exc = findings([('b', 20., 0., 0., 10.), ('a', 20., 0., 0., 10.)])
    c = cands([('a', 20., 0., 0., .5), ('b', 1., 0., 0., .6),
               ('a', 1., 0., 0., .7), ('b', 20., 0., 0., .8)])
    m = L.match_luna16(c, nod, exc, ['a', 'b'])
    assert m.outcome.tolist() == [0, 1, 1, 0]
    assert m.nodule_scan.tolist() == [1, 0]
    assert m.nodule_prob.tolist() == [0.6, 0.7]


def test_float_typed_scan_indices_are_accepted():
    # scan indices are cast to int64 (e.g. from a float array)
    keep = L.cap_marks(np.array([0., 0., 0., 1.]), [.3, .2, .1, .5], 2)
    assert keep.tolist() == [True, True, False, True]
    ia, ib = L.same_scan_pairs(np.array([1., 0.]), np.array([0., 1., 1.]))
    assert ia.tolist() == [0, 0, 1] and ib.tolist() == [1, 2, 0]


def test_a_scan_exactly_at_the_cap_keeps_every_mark():
    # scan 0 has exactly 3 marks (not capped: even a mark of probability
    # -inf is kept) while scan 1, with 4, is capped
    scans = np.array([0, 0, 0, 1, 1, 1, 1])
    probs = np.array([.5, -np.inf, .2, .4, .3, .2, .1])
    assert L.cap_marks(scans, probs, 3).tolist() == [1, 1, 1, 1, 1, 1, 0]
    assert L.cap_marks(scans[:3], probs[:3],
                       2).tolist() == [True, False, True]


def test_same_scan_pairs_keep_b_order_within_a_scan():
    # many b elements of two scans, interleaved: within a scan, b's order
    b = np.tile([1, 0], 300)
    ia, ib = L.same_scan_pairs(np.array([0, 1]), b)
    assert ib[ia == 0].tolist() == list(range(1, 600, 2))
    assert ib[ia == 1].tolist() == list(range(0, 600, 2))


def test_dropped_marks_hit_no_other_scan():
    # a capped mark of scan a lies on scan b's nodule: it hits nothing
    nod = findings([('b', 0., 0., 0., 10.)])
    exc = findings([('b', 50., 0., 0., 10.)])
    c = cands([('a', 0., 0., 0., 0.1), ('a', 50., 0., 0., 0.05),
               ('a', 90., 0., 0., 0.9)])
    m = L.match_luna16(c, nod, exc, ['a', 'b'], L.MatchSettings(max_marks=1))
    assert m.nodule_hits.tolist() == [0]
    assert m.outcome.tolist() == [L.MARK_FP, L.MARK_FP, L.MARK_FP]
    # unlisted marks neither
    c = cands([('zz', 0., 0., 0., 0.1)])
    m = L.match_luna16(c, nod, None, ['a', 'b'],
                       L.MatchSettings(unknown='ignore'))
    assert m.nodule_hits.tolist() == [0]


def _float32_edge():
    """A float32 diameter and an offset whose square lies between the
    float32 and the float64 square of the radius."""
    for d in np.linspace(3, 30, 2000, dtype=np.float32):
        r64 = (np.float64(d) / 2.0)**2
        r32 = np.float64(np.square(d / np.float32(2.0)))
        if r32 < r64:
            dx = np.sqrt(r64)
            while dx * dx >= r64:
                dx = np.nextafter(dx, 0)
            if r32 < dx * dx < r64:
                return d, dx
    raise AssertionError('no float32 edge found')


def test_float32_inputs_are_matched_in_float64():
    d, dx = _float32_edge()
    nod = L.LUNA16Findings(np.array(['a'], object),
                           np.zeros((1, 3), np.float32),
                           np.array([d], np.float32))
    c = L.LUNA16Candidates(np.array(['a'], object),
                           np.array([[dx, 0., 0.]]),
                           np.array([0.5], np.float32))
    m = L.match_luna16(c, nod, None, ['a'])
    assert m.outcome.tolist() == [L.MARK_TP]
    assert m.probability.dtype == np.float64
    m = L.match_luna16(c, findings([]), nod, ['a'])
    assert m.outcome.tolist() == [L.MARK_IRRELEVANT]


def test_unsigned_probabilities_are_ranked_as_numbers():
    # negating an unsigned array would wrap 0 to the top: cast first
    probs = np.array([0, 2, 1], dtype=np.uint8)
    assert L.cap_marks(np.zeros(3, np.int64), probs,
                       2).tolist() == [False, True, True]
