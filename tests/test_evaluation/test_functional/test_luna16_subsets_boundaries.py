# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the lesion subsets (:mod:`...functional.luna16.subsets`).

Pinned: ``select_findings`` reads its flags as booleans of any shape (0/1
integers are flags, not indices) and keeps ``(K, 3)`` centres even from an
empty flat array; ``below_diameter`` is strict; ``lesion_subsets`` gives the
type subsets only when a type is positive (0 and -1 are unknown), with their
keys, labels and masks in order, accepts a row of diameters, and its errors
name both counts. Synthetic findings only (docs/mutation_testing.md).
"""
import re

import numpy as np
import pytest

from mmlesion.evaluation.functional import luna16 as L


def _findings():
    return L.LUNA16Findings(np.array(['a', 'b', 'c'], dtype=object),
                            np.arange(9, dtype=np.float64).reshape(3, 3),
                            np.array([5., 20., 48.]))


def test_select_findings_reads_flags_not_indices():
    # [0, 1, 1] as indices would pick rows 0, 1, 1
    got = L.select_findings(_findings(), [0, 1, 1])
    assert got.seriesuids.tolist() == ['b', 'c']
    assert got.xyz.tolist() == [[3., 4., 5.], [6., 7., 8.]]
    assert got.diameter_mm.tolist() == [20., 48.]


def test_select_findings_flattens_a_column_of_flags():
    got = L.select_findings(_findings(), np.array([[True], [False], [True]]))
    assert got.seriesuids.tolist() == ['a', 'c']
    assert got.xyz.shape == (2, 3)


def test_select_findings_of_an_empty_flat_array_gives_k_by_3_centres():
    empty = L.LUNA16Findings(np.zeros(0, dtype=object), np.zeros(0),
                             np.zeros(0))
    got = L.select_findings(empty, [])
    assert got.xyz.shape == (0, 3) and got.diameter_mm.shape == (0, )


def test_select_findings_error_names_both_counts():
    with pytest.raises(ValueError, match='^' + re.escape(
            'select_findings: 2 flags for 3 findings') + '$'):
        L.select_findings(_findings(), [True, False])


def test_below_diameter_is_strict_and_float():
    f = _findings()._replace(diameter_mm=np.array([47, 48, 49]))
    assert L.below_diameter(f, 48).tolist() == [True, False, False]
    assert L.below_diameter(f, 48.5).tolist() == [True, True, False]
    # float32(48.3) is 48.29999924: below 48.3 in float64 (a float32
    # comparison would read it as equal)
    f32 = f._replace(diameter_mm=np.array([48.3, 49.], dtype=np.float32))
    assert L.below_diameter(f32, 48.3).tolist() == [True, False]


def _expected_types(types):
    names = ['bone', 'abdomen', 'mediastinum', 'liver', 'lung', 'kidney',
             'soft tissue', 'pelvis']
    return [(f'type_{n.replace(" ", "_")}', n,
             [t == code for t in types])
            for code, n in enumerate(names, start=1)]


def _as_tuples(subsets):
    return [(s.key, s.label, s.keep.tolist()) for s in subsets]


SIZES = [('size_lt10mm', '<10 mm', [True, False, False]),
         ('size_10to30mm', '10-30 mm', [False, True, False]),
         ('size_gt30mm', '>30 mm', [False, False, True])]


def test_keys_labels_and_masks_in_order():
    types = [7, 1, -1]
    got = L.lesion_subsets(types, [8., 20., 40.])
    assert _as_tuples(got) == _expected_types(types) + SIZES
    assert all(s.keep.dtype == bool for s in got)


def test_one_positive_type_gives_the_type_subsets():
    # bone (code 1) alone is a known type
    got = L.lesion_subsets([1, -1, -1], [8., 20., 40.])
    assert _as_tuples(got) == _expected_types([1, -1, -1]) + SIZES


@pytest.mark.parametrize('types', [None, [-1, -1, -1], [0, 0, -1]])
def test_no_positive_type_gives_only_the_sizes(types):
    assert _as_tuples(L.lesion_subsets(types, [8., 20., 40.])) == SIZES


def test_types_and_diameters_of_any_shape_are_flattened():
    got = L.lesion_subsets(np.array([[5], [4], [-1]]),
                           np.array([[8., 20., 40.]]))
    assert _as_tuples(got) == _expected_types([5, 4, -1]) + SIZES


def test_float_types_are_read_as_codes():
    got = L.lesion_subsets([5.0, 4.0, -1.0], [8., 20., 40.])
    assert _as_tuples(got) == _expected_types([5, 4, -1]) + SIZES


def test_lesion_subsets_error_names_both_counts():
    with pytest.raises(ValueError, match='^' + re.escape(
            'lesion_subsets: 2 types for 3 diameters') + '$'):
        L.lesion_subsets([1, 2], [8., 20., 40.])
