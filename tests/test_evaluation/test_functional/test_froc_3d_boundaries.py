# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the LENS 3D FROC (:mod:`...functional.froc_3d`).

Pinned: the protocol constants (IoBB >= 0.3, the seven rates 1/8 .. 8)
used as the defaults of every function, the threshold and overlap kind
passed through, the continuous -> inclusive conversion (only ``x2, y2, z2``
lose one, a score column is kept, the input untouched, empty input kept),
``local_boxes`` moving only ``z``, and the manual test set loader on
synthetic pickles: the allowed numpy classes (both module names of
``_reconstruct``), every refusal with its message (missing file, not a
dict, missing split, bad name, bad shape, non-finite or inverted box, at
its row), an empty entry as ``(0, 6)``, a flat box as valid, the split
order (docs/mutation_testing.md).
"""
import pickle
import warnings

import numpy as np
import pytest

from mmlesion.evaluation.functional.froc_3d import (
    LENS_FP_RATES, LENS_IOBB_THR, ManualSubVolume, continuous_to_inclusive,
    load_deeplesion_manual_3d)
from projects.lens.series_froc_3d import froc_3d_curve, lens_sensitivities

GT = [0., 0., 0., 9., 9., 9.]  # 10 x 10 x 10 voxels (inclusive)
#: 10 x 10 x 10 detection overlapping 3 slices of GT: IoBB 0.3, IoU 3/17
AT_THR = [0., 0., 7., 9., 9., 16.]


def _det(box, score=0.9):
    return np.array([list(box) + [score]])


def test_protocol_constants():
    assert LENS_IOBB_THR == 0.3
    assert LENS_FP_RATES == (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def test_threshold_and_overlap_are_passed_through():
    gts = [np.array([GT])]
    # IoU 3/17 < 0.3: a miss with overlap='iou', a hit at 0.17
    assert froc_3d_curve([_det(AT_THR)], gts, 0.17,
                         'iou').sensitivity.tolist() == [1.0]
    assert froc_3d_curve([_det(AT_THR)], gts).sensitivity.tolist() == [1.0]
    assert froc_3d_curve([_det(AT_THR)], gts,
                         0.31).sensitivity.tolist() == [0.0]
    assert froc_3d_curve([_det(AT_THR)], gts,
                         overlap='iou').sensitivity.tolist() == [0.0]
    # a flat 2D box (N, 4) is not a 3D box
    with pytest.raises(ValueError):
        froc_3d_curve([np.array([[0., 0, 9, 9, .5]])], [np.zeros((0, 4))])


def test_lens_sensitivities_keys_defaults_and_custom_rates():
    gts = [np.array([GT])] + [np.zeros((0, 6))] * 7
    far = [40., 40, 40, 49, 49, 49]
    dets = [np.vstack([_det(far, .9), _det(GT, .8)])] + [np.zeros((0, 7))] * 7
    curve = froc_3d_curve(dets, gts)
    res = lens_sensitivities(curve)
    assert list(res) == ['sens@0.125', 'sens@0.25', 'sens@0.5', 'sens@1',
                         'sens@2', 'sens@4', 'sens@8', 'average']
    assert res['sens@0.125'] == 1.0 and res['average'] == 1.0
    assert all(type(v) is float for v in res.values())
    res = lens_sensitivities(curve, [0.1, 3])
    assert res == {'sens@0.1': 0.0, 'sens@3': 1.0, 'average': 0.5}


# --- box conventions -----------------------------------------------------------


def test_continuous_to_inclusive_shapes_and_dtype():
    six = np.array([[1, 2, 3, 11, 12, 13]], dtype=np.int32)
    out = continuous_to_inclusive(six)
    assert out.dtype == np.float64
    assert out.tolist() == [[1., 2., 3., 10., 11., 12.]]
    assert six.tolist() == [[1, 2, 3, 11, 12, 13]]
    empty = continuous_to_inclusive(np.zeros((0, 7)))
    assert empty.shape == (0, 7)
    lst = [[0., 0., 0., 1., 1., 1., 0.25]]
    assert continuous_to_inclusive(lst).tolist() == [[0., 0., 0., 0., 0., 0.,
                                                      0.25]]
    assert lst[0][3] == 1.


def test_local_boxes_moves_only_z():
    sub = ManualSubVolume('000001_01_01_011-020', '000001_01_01', 11, 20,
                          np.array([[1., 2., 12., 3., 4., 15.]]), 'val')
    assert sub.local_boxes().tolist() == [[1., 2., 1., 3., 4., 4.]]
    assert sub.boxes.tolist() == [[1., 2., 12., 3., 4., 15.]]  # a copy


# --- the manual test set loader --------------------------------------------------


def _pickle(tmp_path, data, protocol=3):
    path = tmp_path / 'manual.pkl'
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    return str(path)


def test_loader_reads_names_boxes_and_splits_in_order(tmp_path):
    data = {
        'test': {
            '000002_03_04_100-130': [[1, 2, 101, 3, 4, 105]],
            '000003_01_01_5-9': np.zeros((0, 6)),
        },
        'val': {
            '000001_01_01_001-030': np.array([[0., 0, 2, 0, 0, 2],
                                              [5, 5, 5, 9, 9, 9]]),
            '000004_01_01_001-030': [],
        },
    }
    path = _pickle(tmp_path, data)
    subs = load_deeplesion_manual_3d(path)  # default: val then test
    assert [s.name for s in subs] == [
        '000001_01_01_001-030', '000004_01_01_001-030',
        '000002_03_04_100-130', '000003_01_01_5-9'
    ]
    assert [s.split for s in subs] == ['val', 'val', 'test', 'test']
    s = subs[2]
    assert (s.volume, s.first_slice, s.last_slice) == ('000002_03_04', 100,
                                                       130)
    assert type(s.first_slice) is int and type(s.last_slice) is int
    assert s.boxes.dtype == np.float64
    assert s.boxes.tolist() == [[1., 2., 101., 3., 4., 105.]]
    assert subs[0].boxes.shape == (2, 6)  # a flat box (x2 == x1) is valid
    assert subs[1].boxes.shape == (0, 6) and subs[3].boxes.shape == (0, 6)
    assert subs[3].first_slice == 5 and subs[3].last_slice == 9
    only = load_deeplesion_manual_3d(path, splits=('test', 'val'))
    assert [x.split for x in only] == ['test', 'test', 'val', 'val']


def test_loader_accepts_both_numpy_module_names(tmp_path):
    arr = np.array([[1., 2., 3., 4., 5., 6.]])
    raw = pickle.dumps({'val': {'000001_01_01_001-002': arr}}, protocol=3)
    new_name, old_name = b'numpy._core.multiarray', b'numpy.core.multiarray'
    assert new_name in raw or old_name in raw
    for name in (new_name, old_name):
        path = tmp_path / 'm.pkl'
        path.write_bytes(raw.replace(new_name, name).replace(old_name, name))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            subs = load_deeplesion_manual_3d(str(path), splits=('val', ))
        assert subs[0].boxes.tolist() == arr.tolist()


def test_loader_refusals(tmp_path):
    missing = str(tmp_path / 'none.pkl')
    with pytest.raises(FileNotFoundError,
                       match=r'^no such file: .*none\.pkl$'):
        load_deeplesion_manual_3d(missing)
    with pytest.raises(pickle.UnpicklingError,
                       match=r'^refusing to unpickle builtins\.print: the '
                       r'manual test set holds only numpy arrays$'):
        load_deeplesion_manual_3d(_pickle(tmp_path, {'val': {'x': print}}))
    with pytest.raises(ValueError,
                       match=r'manual\.pkl: expected a dict with splits '
                       r'val/test, got list$'):
        load_deeplesion_manual_3d(_pickle(tmp_path, [1]))
    path = _pickle(tmp_path, {'val': {}})
    assert load_deeplesion_manual_3d(path, splits=('val', )) == []
    with pytest.raises(ValueError,
                       match=r"manual\.pkl: no split 'test' \(has "
                       r"\['val'\]\)$"):
        load_deeplesion_manual_3d(path)


@pytest.mark.parametrize('name', [
    '000001_01_01_001-030x', 'x000001_01_01_001-030', '00001_01_01_001-030',
    '000001_01_01_001_030', '000001_01_01_-030', 7
])
def test_loader_refuses_bad_names(tmp_path, name):
    path = _pickle(tmp_path, {'val': {name: np.zeros((0, 6))}})
    with pytest.raises(ValueError,
                       match=r"manual\.pkl, split 'val', sub-volume "
                       r".*: the name is not \{volume\}_\{first\}-\{last\}$"):
        load_deeplesion_manual_3d(path, splits=('val', ))


@pytest.mark.parametrize('boxes, message', [
    (np.zeros((2, 5)), r': boxes must be \(n, 6\), got \(2, 5\)$'),
    (np.zeros(6), r': boxes must be \(n, 6\), got \(6,\)$'),
    (np.zeros((1, 2, 6)), r': boxes must be \(n, 6\), got \(1, 2, 6\)$'),
    ([[0, 0, 0, 1, 1, 1], [0, 0, 0, np.nan, 1, 1]],
     r', row 1: invalid box \[0\.0, 0\.0, 0\.0, nan, 1\.0, 1\.0\]$'),
    ([[0, 0, 0, 1, 1, np.inf]], r', row 0: invalid box'),
    ([[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1], [2, 0, 0, 1.99, 1, 1]],
     r', row 2: invalid box'),
    ([[0, 0, 0, 1, 1, 1], [0, 3, 0, 1, 2, 1]], r', row 1: invalid box'),
    ([[0, 0, 3, 1, 1, 2]], r', row 0: invalid box'),
])
def test_loader_refuses_bad_boxes(tmp_path, boxes, message):
    path = _pickle(tmp_path, {'val': {'000001_01_01_001-030': boxes}})
    with pytest.raises(ValueError,
                       match=r"manual\.pkl, split 'val', sub-volume "
                       r"'000001_01_01_001-030'" + message):
        load_deeplesion_manual_3d(path, splits=('val', ))
