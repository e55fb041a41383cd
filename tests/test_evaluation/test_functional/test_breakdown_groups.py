# Copyright (c) mmlesion contributors. All rights reserved.
"""The subsets of FROCMetric's breakdowns."""
import numpy as np
import pytest

from mmlesion.evaluation.functional.breakdown_groups import \
    froc_breakdown_groups


def _result(types, diams, det_labels):
    return dict(
        gt_types=np.array(types, dtype=np.int64),
        gt_long_mm=np.array(diams, dtype=np.float64),
        has_types=len(types) > 0,
        has_diams=len(diams) > 0,
        det_labels=np.array(det_labels, dtype=np.int64))


def test_groups_and_detection_masks():
    results = [_result([4, 5], [15., 40.], [3, 3, 4]),
               _result([5], [8.], [4])]
    valid = [np.array([True, True]), np.array([True])]
    groups = froc_breakdown_groups(results, valid)
    keys = [g[0] for g in groups]
    assert keys[:8] == [
        'type_bone', 'type_abdomen', 'type_mediastinum', 'type_liver',
        'type_lung', 'type_kidney', 'type_soft_tissue', 'type_pelvis'
    ]
    assert keys[8:] == ['size_lt10mm', 'size_10to30mm', 'size_gt30mm']
    assert all(g[3] is None for g in groups)  # every detection kept
    lung = dict((g[0], g[2]) for g in groups)['type_lung']
    assert [m.tolist() for m in lung] == [[False, True], [True]]

    cls = froc_breakdown_groups(results, valid, breakdowns=False,
                                type_classes=True)
    assert [g[0] for g in cls][3:5] == ['typecls_liver', 'typecls_lung']
    liver, lung = cls[3], cls[4]
    assert [m.tolist() for m in liver[3]] == [[True, True, False], [False]]
    assert [m.tolist() for m in lung[3]] == [[False, False, True], [True]]
    assert [m.tolist() for m in lung[2]] == [[False, True], [True]]
    # ignored instances are not in any subset
    valid[0][1] = False
    lung = froc_breakdown_groups(results, valid, breakdowns=False,
                                 type_classes=True)[4]
    assert [m.tolist() for m in lung[2]] == [[False], [True]]


def test_type_classes_need_types():
    results = [_result([], [], [0])]
    with pytest.raises(ValueError, match="FROCMetric: type_classes=True"):
        froc_breakdown_groups(results, [np.zeros(0, bool)],
                              type_classes=True)
    assert froc_breakdown_groups(results, [np.zeros(0, bool)]) == []
