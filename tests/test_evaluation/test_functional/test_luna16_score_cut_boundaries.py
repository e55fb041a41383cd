# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the RPN score cut (:mod:`...functional.luna16.score_cut`).

Pinned: every option of :class:`ScoreCutSettings` (and the excluded
findings) reaches both evaluations, never a bootstrap; the candidates per
scan of a single scan; the cut compares in float64 (a float32 RPN score
just above the threshold is kept) and flattens a column of cut scores; the
error names both counts; the JSON (``to_dict``) and ``summary`` texts
field by field. Synthetic marks only (docs/mutation_testing.md).
"""
import json
import re

import numpy as np
import pytest

from mmlesion.evaluation.functional import luna16 as L

THR = 0.269
#: scan a: nodule 1 found at 0.9 (RPN 0.8), an FP at 0.6 (RPN 0.2, cut),
#: nodule 2 found at 0.5 (RPN 0.1, cut); scan b (no nodule): an FP at 0.7
#: (RPN 0.5) on an excluded finding and an FP at 0.4 (RPN 0.3)
MARKS = [('a', (0., 0., 0.), 0.9, 0.8), ('a', (50., 0., 0.), 0.6, 0.2),
         ('a', (20., 20., 20.), 0.5, 0.1), ('b', (0., 0., 0.), 0.7, 0.5),
         ('b', (40., 40., 40.), 0.4, 0.3)]
NODULES = [('a', (0., 0., 0.), 6.), ('a', (20., 20., 20.), 6.)]
RPN = np.asarray([m[3] for m in MARKS])
SCANS = ['a', 'b']


def _cands(marks=MARKS):
    return L.LUNA16Candidates(
        np.asarray([m[0] for m in marks], dtype=object),
        np.asarray([m[1] for m in marks], dtype=np.float64).reshape(-1, 3),
        np.asarray([m[2] for m in marks], dtype=np.float64))


def _findings(rows):
    return L.LUNA16Findings(np.asarray([r[0] for r in rows], dtype=object),
                            np.asarray([r[1] for r in rows]),
                            np.asarray([r[2] for r in rows]))


EXCLUDED = [('b', (0., 0., 0.), 10.)]


def test_settings_defaults_are_luna16s():
    assert L.ScoreCutSettings(0.3) == L.ScoreCutSettings(0.3, 100, 0.95)


def test_every_setting_and_the_excluded_findings_reach_both_sides():
    settings = L.ScoreCutSettings(THR, max_marks=1, tnp_sensitivity=0.5)
    nod, excl = _findings(NODULES), _findings(EXCLUDED)
    effect = L.score_cut_effect(_cands(), RPN, nod, excl, SCANS, settings)
    sides = ((effect.with_cut, L.apply_score_cut(_cands(), RPN, THR)),
             (effect.without_cut, _cands()))
    for side, cands in sides:
        ref = L.evaluate_luna16(cands, nod, excl, SCANS,
                                L.LUNA16Options(max_marks=1, num_bootstrap=0,
                                                tnp_sensitivity=0.5))
        assert side.result.bootstrap is None
        assert side.result.options == ref.options
        assert side.result.options['max_marks'] == 1
        assert side.result.options['num_bootstrap'] == 0
        assert side.result.tnp == ref.tnp
        assert side.result.tnp['target_sensitivity'] == 0.5
        assert side.result.counts() == ref.counts()
        np.testing.assert_array_equal(side.result.sens_at, ref.sens_at)
        # the excluded finding and the cap change these counts
        plain = L.evaluate_luna16(cands, nod, None, SCANS,
                                  L.LUNA16Options(num_bootstrap=0))
        assert side.result.counts() != plain.counts()
    # uncut: the cap of 1 keeps 0.9 on a and 0.7 on b (excluded: no FP)
    assert effect.without_cut.result.counts()['num_fp'] == 0
    assert effect.without_cut.result.counts()['num_detected'] == 1


def test_candidates_per_scan_of_one_scan():
    marks = [m for m in MARKS if m[0] == 'a']
    effect = L.score_cut_effect(_cands(marks), RPN[:3], _findings(NODULES),
                                None, ['a'], L.ScoreCutSettings(THR))
    assert effect.with_cut.num_candidates == 1
    assert effect.with_cut.candidates_per_scan == 1.0
    assert effect.without_cut.candidates_per_scan == 3.0
    assert isinstance(effect.threshold, float)


def test_float32_scores_are_compared_in_float64():
    # float32(0.1) is 0.10000000149: above the float64 threshold 0.1
    # (a float32 comparison would read it as equal and drop it)
    scores = np.asarray([0.1, 0.05, 0.2], dtype=np.float32)
    cands = _cands(MARKS[:3])
    kept = L.apply_score_cut(cands, scores, 0.1)
    assert kept.probability.tolist() == [0.9, 0.5]
    assert kept.seriesuids.tolist() == ['a', 'a']
    assert kept.xyz.tolist() == [[0., 0., 0.], [20., 20., 20.]]


def test_a_column_of_cut_scores_is_flattened():
    kept = L.apply_score_cut(_cands(), RPN.reshape(-1, 1), THR)
    assert kept.probability.tolist() == [0.9, 0.7, 0.4]
    assert kept.xyz.shape == (3, 3)


def test_the_error_names_both_counts():
    with pytest.raises(ValueError,
                       match='^' + re.escape(
                           'score cut: 4 cut scores for 5 candidates') + '$'):
        L.apply_score_cut(_cands(), RPN[:4], THR)


def test_json_and_summary_field_by_field():
    effect = L.score_cut_effect(_cands(), RPN, _findings(NODULES), None,
                                SCANS, L.ScoreCutSettings(THR))
    cut, uncut = effect.with_cut.result, effect.without_cut.result
    keys = ['0.125', '0.25', '0.5', '1', '2', '4', '8']
    assert effect.to_dict() == dict(
        threshold=THR,
        rule='detections with an RPN score > threshold kept; the same '
        'detections evaluated with and without the cut',
        with_cut=dict(num_candidates=3, candidates_per_scan=1.5,
                      cpm=cut.cpm, tnp=None,
                      tnp_at_highest_sensitivity=dict(
                          tnp=1.0, threshold=0.9, sensitivity=0.5,
                          num_true_negatives=1),
                      sensitivity_at=dict(zip(keys, cut.sens_at.tolist()))),
        without_cut=dict(
            num_candidates=5, candidates_per_scan=2.5, cpm=uncut.cpm,
            tnp=uncut.tnp['tnp'], tnp_at_highest_sensitivity=None,
            sensitivity_at=dict(zip(keys, uncut.sens_at.tolist()))))
    # TNP: the cut never reaches 0.95 sensitivity (undefined); uncut, the
    # scan without a nodule keeps a false positive above the threshold;
    # cut, at its highest sensitivity (0.5, from 0.9 on) scan b's FPs (0.7,
    # 0.4) lie below: a TNP of 1 at sensitivity 0.5, marked as such
    assert cut.tnp['tnp'] is None and uncut.tnp['tnp'] == 0.
    # scan a keeps nodule 1 (0.9), loses nodule 2: at most half
    assert cut.sens_at.max() == pytest.approx(0.5)
    assert uncut.sens_at[-1] == pytest.approx(1.0)
    json.dumps(effect.to_dict(), allow_nan=False)
    assert effect.summary() == (
        f'RPN score cut 0.269: 1.50 candidates per scan (CPM {cut.cpm:.4f}); '
        f'without it 2.50 (CPM {uncut.cpm:.4f})')


def test_undefined_sensitivities_are_json_nulls():
    # no nodule: the sensitivity and the CPM are undefined (NaN -> None)
    none = L.LUNA16Findings(np.zeros(0, dtype=object), np.zeros((0, 3)),
                            np.zeros(0))
    effect = L.score_cut_effect(_cands(), RPN, none, None, SCANS,
                                L.ScoreCutSettings(THR))
    d = effect.to_dict()
    for side in ('with_cut', 'without_cut'):
        assert d[side]['cpm'] is None
        assert set(d[side]['sensitivity_at'].values()) == {None}
    json.dumps(d, allow_nan=False)
