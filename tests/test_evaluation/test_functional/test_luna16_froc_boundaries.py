# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the LUNA16 FROC curve and TNP (:mod:`...luna16.froc`).

Pinned: the seven default FP rates (1/8 .. 8) read exactly at the curve's
points and clamped beyond its ends, the scaling of FPs per scan and of the
sensitivity (by all nodules, missed ones included), the documented
decisions for no entry, no FP, no TP and no nodule, ``drop_intermediate``;
the TNP threshold is the first at which the sensitivity reaches the target
*inclusively* (default 0.95, reached exactly by 19 of 20 nodules), an FP
mark *at* the threshold flags its scan, marks on excluded findings never
do, and TNP is ``None`` without negative scans or when the target is never
reached. Synthetic entries only (docs/mutation_testing.md).
"""
import math

import numpy as np
import pytest

from mmlesion.evaluation.functional import luna16 as L
from tests.helpers.luna16_rows import cands, findings
from mmlesion.evaluation.functional.luna16.froc import _json_float


def test_rates_and_their_keys():
    assert L.LUNA16_FP_RATES == (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    assert [L.rate_key(r) for r in L.LUNA16_FP_RATES] == [
        '0.125', '0.25', '0.5', '1', '2', '4', '8'
    ]
    assert L.rate_key(3) == '3' and L.rate_key(np.float32(0.5)) == '0.5'


def test_json_float():
    assert _json_float(float('nan')) is None
    assert _json_float(np.float32(0.5)) == 0.5
    assert type(_json_float(np.float64(2))) is float
    assert type(_json_float(1)) is float
    assert _json_float(float('inf')) == float('inf')


# --- the curve ----------------------------------------------------------------


def test_curve_scaling_by_fps_over_scans_and_by_all_nodules():
    # 2 TPs and 3 FPs over 4 scans, 5 nodules (3 missed)
    labels = [1, 0, 1, 0, 0]
    probs = [.9, .8, .7, .6, .5]
    fps, sens, thr = L.luna16_froc_curve(labels, probs, 5, 4)
    # roc_curve (dropped collinear points): thresholds inf .9 .8 .7 .5
    assert thr[0] == np.inf
    assert thr[1:].tolist() == [.9, .8, .7, .5]
    assert fps.tolist() == [0., 0., 0.25, 0.25, 0.75]
    assert sens.tolist() == [0., 0.2, 0.2, 0.4, 0.4]
    full = L.luna16_froc_curve(labels, probs, 5, 4, drop_intermediate=False)
    assert full[2][1:].tolist() == [.9, .8, .7, .6, .5]
    assert full[0].tolist() == [0., 0., 0.25, 0.25, 0.5, 0.75]


def test_curve_without_entries_is_the_origin():
    fps, sens, thr = L.luna16_froc_curve(np.zeros(0), np.zeros(0), 3, 2)
    assert fps.tolist() == [0.] and sens.tolist() == [0.]
    assert thr.tolist() == [np.inf]
    fps, sens, thr = L.luna16_froc_curve([], [], 0, 2)
    assert fps.tolist() == [0.] and np.isnan(sens).all() and len(sens) == 1


def test_curve_without_fp_has_zero_fps_and_without_tp_zero_sensitivity():
    fps, sens, _ = L.luna16_froc_curve([1, 1], [.9, .5], 4, 3)
    assert fps.tolist() == [0., 0., 0.]
    assert sens.tolist() == [0., 0.25, 0.5]
    fps, sens, _ = L.luna16_froc_curve([0, 0], [.9, .5], 4, 2)
    assert fps.tolist() == [0., 0.5, 1.]
    assert sens.tolist() == [0., 0., 0.]
    fps, sens, _ = L.luna16_froc_curve([1, 0], [.9, .5], 0, 2)
    assert np.isnan(sens).all() and len(sens) == len(fps) == 3


def test_sensitivity_exactly_at_the_operating_points():
    # a curve with a point at each of the seven rates
    fps = np.array([0., .125, .25, .5, 1., 2., 4., 8.])
    sens = np.array([0., .1, .2, .3, .4, .5, .6, .7])
    assert L.sensitivity_at(fps, sens).tolist() == [
        .1, .2, .3, .4, .5, .6, .7
    ]
    # between points: linear; beyond the last point: the last value
    assert L.sensitivity_at(fps, sens, [0.1875, 3., 100.]).tolist() == [
        pytest.approx(.15), pytest.approx(.55), .7
    ]
    # below the first point: the first value
    assert L.sensitivity_at(np.array([1., 2.]), np.array([.4, .6])).tolist() \
        == [.4, .4, .4, .4, .6, .6, .6]
    out = L.sensitivity_at([0, 8], [0, 1], (0.5, ))
    assert out.dtype == np.float64 and out.tolist() == [0.0625]


# --- TNP ----------------------------------------------------------------------


UIDS = ['a', 'b', 'n1', 'n2', 'n3', 'n4']
NOD = findings([('a', 0., 0., 0., 10.), ('b', 0., 0., 0., 10.)])
EXC = findings([('n4', 0., 0., 0., 10.)])
CANDS = cands([
    ('a', 0., 0., 0., .9),  # TP
    ('b', 0., 0., 0., .5),  # TP: sensitivity 1 from threshold .5
    ('n1', 0., 0., 0., .5),  # FP exactly at the threshold: flagged
    ('n2', 0., 0., 0., .49),  # FP below: not flagged
    ('n3', 0., 0., 0., .95),  # FP above: flagged
    ('n4', 0., 0., 0., .99),  # on an excluded finding: not an FP
    ('a', 50., 0., 0., .3),  # FP in a nodule scan: no effect
])


def test_tnp_threshold_and_flags():
    m = L.match_luna16(CANDS, NOD, EXC, UIDS)
    out = L.true_negative_patients(m)
    assert out == dict(target_sensitivity=0.95, num_negative_scans=4,
                       tnp=0.5, threshold=0.5, sensitivity=1.0,
                       num_true_negatives=2, at_highest_sensitivity=None)
    assert type(out['threshold']) is float
    assert type(out['target_sensitivity']) is float


def test_tnp_target_reached_inclusively():
    m = L.match_luna16(CANDS, NOD, EXC, UIDS)
    # sensitivity .5 is reached at .9 already (>=, not >)
    out = L.true_negative_patients(m, 0.5)
    assert out['threshold'] == 0.9 and out['sensitivity'] == 0.5
    # n3 (.95) flagged, n1 (.5) and n2 (.49) not
    assert out['num_true_negatives'] == 3 and out['tnp'] == 0.75
    out = L.true_negative_patients(m, 0.50001)
    assert out['threshold'] == 0.5


def test_tnp_default_target_reached_by_19_of_20():
    uids = [f's{i}' for i in range(20)] + ['neg']
    nod = findings([(u, 0., 0., 0., 10.) for u in uids[:20]])
    c = cands([(u, 0., 0., 0., .9 - i * .01) for i, u in enumerate(uids[:19])]
              + [('neg', 0., 0., 0., .5)])
    out = L.true_negative_patients(L.match_luna16(c, nod, None, uids))
    assert out['sensitivity'] == 0.95 and out['threshold'] == pytest.approx(
        .72)
    assert out['tnp'] == 1.0 and out['num_negative_scans'] == 1
    # 18 of 20 never reach 0.95
    c = cands([(u, 0., 0., 0., .9 - i * .01) for i, u in enumerate(uids[:18])]
              + [('neg', 0., 0., 0., .5)])
    out = L.true_negative_patients(L.match_luna16(c, nod, None, uids))
    assert out['tnp'] is None and out['threshold'] is None
    assert out['num_negative_scans'] == 1
    # ... the TNP at the highest sensitivity reached (18 of 20, from .73
    # on), marked with it, never as the target's
    assert out['at_highest_sensitivity'] == dict(
        tnp=1.0, threshold=pytest.approx(.73), sensitivity=0.9,
        num_true_negatives=1)


def test_tnp_none_without_negative_scans_or_unreached_target():
    m = L.match_luna16(CANDS, NOD, EXC, UIDS[:2],
                       L.MatchSettings(unknown='ignore'))
    out = L.true_negative_patients(m)
    assert out == dict(target_sensitivity=0.95, num_negative_scans=0,
                       tnp=None, threshold=None, sensitivity=None,
                       num_true_negatives=None, at_highest_sensitivity=None)
    nod = findings([('a', 0., 0., 0., 10.), ('b', 50., 0., 0., 10.)])
    m = L.match_luna16(CANDS, nod, EXC, UIDS)
    out = L.true_negative_patients(m)  # only 1 of 2 nodules is ever found
    assert out['tnp'] is None and out['sensitivity'] is None
    assert out['num_negative_scans'] == 4
    # at sensitivity .5 (from .9 on: n3's .95 flags one of four scans)
    assert out['at_highest_sensitivity'] == dict(
        tnp=0.75, threshold=0.9, sensitivity=0.5, num_true_negatives=3)
    assert L.true_negative_patients(m, 0.5)['tnp'] == 0.75
    assert math.isclose(L.true_negative_patients(m, 0.5)['threshold'], .9)


def test_tnp_threshold_read_on_the_undropped_curve():
    # three TPs in a row (.9, .8, .7): roc_curve(drop_intermediate=True)
    # drops the collinear point of .8, where 2 of 3 nodules are first found
    uids = ['a', 'b', 'c', 'n']
    nod = findings([(u, 0., 0., 0., 10.) for u in uids[:3]])
    c = cands([('a', 0., 0., 0., .9), ('b', 0., 0., 0., .8),
               ('c', 0., 0., 0., .7), ('n', 0., 0., 0., .3)])
    m = L.match_luna16(c, nod, None, uids)
    out = L.true_negative_patients(m, 0.6)
    assert out['threshold'] == 0.8 and out['sensitivity'] == 2 / 3
    assert .8 not in L.luna16_froc_curve(*m.entries()[:2], 3, 4)[2]


def test_tnp_of_a_model_that_finds_no_nodule():
    # every candidate an FP: the highest sensitivity reached is 0, at a
    # threshold above every candidate (nothing flagged); no nodule at all
    # or no scan without one: undefined
    uids = ['a', 'n1', 'n2']
    nod = findings([('a', 0., 0., 0., 10.)])
    c = cands([('a', 50., 0., 0., .9), ('n1', 0., 0., 0., .4)])
    out = L.true_negative_patients(L.match_luna16(c, nod, None, uids))
    assert out['tnp'] is None and out['threshold'] is None
    assert out['at_highest_sensitivity'] == dict(
        tnp=1.0, threshold=None, sensitivity=0.0, num_true_negatives=2)
    out = L.true_negative_patients(L.match_luna16(cands([]), nod, None,
                                                  uids))
    assert out['at_highest_sensitivity']['sensitivity'] == 0.0
    for m in (L.match_luna16(c, findings([]), None, uids),
              L.match_luna16(c, nod, None, ['a'],
                             L.MatchSettings(unknown='ignore'))):
        assert L.true_negative_patients(m)['at_highest_sensitivity'] is None
