# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 evaluation against a plain transcription of the official script.

``projects.benchmarks.luna16_reference.reference_luna16`` is a direct loop
transcription (Python 3) of ``noduleCADEvaluationLUNA16.py`` (cap, matching
loop, ``computeFROC``, ``computeFROC_bootstrap``, ``compute_mean_ci``); it
lives beside the other references so that the benchmark uses it too. The
vectorised functions must give the same numbers on random candidates around
the real ``annotations.csv`` with every odd corner built in.
"""
import csv

import numpy as np
import pytest

from mmlesion.evaluation.functional import luna16 as L
from mmlesion.testing import shared_data_root
from projects.benchmarks.luna16_reference import (random_luna16_case,
                                                  reference_luna16,
                                                  rows_to_candidates,
                                                  rows_to_findings)

RATES = [0.125, 0.25, 0.5, 1, 2, 4, 8]


# --------------------------------------------------------------- data
def _luna_dir():
    root = shared_data_root()
    if root is None or not (root / 'luna16' / 'annotations.csv').is_file():
        pytest.skip('real LUNA16 CSVs ($MMLESION_SHARED_DATA/luna16) not available')
    return root / 'luna16'


def _real():
    d = _luna_dir()
    return (L.read_findings_csv(str(d / 'annotations.csv')),
            L.read_findings_csv(str(d / 'annotations_excluded.csv'),
                                allow_duplicates=True),
            L.read_seriesuids_csv(str(d / 'seriesuids.csv')))


@pytest.fixture(scope='module')
def case():
    return random_luna16_case(*_real(), seed=0)


# --------------------------------------------------------------- tests
def test_real_file_counts():
    d = _luna_dir()
    ann = L.read_findings_csv(str(d / 'annotations.csv'))
    exc = L.read_findings_csv(str(d / 'annotations_excluded.csv'),
                              allow_duplicates=True)
    uids = L.read_seriesuids_csv(str(d / 'seriesuids.csv'))
    assert len(ann.seriesuids) == 1186
    assert len(set(ann.seriesuids)) == 601
    assert len(uids) == 888
    assert len(exc.seriesuids) == 35192
    assert (exc.diameter_mm < 0).sum() > 0  # -1 = unknown diameter
    assert set(ann.seriesuids) <= set(uids)


def test_identical_to_reference(case):
    ann_rows, exc_rows, uids, cands, corners = case
    ref = reference_luna16(ann_rows, exc_rows, uids, cands, num_boot=12,
                           seed=3)
    res = L.evaluate_luna16(
        rows_to_candidates(cands), rows_to_findings(ann_rows),
        rows_to_findings(exc_rows), uids,
        L.LUNA16Options(num_bootstrap=12, seed=3))
    # the curve is the same roc_curve output with the same scaling
    assert np.array_equal(res.fps, ref['fps'])
    assert np.array_equal(res.sens, ref['sens'])
    assert np.array_equal(res.thresholds, ref['thr'])
    ref_at = np.interp(RATES, ref['fps'], ref['sens'])
    assert np.array_equal(res.sens_at, ref_at)
    assert res.cpm == float(np.mean(ref_at))
    counts = res.counts()
    assert counts['num_detected'] == ref['tps']
    assert counts['num_fp'] == ref['fps_count']
    assert counts['num_nodules'] == ref['total'] == 1186 + 3
    assert counts['num_irrelevant'] == ref['irrelevant']
    assert counts['num_double_detections'] == ref['double']
    # the corners were really built
    assert counts['num_irrelevant'] > 0 and counts['num_double_detections']
    assert counts['num_kept'] < counts['num_candidates']  # cap applied
    assert len(corners['on_radius']) > 10
    # bootstrap band: same resamples (same RandomState stream); equal up to
    # the rounding of dropped collinear points (then float32)
    b = res.bootstrap
    np.testing.assert_allclose(b.mean, ref['boot_mean'], rtol=0, atol=2e-7)
    np.testing.assert_allclose(b.lower, ref['boot_lb'], rtol=0, atol=2e-7)
    np.testing.assert_allclose(b.upper, ref['boot_ub'], rtol=0, atol=2e-7)
    assert (b.upper >= b.lower).all()
    assert float(np.mean(b.upper == ref['boot_ub'])) > 0.999


def test_corners_by_construction(case):
    ann_rows, exc_rows, uids, cands, corners = case
    match = L.match_luna16(
        rows_to_candidates(cands), rows_to_findings(ann_rows),
        rows_to_findings(exc_rows), uids)
    key = {(c[0], c[1], c[2], c[3]): i for i, c in enumerate(cands)}
    # a mark between two overlapping nodules is a TP for both
    for t in corners['twins']:
        i = key[(t[0], t[1], t[2], t[3])]
        if match.kept[i]:
            assert match.outcome[i] == L.MARK_TP
    twin_nodules = [len(ann_rows) - 3 + j for j in range(3)]
    assert match.detected[twin_nodules].all()
    # a mark exactly on the sphere is not a hit (strict test)
    on_r = [key[c] for c in corners['on_radius']]
    assert all(match.outcome[i] != L.MARK_TP for i in on_r
               if not _inside_any(cands[i], ann_rows))
    # marks inside excluded findings only are dropped, not FPs
    exc_marks = [key[c] for c in corners['excluded']]
    dropped = [i for i in exc_marks if match.kept[i]
               and not _inside_any(cands[i], ann_rows)]
    assert dropped and all(match.outcome[i] == L.MARK_IRRELEVANT
                           for i in dropped)
    # scans without candidates still count: 888 scans in the denominator
    assert match.num_scans == 888


def _inside_any(cand, ann_rows):
    for a in ann_rows:
        if a[0] != cand[0]:
            continue
        d = ((a[1] - cand[1])**2 + (a[2] - cand[2])**2) + (a[3] - cand[3])**2
        if d < (a[4] / 2)**2:
            return True
    return False


def test_cap_strictly_greater_than_101st():
    scans = np.zeros(103, dtype=np.int64)
    probs = np.linspace(1, 0.0, 103)
    keep = L.cap_marks(scans, probs)
    assert keep.sum() == 100 and keep[:100].all()
    probs[99] = probs[100]  # 100th and 101st tie: both dropped
    keep = L.cap_marks(scans, probs)
    assert keep.sum() == 99 and not keep[99] and not keep[100]
    assert L.cap_marks(scans[:100], probs[:100]).all()  # <= 100: all kept


def test_diameter_minus_one_is_10mm():
    uids = ['a']
    nod = L.LUNA16Findings(np.array(['a'], object), np.zeros((1, 3)),
                           np.array([-1.0]))
    cands = L.LUNA16Candidates(
        np.array(['a', 'a'], object), np.array([[4.9, 0, 0], [5.0, 0, 0]]),
        np.array([0.9, 0.8]))
    m = L.match_luna16(cands, nod, None, uids)
    assert m.outcome.tolist() == [L.MARK_TP, L.MARK_FP]


def test_missed_nodule_counts_but_not_in_roc():
    uids = ['a', 'b']
    nod = L.LUNA16Findings(np.array(['a', 'b'], object),
                           np.array([[0., 0, 0], [0, 0, 0]]),
                           np.array([10.0, 10.0]))
    cands = L.LUNA16Candidates(
        np.array(['a', 'a', 'b'], object),
        np.array([[0., 0, 0], [50, 0, 0], [60, 0, 0]]),
        np.array([0.9, 0.5, 0.4]))
    res = L.evaluate_luna16(cands, nod, None, uids,
                            L.LUNA16Options(num_bootstrap=0))
    assert res.counts()['num_detected'] == 1
    assert res.sens.max() == 0.5  # 1 of 2 nodules
    # FPs per scan: 2 FPs over 2 scans = 1 at the end
    assert res.fps.max() == 1.0
    assert res.sens_at[0] == 0.5  # the TP comes first


def test_tnp():
    uids = ['a', 'neg1', 'neg2']
    nod = L.LUNA16Findings(np.array(['a'], object), np.zeros((1, 3)),
                           np.array([10.0]))
    cands = L.LUNA16Candidates(
        np.array(['a', 'neg1', 'neg2'], object),
        np.array([[0., 0, 0], [50, 0, 0], [60, 0, 0]]),
        np.array([0.5, 0.6, 0.4]))
    tnp = L.true_negative_patients(
        L.match_luna16(cands, nod, None, uids))
    # threshold 0.5 reaches sensitivity 1: neg1 (0.6) is flagged, neg2 not
    assert tnp['threshold'] == 0.5 and tnp['num_negative_scans'] == 2
    assert tnp['tnp'] == 0.5


def test_bad_csv_rows(tmp_path):
    p = tmp_path / 'c.csv'
    p.write_text('seriesuid,coordX,coordY,coordZ,probability\n'
                 'a,1,2,3,0.5\na,1,x,3,0.5\n')
    with pytest.raises(ValueError, match=r"c.csv line 3: field 'coordY'"):
        L.read_candidates_csv(str(p))
    p.write_text('seriesuid,coordX,coordY,coordZ\na,1,2,3\n')
    with pytest.raises(ValueError, match='probability'):
        L.read_candidates_csv(str(p))
    p.write_text('seriesuid,coordX,coordY,coordZ,probability\na,1,2,3,nan\n')
    with pytest.raises(ValueError, match='not finite'):
        L.read_candidates_csv(str(p))
    cands = L.LUNA16Candidates(np.array(['zzz'], object), np.zeros((1, 3)),
                               np.ones(1))
    with pytest.raises(ValueError, match='zzz is not in the seriesuids'):
        L.match_luna16(cands, rows_to_findings([]), None, ['a'])


def test_candidates_csv_round_trip(tmp_path):
    xyz = np.random.default_rng(0).normal(size=(5, 3)) * 100
    prob = np.random.default_rng(1).uniform(size=5)
    L.write_candidates_csv(str(tmp_path / 'c.csv'), ['u'] * 5, xyz, prob)
    back = L.read_candidates_csv(str(tmp_path / 'c.csv'))
    assert np.array_equal(back.xyz, xyz) and np.array_equal(
        back.probability, prob)
    with open(tmp_path / 'c.csv') as f:
        assert next(csv.reader(f)) == [
            'seriesuid', 'coordX', 'coordY', 'coordZ', 'probability']
