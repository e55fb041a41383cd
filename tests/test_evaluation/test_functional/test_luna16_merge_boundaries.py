# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the merged LUNA16 candidates (:mod:`...luna16_merge`).

Pinned: the defaults (intersection, 5 mm), the overlap distance strict
(exactly 5 mm apart: no pair; just under: a pair), ``max_distance_mm``
refused at 0, below 0 and when not finite; pairs are one to one, nearest
first, ties in distance going to the lower row of ``a`` and then of ``b``,
listed in ``a``'s row order; a union appends ``a``'s then ``b``'s unmatched
marks unchanged; empty inputs give ``(0, 3)`` positions and object UIDs
(docs/mutation_testing.md).
"""
import numpy as np
import pytest

from mmlesion.evaluation.functional import LUNA16Candidates
from mmlesion.evaluation.functional.luna16_merge import (MERGE_MODES,
                                                         merge_candidates)


def _cands(rows):
    return LUNA16Candidates(
        np.array([r[0] for r in rows], dtype=object),
        np.array([r[1] for r in rows], dtype=np.float64).reshape(-1, 3),
        np.array([r[2] for r in rows], dtype=np.float64))


def test_modes():
    assert MERGE_MODES == ('intersection', 'union')


def test_defaults_are_intersection_and_5mm():
    a = _cands([('s', (0, 0, 0), .2), ('s', (40, 0, 0), .9)])
    b = _cands([('s', (4.9, 0, 0), .4), ('t', (0, 0, 0), .9)])
    res = merge_candidates(a, b)
    assert (res.num_pairs, res.unmatched_a, res.unmatched_b) == (1, 1, 1)
    assert res.candidates.seriesuids.tolist() == ['s']
    np.testing.assert_allclose(res.candidates.xyz, [[2.45, 0, 0]])
    np.testing.assert_allclose(res.candidates.probability, [.3])
    # 5.0 exactly: no pair with the default distance
    b5 = _cands([('s', (5, 0, 0), .4)])
    assert merge_candidates(a, b5).num_pairs == 0
    assert merge_candidates(a, b5, max_distance_mm=5.001).num_pairs == 1
    just = _cands([('s', (np.nextafter(5., 0), 0, 0), .4)])
    assert merge_candidates(a, just).num_pairs == 1


@pytest.mark.parametrize('dist', [0.0, -1.0, np.inf, np.nan, -np.inf])
def test_max_distance_must_be_positive_and_finite(dist):
    a = _cands([('s', (0, 0, 0), .2)])
    with pytest.raises(ValueError,
                       match=r'^max_distance_mm must be a positive number, '
                       r'got '):
        merge_candidates(a, a, 'union', dist)


def test_a_tiny_distance_is_accepted():
    a = _cands([('s', (0, 0, 0), .2)])
    assert merge_candidates(a, a, 'union', 1e-9).num_pairs == 1


def test_unknown_mode_message():
    a = _cands([('s', (0, 0, 0), .2)])
    with pytest.raises(ValueError,
                       match=r"^mode must be one of \('intersection', "
                       r"'union'\), got 'Union'$"):
        merge_candidates(a, a, 'Union')


def test_nearest_first_one_to_one():
    # a1 is nearest to b0; a0 then takes b1 (still within reach)
    a = _cands([('s', (0, 0, 0), .1), ('s', (2, 0, 0), .3)])
    b = _cands([('s', (2.5, 0, 0), .5), ('s', (-1, 0, 0), .7)])
    res = merge_candidates(a, b, 'intersection', 5.0)
    assert res.num_pairs == 2
    # listed in a's row order: (a0, b1), (a1, b0)
    np.testing.assert_allclose(res.candidates.xyz, [[-.5, 0, 0],
                                                    [2.25, 0, 0]])
    np.testing.assert_allclose(res.candidates.probability, [.4, .4])


def test_ties_in_distance_go_to_the_lower_rows():
    # a0 and a1 are both 1 mm from b0: a0 wins
    a = _cands([('s', (0, 0, 0), .2), ('s', (2, 0, 0), .4)])
    b = _cands([('s', (1, 0, 0), .6)])
    res = merge_candidates(a, b, 'union', 5.0)
    assert res.candidates.probability.tolist()[:1] == [pytest.approx(.4)]
    np.testing.assert_allclose(res.candidates.xyz[:2],
                               [[.5, 0, 0], [2, 0, 0]])
    # b0 and b1 are both 1 mm from a0: b0 wins, b1 stays unmatched
    a = _cands([('s', (0, 0, 0), .2)])
    b = _cands([('s', (1, 0, 0), .6), ('s', (-1, 0, 0), .8)])
    res = merge_candidates(a, b, 'union', 5.0)
    np.testing.assert_allclose(res.candidates.probability, [.4, .8])
    np.testing.assert_allclose(res.candidates.xyz, [[.5, 0, 0], [-1, 0, 0]])
    # the ties are by row, not by the order of the tie-break keys: b rows
    # listed in reverse scan order still go to the lowest row
    a = _cands([('t', (9, 9, 9), .1), ('s', (0, 0, 0), .2)])
    b = _cands([('s', (-1, 0, 0), .6), ('s', (1, 0, 0), .8)])
    res = merge_candidates(a, b, 'intersection', 5.0)
    np.testing.assert_allclose(res.candidates.probability, [.4])


def test_union_order_and_counts():
    a = _cands([('s', (0, 0, 0), .1), ('s', (50, 0, 0), .2),
                ('u', (0, 0, 0), .3)])
    b = _cands([('v', (0, 0, 0), .4), ('s', (0, 1, 0), .5),
                ('s', (80, 0, 0), .6)])
    res = merge_candidates(a, b, 'union', 5.0)
    c = res.candidates
    assert (res.num_pairs, res.unmatched_a, res.unmatched_b) == (1, 2, 2)
    assert type(res.unmatched_a) is int and type(res.unmatched_b) is int
    assert c.seriesuids.dtype == object
    assert c.seriesuids.tolist() == ['s', 's', 'u', 'v', 's']
    np.testing.assert_allclose(c.probability, [.3, .2, .3, .4, .6])
    np.testing.assert_allclose(
        c.xyz, [[0, .5, 0], [50, 0, 0], [0, 0, 0], [0, 0, 0], [80, 0, 0]])


def test_empty_inputs():
    empty = _cands([])
    a = _cands([('s', (0, 0, 0), .1)])
    for x, y in ((empty, empty), (a, empty), (empty, a)):
        res = merge_candidates(x, y, 'intersection', 5.0)
        c = res.candidates
        assert c.xyz.shape == (0, 3) and c.probability.shape == (0, )
        assert c.seriesuids.dtype == object and res.num_pairs == 0
    res = merge_candidates(empty, a, 'union', 5.0)
    assert res.candidates.xyz.tolist() == [[0, 0, 0]]
    assert (res.unmatched_a, res.unmatched_b) == (0, 1)
