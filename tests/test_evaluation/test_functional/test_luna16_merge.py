# Copyright (c) mmlesion contributors. All rights reserved.
"""Merged (Intersection / Union) candidates, Table III of the 3D Aggregated
Faster R-CNN paper."""
import numpy as np
import pytest

from mmlesion.evaluation.functional import LUNA16Candidates
from mmlesion.evaluation.functional.luna16_merge import merge_candidates


def _cands(rows):
    return LUNA16Candidates(
        np.array([r[0] for r in rows], dtype=object),
        np.array([r[1] for r in rows], dtype=np.float64).reshape(-1, 3),
        np.array([r[2] for r in rows], dtype=np.float64))


A = _cands([('s1', (0, 0, 0), .8), ('s1', (10, 0, 0), .6),
            ('s1', (50, 50, 50), .9), ('s2', (0, 0, 0), .5)])
B = _cands([('s1', (1, 0, 0), .4), ('s1', (10, 2, 0), .2),
            ('s1', (3, 0, 0), .7), ('s3', (0, 0, 0), .9)])


def test_intersection_averages_matched_pairs_only():
    res = merge_candidates(A, B, 'intersection', 5.0)
    c = res.candidates
    assert (res.num_pairs, res.unmatched_a, res.unmatched_b) == (2, 2, 2)
    assert c.seriesuids.tolist() == ['s1', 's1']
    np.testing.assert_allclose(c.xyz, [[0.5, 0, 0], [10, 1, 0]])
    np.testing.assert_allclose(c.probability, [0.6, 0.4])


def test_union_keeps_the_rest_unchanged():
    res = merge_candidates(A, B, 'union', 5.0)
    c = res.candidates
    assert c.seriesuids.tolist() == ['s1', 's1', 's1', 's2', 's1', 's3']
    np.testing.assert_allclose(c.probability, [0.6, 0.4, .9, .5, .7, .9])
    np.testing.assert_allclose(c.xyz[2:], [[50, 50, 50], [0, 0, 0],
                                           [3, 0, 0], [0, 0, 0]])


def test_one_to_one_nearest_first_and_strict_distance():
    a = _cands([('s', (0, 0, 0), .5), ('s', (4, 0, 0), .5)])
    b = _cands([('s', (2.5, 0, 0), .1)])
    res = merge_candidates(a, b, 'intersection', 5.0)
    np.testing.assert_allclose(res.candidates.xyz, [[3.25, 0, 0]])
    # exactly at the distance: no overlap
    far = _cands([('s', (5, 0, 0), .1)])
    assert merge_candidates(_cands([('s', (0, 0, 0), .5)]), far,
                            'intersection', 5.0).num_pairs == 0
    # another scan never matches, however close
    other = _cands([('t', (0, 0, 0), .1)])
    assert merge_candidates(a, other, 'union', 5.0).num_pairs == 0
    empty = _cands([])
    res = merge_candidates(a, empty, 'intersection', 5.0)
    assert len(res.candidates.seriesuids) == 0 and res.unmatched_a == 2


def test_bad_arguments():
    with pytest.raises(ValueError, match='mode'):
        merge_candidates(A, B, 'average')
    with pytest.raises(ValueError, match='max_distance_mm'):
        merge_candidates(A, B, 'union', 0.)
