# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the LUNA16 bootstrap band (:mod:`...luna16.bootstrap`).

Pinned: the resamples are the official ``np.random.seed`` stream; the two
tails of the band are the official order statistics ``floor(pz n)`` and
``floor((1 - pz) n)`` (clamped to ``n - 1`` when rounding reaches ``n``)
with ``pz = (1 - confidence) / 2``; the grid is ``linspace(0.125, 8,
10000)`` by default, both ends included; ``confidence`` must lie strictly
inside (0, 1) and ``num_resamples`` be at least 1; the chunking changes
nothing; a resample without nodules has NaN sensitivities (and CPM), one
without a detected nodule zeros. Every resample's curve is checked against
its own ``roc_curve(drop_intermediate=False)`` curve on the resampled
entries and the band against the loop transcription of the official
script, on synthetic cases with tied scores, missed nodules, scans without
marks and scans without nodules (docs/mutation_testing.md).
"""
import math

import numpy as np
import pytest

from mmlesion.evaluation.functional import luna16 as L
from mmlesion.evaluation.functional.luna16.bootstrap import LUNA16Bootstrap
from projects.benchmarks.luna16_reference import (reference_luna16,
                                                  rows_to_candidates,
                                                  rows_to_findings)

UIDS = ['a', 'b', 'c', 'd', 'e', 'n1', 'n2', 'empty']
ANN = [
    ('a', 0., 0., 0., 10.),
    ('a', 40., 0., 0., 6.),  # a second nodule of scan a
    ('b', 0., 0., 0., 10.),
    ('c', 0., 0., 0., 8.),  # missed
    ('d', 0., 0., 0., 10.),
    ('e', 0., 0., 0., -1.),  # unknown diameter: 10 mm
]
EXC = [('n1', 30., 0., 0., -1.), ('b', 60., 0., 0., 4.)]
CANDS = [
    ('a', 1., 0., 0., .9),
    ('a', 40., 1., 0., .6),  # tie with the FP of n1
    ('a', 90., 0., 0., .2),
    ('b', 0., 1., 0., .7),
    ('b', 60., 0., 0., .95),  # on an excluded finding
    ('b', 80., 0., 0., .6),
    ('c', 50., 0., 0., .4),
    ('d', 2., 0., 0., .4),  # tie between a TP and the FP of c
    ('d', 0., 0., 0., .3),  # second mark of the same nodule
    ('e', 4.9, 0., 0., .55),
    ('n1', 0., 0., 0., .6),
    ('n1', 30., 0., 0., .8),  # on an excluded finding
    ('n2', 0., 0., 0., .1),
    ('n2', 5., 0., 0., .35),
    ('n2', 60., 0., 0., .97),  # the top entry is an FP
]


def case_match():
    return L.match_luna16(rows_to_candidates(CANDS), rows_to_findings(ANN),
                          rows_to_findings(EXC), UIDS)


def resample_curves(match, idx, grid, rates):
    """Each resample's curve from roc_curve(drop_intermediate=False) on
    the resampled entries (independent of the vectorised counts)."""
    labels, probs, scans = match.entries()
    nod, _, _ = match.per_scan_counts()
    interp, sens_at = [], []
    for row in idx:
        sel = np.concatenate([np.flatnonzero(scans == s) for s in row])
        fps, sens, _ = L.luna16_froc_curve(labels[sel],
                                           probs[sel],
                                           int(nod[row].sum()),
                                           match.num_scans,
                                           drop_intermediate=False)
        interp.append(np.interp(grid, fps, sens))
        sens_at.append(np.interp(rates, fps, sens))
    return np.array(interp, np.float32), np.array(sens_at)


# --- the resamples -----------------------------------------------------------


def test_indices_are_the_official_global_stream():
    idx = L.bootstrap_indices(7, 5, 3)
    assert idx.shape == (5, 7)
    np.random.seed(3)
    for row in idx:
        assert row.tolist() == np.random.randint(7, size=7).tolist()


# --- the two tails -------------------------------------------------------------


def _boot(num_resamples, confidence, cpm=None):
    return LUNA16Bootstrap(fps=None,
                           mean=None,
                           lower=None,
                           upper=None,
                           cpm=np.zeros(num_resamples) if cpm is None else cpm,
                           sens_at=None,
                           num_resamples=num_resamples,
                           seed=0,
                           confidence=confidence)


@pytest.mark.parametrize(
    'n, confidence, expected',
    [
        (1000, 0.95, (25, 975)),
        (10, 0.95, (0, 9)),
        (40, 0.95, (1, 39)),
        (1, 0.95, (0, 0)),
        (4, 0.5, (1, 3)),
        (10, 0.6, (2, 8)),
        # (1 - 0.9) / 2 is 0.04999... in float64: floor(4.999...) = 4, as the
        # official script computes it
        (100, 0.9, (4, 95)),
        # (1 - pz) n rounds to n: clamped to the last resample
        (40, 1 - 2**-53, (0, 39)),
        (3, 1 - 2**-53, (0, 2)),
    ])
def test_band_indices_are_the_official_order_statistics(
        n, confidence, expected):
    assert _boot(n, confidence).band_indices() == expected


def test_cpm_interval_reads_the_sorted_cpms_at_the_band_indices():
    cpm = np.array([.5, .1, .9, .3, .7, .2, .8, .4, .6, 0.])
    lo, hi = _boot(10, 0.6, cpm).cpm_interval()  # indices 2 and 8
    assert (lo, hi) == (0.2, 0.8)
    assert type(lo) is float and type(hi) is float


@pytest.mark.parametrize('confidence', [0.0, 1.0, -0.5, 1.5])
def test_confidence_must_be_strictly_inside_zero_one(confidence):
    with pytest.raises(ValueError,
                       match=r'^confidence must be in \(0, 1\), got '):
        L.bootstrap_froc(case_match(),
                         L.BootstrapSettings(2, confidence=confidence))


@pytest.mark.parametrize('num', [0, -3])
def test_at_least_one_resample(num):
    with pytest.raises(ValueError,
                       match=rf'^num_resamples must be >= 1, got {num}$'):
        L.bootstrap_froc(case_match(), L.BootstrapSettings(num))


def test_confidence_just_inside_the_ends_and_one_resample():
    m = case_match()
    low = L.bootstrap_froc(
        m, L.BootstrapSettings(1, confidence=1e-9, num_points=5))
    high = L.bootstrap_froc(
        m, L.BootstrapSettings(1, confidence=1 - 1e-9, num_points=5))
    for b in (low, high):
        assert b.num_resamples == 1
        assert np.array_equal(b.lower, b.upper)
        assert np.array_equal(b.lower, b.mean)
    assert np.array_equal(low.mean, high.mean)


# --- the band ------------------------------------------------------------------


def test_defaults_grid_and_dtypes():
    b = L.bootstrap_froc(case_match(), L.BootstrapSettings(2))
    assert b.fps.shape == (10000, )
    assert b.fps[0] == 0.125 and b.fps[-1] == 8.0
    assert np.array_equal(b.fps, np.linspace(0.125, 8, 10000))
    assert b.mean.dtype == b.lower.dtype == b.upper.dtype == np.float32
    assert b.mean.shape == b.lower.shape == b.upper.shape == (10000, )
    assert b.cpm.dtype == np.float64 and b.cpm.shape == (2, )
    assert b.sens_at.shape == (2, 7)
    assert (b.seed, b.confidence, b.num_resamples) == (0, 0.95, 2)
    assert L.BOOTSTRAP_FP_RANGE == (0.125, 8.0)
    assert L.BOOTSTRAP_NUM_POINTS == 10000
    # the defaults: seed 0, 1000 resamples, 95 %
    assert np.array_equal(
        b.cpm,
        L.bootstrap_froc(case_match(), L.BootstrapSettings(2, 0)).cpm)


def test_every_resample_curve_and_the_band():
    m = case_match()
    n_res = 41  # more than one chunk of 32
    grid = np.linspace(0.125, 8, 50)
    rates = np.array([0.125, 1., 8., 0.3])
    b = L.bootstrap_froc(
        m,
        L.BootstrapSettings(n_res,
                            seed=5,
                            confidence=0.9,
                            num_points=50,
                            rates=rates))
    idx = L.bootstrap_indices(len(UIDS), n_res, 5)
    interp, sens_at = resample_curves(m, idx, grid, rates)
    assert np.array_equal(b.fps, grid)
    np.testing.assert_allclose(b.sens_at, sens_at, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.cpm, sens_at.mean(1), rtol=0, atol=1e-12)
    by_point = np.sort(interp.T, axis=1)
    lo, hi = math.floor(0.05 * n_res), math.floor(0.95 * n_res)  # 2, 38
    np.testing.assert_allclose(b.lower, by_point[:, lo], rtol=0, atol=2e-7)
    np.testing.assert_allclose(b.upper, by_point[:, hi], rtol=0, atol=2e-7)
    np.testing.assert_allclose(b.mean, by_point.mean(1), rtol=0, atol=2e-7)
    # a real band: the tails differ from each other and from the mean
    assert (b.upper > b.lower).any() and (b.mean > b.lower).any()
    assert (b.upper > b.mean).any()
    assert (b.upper >= b.lower).all()
    # the resamples differ (the seed and the weights are used)
    assert len(np.unique(b.cpm)) > 5
    # the chunking changes nothing
    for chunk in (1, 7, 41, 100):
        other = L.bootstrap_froc(
            m,
            L.BootstrapSettings(n_res,
                                seed=5,
                                confidence=0.9,
                                num_points=50,
                                rates=rates,
                                chunk=chunk))
        assert np.array_equal(other.cpm, b.cpm)
        assert np.array_equal(other.lower, b.lower)
        assert np.array_equal(other.upper, b.upper)
        assert np.array_equal(other.mean, b.mean)


def test_band_equals_the_official_transcription():
    n_res = 30
    ref = reference_luna16(ANN, EXC, UIDS, CANDS, num_boot=n_res, seed=11)
    b = L.bootstrap_froc(case_match(), L.BootstrapSettings(n_res, seed=11))
    assert not np.isnan(ref['boot_mean']).any()
    np.testing.assert_allclose(b.mean, ref['boot_mean'], rtol=0, atol=2e-7)
    np.testing.assert_allclose(b.lower, ref['boot_lb'], rtol=0, atol=2e-7)
    np.testing.assert_allclose(b.upper, ref['boot_ub'], rtol=0, atol=2e-7)
    assert (ref['boot_ub'] > ref['boot_lb']).any()


def test_resamples_without_nodules_or_without_detections():
    # scan p: a detected nodule and an FP; m: a missed nodule and an FP;
    # n: an FP only
    uids = ['p', 'm', 'n']
    ann = rows_to_findings([('p', 0., 0., 0., 10.), ('m', 0., 0., 0., 10.)])
    c = rows_to_candidates([('p', 0., 0., 0., .9), ('p', 50., 0., 0., .5),
                            ('m', 50., 0., 0., .7), ('n', 0., 0., 0., .6)])
    m = L.match_luna16(c, ann, None, uids)
    n_res = 60
    b = L.bootstrap_froc(m, L.BootstrapSettings(n_res, seed=1, num_points=20))
    idx = L.bootstrap_indices(3, n_res, 1)
    no_nodule = np.array([set(r) == {2} for r in idx])
    no_detection = np.array([0 not in r and 1 in r for r in idx])
    assert no_nodule.any() and no_detection.any()
    assert np.isnan(b.cpm[no_nodule]).all()
    assert not np.isnan(b.cpm[~no_nodule]).any()
    assert (b.sens_at[no_detection] == 0).all()
    assert (b.sens_at[~no_detection & ~no_nodule] > 0).any()
    _, sens_at = resample_curves(m, idx, np.linspace(0.125, 8, 20),
                                 np.array(L.LUNA16_FP_RATES))
    np.testing.assert_allclose(b.sens_at, sens_at, rtol=0, atol=1e-12)


def test_no_entry_at_all():
    ann = rows_to_findings([('a', 0., 0., 0., 10.)])
    m = L.match_luna16(rows_to_candidates([]), ann, None, ['a'])
    b = L.bootstrap_froc(m, L.BootstrapSettings(3, num_points=4))
    assert (b.cpm == 0).all() and (b.mean == 0).all()
    # only TP entries, no FP: FPs per scan stay 0 and the sensitivity is read
    # at the curve's last point
    m = L.match_luna16(rows_to_candidates([('a', 0., 0., 0., .5)]), ann, None,
                       ['a'])
    b = L.bootstrap_froc(m, L.BootstrapSettings(2, num_points=4))
    assert (b.cpm == 1).all() and (b.lower == 1).all()
    # only FP entries
    m = L.match_luna16(rows_to_candidates([('a', 50., 0., 0., .5)]), ann, None,
                       ['a'])
    b = L.bootstrap_froc(m, L.BootstrapSettings(2, num_points=4))
    assert (b.cpm == 0).all() and (b.upper == 0).all()


def test_progress_lines(capsys):
    b = L.bootstrap_froc(
        case_match(),
        L.BootstrapSettings(3, num_points=4, progress=True, chunk=2))
    out = capsys.readouterr().out
    assert 'bootstrap: 3/3 (100 %)' in out
    assert np.array_equal(
        b.cpm,
        L.bootstrap_froc(case_match(), L.BootstrapSettings(3,
                                                           num_points=4)).cpm)
    assert capsys.readouterr().out == ''


def test_one_fp_in_all_and_a_tp_last():
    # p: a TP and an FP; q: a TP only, the lowest entry: resamples with 0,
    # 1 and 2 FPs in all, and the curve's last point is a TP
    uids = ['p', 'q']
    ann = rows_to_findings([('p', 0., 0., 0., 10.), ('q', 0., 0., 0., 10.)])
    c = rows_to_candidates([('p', 0., 0., 0., .9), ('p', 50., 0., 0., .5),
                            ('q', 0., 0., 0., .4)])
    m = L.match_luna16(c, ann, None, uids)
    n_res = 12
    rates = np.array([0.125, 0.5, 1., 8.])
    grid = np.linspace(0.125, 8, 30)
    b = L.bootstrap_froc(
        m, L.BootstrapSettings(n_res, seed=4, num_points=30, rates=rates))
    idx = L.bootstrap_indices(2, n_res, 4)
    fps_total = (idx == 0).sum(1)
    assert set(fps_total.tolist()) == {0, 1, 2}
    interp, sens_at = resample_curves(m, idx, grid, rates)
    np.testing.assert_allclose(b.sens_at, sens_at, rtol=0, atol=1e-12)
    by_point = np.sort(interp.T, axis=1)
    np.testing.assert_allclose(b.mean, by_point.mean(1), rtol=0, atol=2e-7)


def test_default_number_of_resamples():
    b = L.bootstrap_froc(case_match(), L.BootstrapSettings(num_points=3))
    assert b.num_resamples == 1000 and b.cpm.shape == (1000, )
