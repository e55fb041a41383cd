# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the one-call LUNA16 evaluation (:mod:`...luna16.evaluate`).

Pinned: the documented defaults (100 marks per scan, 1000 resamples with
seed 0 and 95 % confidence, TNP at 0.95, unknown scans an error), the
headline CPM as the mean of the sensitivities exactly at the seven rates
1/8 .. 8, ``num_bootstrap <= 0`` giving no band, CSV paths read with the
right options (a repeated nodule refused, repeated excluded findings
accepted, the candidates' file named in errors), the counts (double
detections, marks on excluded findings, capped marks, unlisted marks) and
the JSON summary (NaN as ``null``, the band read at the seven rates, the
resamples without nodules). Synthetic cases only
(docs/mutation_testing.md).
"""
import json
import math

import numpy as np
import pytest

from mmlesion.evaluation.functional import luna16 as L
from projects.benchmarks.luna16_reference import (
    reference_luna16, rows_to_candidates, rows_to_findings)

UIDS = ['a', 'b', 'n1', 'n2']
ANN = [('a', 0., 0., 0., 10.), ('a', 1., 0., 0., 10.),
       ('b', 0., 0., 0., 10.), ('b', 50., 0., 0., 10.)]
EXC = [('n1', 0., 0., 0., -1.), ('n1', 0., 0., 0., -1.)]  # repeated row
CANDS = [
    ('a', 0.5, 0., 0., .9),  # TP for both nodules of a
    ('a', 0., 0., 0., .4),  # a second mark of both: 2 double detections
    ('b', 0., 0., 0., .6),  # TP
    ('b', 90., 0., 0., .7),  # FP
    ('n1', 1., 0., 0., .8),  # on the excluded finding
    ('n1', 50., 0., 0., .3),  # FP
    ('n2', 0., 0., 0., .6),  # FP tied with the TP of b
]
OPTIONS = dict(
    max_marks=100,
    hit_test='squared distance < radius^2 (strict)',
    unknown_diameter_mm=10.0,
    excluded_marks='dropped (neither TP nor FP)',
    roc='sklearn.metrics.roc_curve(drop_intermediate=True)',
    fp_rates=[0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0],
    num_bootstrap=0,
    seed=0,
    confidence=0.95,
    tnp_sensitivity=0.95,
    unknown_seriesuids='error')


def evaluate(**kw):
    kw.setdefault('num_bootstrap', 0)
    return L.evaluate_luna16(rows_to_candidates(CANDS), rows_to_findings(ANN),
                             rows_to_findings(EXC), UIDS,
                             L.LUNA16Options(**kw))


def test_counts_curve_and_headline():
    res = evaluate()
    assert res.counts() == dict(
        num_scans=4, num_nodules=4, num_detected=3, num_candidates=7,
        num_kept=7, num_tp_marks=3, num_fp=3, num_irrelevant=1,
        num_double_detections=2)
    ref = reference_luna16(ANN, EXC, UIDS, CANDS)
    assert np.array_equal(res.fps, ref['fps'])
    assert np.array_equal(res.sens, ref['sens'])
    assert np.array_equal(res.thresholds, ref['thr'])
    assert ref['double'] == 2 and ref['irrelevant'] == 1
    rates = [0.125, 0.25, 0.5, 1, 2, 4, 8]
    assert np.array_equal(res.sens_at, np.interp(rates, res.fps, res.sens))
    assert res.cpm == float(np.mean(res.sens_at))
    assert type(res.cpm) is float
    # 3 FPs over 4 scans: at most 0.75 FPs per scan; 3 of 4 nodules
    assert res.fps[-1] == 0.75 and res.sens[-1] == 0.75
    assert res.sens_at[-1] == 0.75 and res.sens_at[0] == 0.5
    assert res.bootstrap is None
    assert res.options == OPTIONS
    assert res.tnp == L.true_negative_patients(res.match)


@pytest.mark.parametrize('num', [0, -1])
def test_no_band_without_resamples(num):
    res = evaluate(num_bootstrap=num)
    assert res.bootstrap is None and 'bootstrap' not in res.to_dict()


def test_documented_defaults():
    c = rows_to_candidates(CANDS + [('b', 200. + i, 0., 0., .01 * i)
                                    for i in range(100)])
    res = L.evaluate_luna16(c, rows_to_findings(ANN), rows_to_findings(EXC),
                            UIDS)
    b = res.bootstrap
    assert (b.num_resamples, b.seed, b.confidence) == (1000, 0, 0.95)
    assert len(b.fps) == 10000
    same = L.bootstrap_froc(res.match, L.BootstrapSettings(1000, 0, 0.95))
    assert np.array_equal(b.cpm, same.cpm, equal_nan=True)
    # 102 marks in scan b: the 100 highest kept
    assert res.counts()['num_kept'] == 7 + 100 - 2
    assert res.tnp['target_sensitivity'] == 0.95
    assert res.options == dict(OPTIONS, num_bootstrap=1000)
    with pytest.raises(ValueError, match='seriesuid zz is not in'):
        L.evaluate_luna16(rows_to_candidates([('zz', 0., 0., 0., .5)]),
                          rows_to_findings(ANN), None, UIDS)


def test_options_are_passed_on():
    res = evaluate(max_marks=1, num_bootstrap=3, seed=7, confidence=0.5,
                   tnp_sensitivity=0.25, unknown='ignore')
    assert res.options == dict(OPTIONS, max_marks=1, num_bootstrap=3, seed=7,
                               confidence=0.5, tnp_sensitivity=0.25,
                               unknown_seriesuids='ignore')
    assert res.counts()['num_kept'] == 4  # one per scan
    b = res.bootstrap
    assert (b.num_resamples, b.seed, b.confidence) == (3, 7, 0.5)
    assert np.array_equal(b.cpm,
                          L.bootstrap_froc(res.match,
                                           L.BootstrapSettings(3, 7)).cpm,
                          equal_nan=True)
    assert res.tnp['target_sensitivity'] == 0.25
    assert res.tnp['tnp'] is not None
    res = L.evaluate_luna16(
        rows_to_candidates(CANDS + [('zz', 0., 0., 0., .5)]),
        rows_to_findings(ANN), None, UIDS,
        L.LUNA16Options(num_bootstrap=0, unknown='ignore'))
    assert res.counts()['num_candidates'] == 7


def test_to_dict_with_band():
    # only the scans with nodules: no resample without nodules
    res = L.evaluate_luna16(rows_to_candidates(CANDS), rows_to_findings(ANN),
                            rows_to_findings(EXC), UIDS[:2],
                            L.LUNA16Options(num_bootstrap=20, seed=2,
                                            unknown='ignore'))
    d = res.to_dict()
    assert d['protocol'] == ('LUNA16 (official noduleCADEvaluationLUNA16.py '
                             'semantics, docs/protocols.md §3)')
    assert d['cpm'] == res.cpm
    assert list(d['sensitivity_at']) == [
        '0.125', '0.25', '0.5', '1', '2', '4', '8'
    ]
    assert list(d['sensitivity_at'].values()) == res.sens_at.tolist()
    for key, value in res.counts().items():
        assert d[key] == value
    b = res.bootstrap
    boot = d['bootstrap']
    lo, hi = b.cpm_interval()
    assert boot['num_resamples'] == 20 and boot['seed'] == 2
    assert boot['confidence'] == 0.95 and boot['num_points'] == 10000
    assert boot['cpm_mean'] == float(np.mean(b.cpm))
    assert (boot['cpm_lower'], boot['cpm_upper']) == (lo, hi)
    assert boot['num_resamples_without_nodules'] == 0
    assert lo < hi
    assert list(boot['sensitivity_at']) == list(d['sensitivity_at'])
    for r in L.LUNA16_FP_RATES:
        band = boot['sensitivity_at'][L.rate_key(r)]
        assert band == dict(mean=float(np.interp(r, b.fps, b.mean)),
                            lower=float(np.interp(r, b.fps, b.lower)),
                            upper=float(np.interp(r, b.fps, b.upper)))
    # the rates are grid points at both ends
    assert boot['sensitivity_at']['8']['upper'] == float(b.upper[-1])
    assert boot['sensitivity_at']['0.125']['lower'] == float(b.lower[0])
    assert d['tnp'] == res.tnp and d['options'] == res.options
    json.dumps(d, allow_nan=False)


def test_to_dict_nan_is_null_and_resamples_without_nodules_counted():
    # scan a has the only nodule; most resamples of 3 scans miss it
    uids = ['a', 'n1', 'n2']
    res = L.evaluate_luna16(
        rows_to_candidates([('a', 0., 0., 0., .9), ('n1', 0., 0., 0., .5)]),
        rows_to_findings([('a', 0., 0., 0., 10.)]), None, uids,
        L.LUNA16Options(num_bootstrap=30))
    b = res.bootstrap
    d = res.to_dict()
    k = int(np.isnan(b.cpm).sum())
    assert 0 < k < 30
    assert d['bootstrap']['num_resamples_without_nodules'] == k
    assert d['bootstrap']['cpm_mean'] is None  # the mean of a NaN
    # no nodule at all: NaN sensitivities become null
    res = L.evaluate_luna16(
        rows_to_candidates([('n1', 0., 0., 0., .5)]), rows_to_findings([]),
        None, uids, L.LUNA16Options(num_bootstrap=2))
    d = res.to_dict()
    assert d['cpm'] is None
    assert set(d['sensitivity_at'].values()) == {None}
    assert d['bootstrap']['num_resamples_without_nodules'] == 2
    assert d['bootstrap']['cpm_lower'] is None
    assert d['bootstrap']['sensitivity_at']['1'] == dict(
        mean=None, lower=None, upper=None)
    assert math.isnan(res.cpm)


def _csv(path, header, rows):
    path.write_text(header + ''.join(','.join(map(str, r)) + '\n'
                                     for r in rows))
    return str(path)


def test_from_csv_files(tmp_path):
    cand = _csv(tmp_path / 'cands.csv',
                'seriesuid,coordX,coordY,coordZ,probability\n', CANDS)
    ann = _csv(tmp_path / 'ann.csv',
               'seriesuid,coordX,coordY,coordZ,diameter_mm\n', ANN)
    exc = _csv(tmp_path / 'exc.csv',
               'seriesuid,coordX,coordY,coordZ,diameter_mm\n', EXC)
    uids = tmp_path / 'uids.csv'
    uids.write_text('seriesuid\n' + '\n'.join(UIDS) + '\n')
    res = L.evaluate_luna16(cand, ann, exc, str(uids),
                            L.LUNA16Options(num_bootstrap=0))
    ref = evaluate()
    assert res.counts() == ref.counts()
    assert np.array_equal(res.sens_at, ref.sens_at)
    # the excluded file may repeat rows; the annotations may not
    dup = _csv(tmp_path / 'dup.csv',
               'seriesuid,coordX,coordY,coordZ,diameter_mm\n', ANN + ANN[:1])
    with pytest.raises(ValueError, match='repeats line 2'):
        L.evaluate_luna16(cand, dup, exc, UIDS,
                          L.LUNA16Options(num_bootstrap=0))
    # the candidates' file is named in the error on an unlisted scan
    bad = _csv(tmp_path / 'bad.csv',
               'seriesuid,coordX,coordY,coordZ,probability\n',
               CANDS + [('zz', 0, 0, 0, .5)])
    with pytest.raises(ValueError,
                       match=r'bad\.csv, data row 8: seriesuid zz'):
        L.evaluate_luna16(bad, ann, None, UIDS,
                          L.LUNA16Options(num_bootstrap=0))
    with pytest.raises(ValueError, match=r'^candidates, data row 8'):
        L.evaluate_luna16(L.read_candidates_csv(bad), ann, None, UIDS,
                          L.LUNA16Options(num_bootstrap=0))


def test_one_resample_is_a_band_and_progress_off_by_default(capsys):
    res = evaluate(num_bootstrap=1)
    assert res.bootstrap is not None and res.bootstrap.num_resamples == 1
    evaluate(num_bootstrap=3)
    assert capsys.readouterr().out == ''
    evaluate(num_bootstrap=3, progress=True)
    assert 'bootstrap: 3/3 (100 %)' in capsys.readouterr().out
