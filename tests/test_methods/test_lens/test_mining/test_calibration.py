# Copyright (c) mmlesion contributors. All rights reserved.
"""Calibration of delta (LENS Sec. V-B): pair distances across series of a
patient, the choice of delta, the plot and the per-strategy split."""
import numpy as np
import pytest

from mmlesion.methods.lens.mining.calibration import (choose_delta,
                                         deeplesion_proxy_same,
                                         pair_distances)
from mmlesion.methods.lens.mining.demo_eval import split_by_strategy


def test_pair_distances_skip_same_series_and_other_patients():
    emb = np.array([[0., 0.], [0.1, 0.], [1., 0.], [0., 0.05], [5., 5.]])
    series = ['a', 'b', 'b', 'a', 'c']
    patients = ['p', 'p', 'p', 'p', 'q']
    ids = ['L1', 'L1', 'L2', 'L3', 'L1']
    same, diff = pair_distances(emb, series, patients,
                                lambda i, j: ids[i] == ids[j])
    # pairs across series a-b of patient p: (0,1) same, (0,2), (3,1), (3,2)
    # different; (0,3) is one series, (1,2) too, lesion 4 another patient
    np.testing.assert_allclose(same, [0.1])
    np.testing.assert_allclose(sorted(diff),
                               sorted([1., np.hypot(.1, .05),
                                       np.hypot(1., .05)]))
    with pytest.raises(ValueError, match='3 series'):
        pair_distances(emb, series[:3], patients, lambda i, j: True)


def test_choose_delta_meets_the_precision():
    rng = np.random.default_rng(0)
    same = rng.normal(0.3, 0.05, 200)
    diff = rng.normal(0.8, 0.1, 2000)
    c = choose_delta(same, diff, min_precision=0.9)
    assert c['reached_precision'] and c['precision'] >= 0.9
    assert 0.35 < c['delta'] < 0.7 and c['recall'] > 0.95
    # a larger delta would break the precision
    looser = choose_delta(same, diff, min_precision=0.5)
    assert looser['delta'] >= c['delta']
    # inseparable distributions: Youden's J fallback, flagged
    bad = choose_delta(rng.normal(0.5, .1, 50), rng.normal(0.5, .1, 5000),
                       0.9)
    assert not bad['reached_precision']
    with pytest.raises(ValueError, match='no same-lesion'):
        choose_delta([], diff)


def test_proxy_and_split_by_strategy():
    rows = [dict(lesion_type=4, location=(.5, .5, .5), diameter_px=20.),
            dict(lesion_type=4, location=(.51, .5, .52), diameter_px=30.),
            dict(lesion_type=4, location=(.51, .5, .52), diameter_px=80.),
            dict(lesion_type=5, location=(.5, .5, .5), diameter_px=20.),
            dict(lesion_type=4, location=(.7, .5, .5), diameter_px=20.)]
    same = deeplesion_proxy_same(rows)
    assert same(0, 1) and not same(0, 2) and not same(0, 3) and \
        not same(0, 4)
    entries = [dict(series_dir='s', slice=3, mined=[[0, 0, 1, 1],
                                                    [2, 2, 3, 3]],
                    mined_sources=['propagation', 'intra_patient'],
                    uncertain=[[5, 5, 6, 6]])]
    parts = split_by_strategy(entries)
    assert parts['propagation'][0]['mined'] == [[0, 0, 1, 1]]
    assert parts['propagation'][0]['uncertain'] == []
    assert parts['intra_patient'][0]['mined'] == [[2, 2, 3, 3]]
    assert parts['cross_dataset'][0]['mined'] == []
    assert parts['cross_dataset'][0]['uncertain'] == [[5, 5, 6, 6]]


def test_proxy_without_types_uses_location_and_size():
    """Training-split rows have no lesion type (-1): location and size
    decide; a typed pair still needs the same type."""
    rows = [dict(lesion_type=-1, location=(.5, .5, .5), diameter_px=20.),
            dict(lesion_type=-1, location=(.51, .5, .52), diameter_px=30.),
            dict(lesion_type=-1, location=(.7, .5, .5), diameter_px=20.),
            dict(lesion_type=-1, location=(.5, .5, .5), diameter_px=90.),
            dict(lesion_type=4, location=(.5, .5, .5), diameter_px=20.),
            dict(lesion_type=5, location=(.5, .5, .5), diameter_px=20.)]
    same = deeplesion_proxy_same(rows)
    assert same(0, 1) and not same(0, 2) and not same(0, 3)
    assert same(0, 4) and not same(4, 5)


def test_delta_calibrated_on_the_training_split(monkeypatch):
    import mmlesion.methods.lens.mining.calibration as calibration
    seen = {}

    def fake(model, cfg, root, ann_files, split=None, skip_missing=True):
        seen.update(root=root, ann_files=ann_files, split=split)
        same = np.linspace(0.1, 0.3, n_same)
        diff = np.linspace(0.25, 1.0, 40)
        return same, diff, dict(lesions=80, patients=10, series=25)

    monkeypatch.setattr(calibration, 'deeplesion_pair_distances', fake)
    n_same = 25
    out = calibration.calibrate_delta_on_training_split(
        None, None, 'data/DL/', 'DL_info.csv')
    assert seen == dict(root='data/DL/', ann_files=['DL_info.csv'],
                        split='train')
    expected = calibration.choose_delta(np.linspace(0.1, 0.3, 25),
                                        np.linspace(0.25, 1.0, 40), 0.9)
    assert out['delta'] == expected['delta'] and out['reached_precision']
    assert out['precision'] >= 0.9 and 'training split' in out['source']
    n_same = 19
    with pytest.raises(ValueError, match=r'DL_info\.csv: 19 same-lesion '
                       r'pairs.*--dist-thr'):
        calibration.calibrate_delta_on_training_split(
            None, None, 'data/DL/', 'DL_info.csv')
