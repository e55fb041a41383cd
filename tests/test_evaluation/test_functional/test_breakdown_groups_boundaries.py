# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of FROCMetric's breakdown subsets (:mod:`...breakdown_groups`).

Pinned: every key and label (the space of "soft tissue" made ``_`` in the
key only), the defaults (type and size breakdowns on, class-aware off),
the size bins exactly at 10 and 30 mm and a NaN diameter, ignored lesions
left out of every subset, the class-aware detection masks (label
``type - 1``), a group skipped with its log line when no image carries its
field (while one image carrying it is enough), and the error naming the
metric.
"""
import numpy as np
import pytest

from mmlesion.evaluation.functional.breakdown_groups import \
    froc_breakdown_groups

TYPE_KEYS = [
    'type_bone', 'type_abdomen', 'type_mediastinum', 'type_liver',
    'type_lung', 'type_kidney', 'type_soft_tissue', 'type_pelvis'
]
TYPE_NAMES = [
    'bone', 'abdomen', 'mediastinum', 'liver', 'lung', 'kidney',
    'soft tissue', 'pelvis'
]


def _result(types, diams, det_labels, has_types=True, has_diams=True):
    return dict(
        gt_types=np.array(types, dtype=np.int64),
        gt_long_mm=np.array(diams, dtype=np.float64),
        has_types=has_types,
        has_diams=has_diams,
        det_labels=np.array(det_labels, dtype=np.int64))


def _masks(groups):
    return {g[0]: [m.tolist() for m in g[2]] for g in groups}


def test_keys_labels_and_defaults():
    results = [_result([7, 1], [9.999, 10.], [6, 0, 2])]
    valid = [np.array([True, True])]
    groups = froc_breakdown_groups(results, valid)
    assert [g[0] for g in groups] == TYPE_KEYS + [
        'size_lt10mm', 'size_10to30mm', 'size_gt30mm'
    ]
    assert [g[1] for g in groups] == TYPE_NAMES + [
        '<10 mm', '10-30 mm', '>30 mm'
    ]
    assert all(g[3] is None for g in groups)
    masks = _masks(groups)
    assert masks['type_soft_tissue'] == [[True, False]]
    assert masks['type_bone'] == [[False, True]]
    assert masks['size_lt10mm'] == [[True, False]]
    assert masks['size_10to30mm'] == [[False, True]]
    assert masks['size_gt30mm'] == [[False, False]]


def test_class_aware_keys_labels_and_detection_masks():
    results = [_result([7, 1], [31., 30.], [6, 0, 2]),
               _result([], [], [7, 6])]
    valid = [np.array([True, True]), np.zeros(0, bool)]
    groups = froc_breakdown_groups(results, valid, breakdowns=False,
                                   type_classes=True)
    assert [g[0] for g in groups] == [
        k.replace('type_', 'typecls_') for k in TYPE_KEYS
    ]
    assert [g[1] for g in groups] == [
        f'{n}, detections labelled {n}' for n in TYPE_NAMES
    ]
    by_key = {g[0]: g for g in groups}
    soft = by_key['typecls_soft_tissue']
    assert [m.tolist() for m in soft[2]] == [[True, False], []]
    assert [m.tolist() for m in soft[3]] == [[True, False, False],
                                           [False, True]]
    bone = by_key['typecls_bone']
    assert [m.tolist() for m in bone[3]] == [[False, True, False],
                                           [False, False]]
    pelvis = by_key['typecls_pelvis']
    assert [m.tolist() for m in pelvis[3]] == [[False, False, False],
                                             [True, False]]
    # both breakdowns together: the plain groups first
    both = froc_breakdown_groups(results, valid, type_classes=True)
    assert [g[0] for g in both][:11] == TYPE_KEYS + [
        'size_lt10mm', 'size_10to30mm', 'size_gt30mm'
    ]
    assert _masks(both)['size_gt30mm'] == [[True, False], []]
    assert _masks(both)['size_10to30mm'] == [[False, True], []]
    assert len(both) == 19


def test_ignored_lesions_and_nan_diameters_are_in_no_subset():
    results = [_result([4, 4, 4], [5., np.nan, 50.], [3])]
    valid = [np.array([True, True, False])]
    masks = _masks(froc_breakdown_groups(results, valid))
    assert masks['type_liver'] == [[True, True]]
    assert masks['size_lt10mm'] == [[True, False]]
    assert masks['size_10to30mm'] == [[False, False]]
    assert masks['size_gt30mm'] == [[False, False]]


def test_a_field_on_one_image_is_enough():
    results = [_result([-1], [np.nan], [0], has_types=False,
                       has_diams=False),
               _result([5], [20.], [4])]
    valid = [np.array([True]), np.array([True])]
    masks = _masks(froc_breakdown_groups(results, valid))
    assert len(masks) == 11
    assert masks['type_lung'] == [[False], [True]]
    assert masks['size_10to30mm'] == [[False], [True]]
    cls = froc_breakdown_groups(results, valid, breakdowns=False,
                                type_classes=True)
    assert len(cls) == 8


def test_skipped_groups_are_logged(log_messages):
    results = [_result([-1], [np.nan], [0], has_types=False,
                       has_diams=False)]
    valid = [np.array([True])]
    assert froc_breakdown_groups(results, valid, metric_name='M3D') == []
    assert 'M3D: no instance has "lesion_type"; lesion-type breakdown ' \
        'skipped' in log_messages
    assert 'M3D: no instance has "diameters_mm"; size breakdown ' \
        'skipped' in log_messages
    del log_messages[:]
    froc_breakdown_groups(results, valid)
    assert 'FROCMetric: no instance has "lesion_type"; lesion-type ' \
        'breakdown skipped' in log_messages
    # only the size group missing
    results = [_result([4], [np.nan], [0], has_diams=False)]
    del log_messages[:]
    groups = froc_breakdown_groups(results, valid)
    assert [g[0] for g in groups] == TYPE_KEYS
    assert log_messages == [
        'FROCMetric: no instance has "diameters_mm"; size breakdown skipped'
    ]
    # only the type group missing
    results = [_result([-1], [12.], [0], has_types=False)]
    del log_messages[:]
    groups = froc_breakdown_groups(results, valid)
    assert [g[0] for g in groups] == [
        'size_lt10mm', 'size_10to30mm', 'size_gt30mm'
    ]
    assert log_messages == [
        'FROCMetric: no instance has "lesion_type"; lesion-type breakdown '
        'skipped'
    ]
    # nothing asked: nothing logged
    del log_messages[:]
    assert froc_breakdown_groups(results, valid, breakdowns=False) == []
    assert log_messages == []


def test_type_classes_error_names_the_metric():
    results = [_result([-1], [12.], [0], has_types=False)]
    with pytest.raises(ValueError) as err:
        froc_breakdown_groups(results, [np.array([True])], breakdowns=False,
                              type_classes=True, metric_name='FROC3DMetric')
    assert str(err.value) == (
        "FROC3DMetric: type_classes=True but no instance has 'lesion_type' "
        "(a multi-type dataset, label_mode='coarse_type', is needed)")
