# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the per-series LENS 3D FROC (:mod:`...series_froc_3d`).

Pinned: findings become ``(N, 7)`` rows (``(0, 7)`` for none); both sides
go from continuous to inclusive boxes, a box thinner than one voxel
becoming exactly one voxel (not invalid) on every axis; the series of the
truth are the sub-volumes (a series without detections still counts in
the FP denominator, detections of other series are ignored, the order of
the dict does not matter); the counts of lesions and findings; the
annotation reference turns each key-slice box into a one-slice detection
``[k - 0.5, k + 0.5]`` of score 1 in the series named by its folder
(docs/mutation_testing.md).
"""
import numpy as np

import projects.lens.series_froc_3d as series_mod
from mmlesion.structures.finding_3d import Finding3D
from projects.lens.series_froc_3d import (
    _inclusive, annotation_reference, evaluate_3d, findings_to_dets)
from tests.helpers.info_dataset import InfoDataset

KEYS = ['sens@0.125', 'sens@0.25', 'sens@0.5', 'sens@1', 'sens@2', 'sens@4',
        'sens@8', 'average']


def _finding(bbox_3d, score):
    return Finding3D(bbox_3d, score, (0, 0), 0, [])


def test_findings_to_dets():
    out = findings_to_dets([_finding((1, 2, 3, 4, 5, 6), 0.5),
                            _finding([0, 0, 0, 1, 1, 1], 1)])
    assert out.dtype == np.float64
    assert out.tolist() == [[1, 2, 3, 4, 5, 6, .5], [0, 0, 0, 1, 1, 1, 1]]
    assert findings_to_dets([]).shape == (0, 7)
    ints = findings_to_dets([_finding((1, 2, 3, 4, 5, 6), 1)])
    assert ints.dtype == np.float64


def test_inclusive_keeps_thin_boxes_one_voxel_thick():
    boxes = np.array([[0., 0., 0., 10., 10., 10., .5],
                      [2., 3., 4., 2.5, 3.2, 4.9, .7],
                      [5., 5., 5., 5., 5., 5., .1]])
    out = _inclusive(boxes)
    assert out.tolist() == [[0., 0., 0., 9., 9., 9., .5],
                            [2., 3., 4., 2., 3., 4., .7],
                            [5., 5., 5., 5., 5., 5., .1]]
    assert boxes[1, 3] == 2.5  # input untouched
    # a box 1.5 voxels thick keeps x2 = x1 + 0.5
    assert _inclusive(np.array([[0., 0., 0., 1.5, 2., 3.]])).tolist() == [
        [0., 0., 0., 0.5, 1., 2.]
    ]
    assert _inclusive(np.zeros((0, 6))).shape == (0, 6)


def test_evaluate_3d_series_are_the_truth_keys():
    gt = np.array([[0., 0., 0., 10., 10., 10.]])
    gts = {'s2': gt, 's1': gt, 'empty': np.zeros((0, 6))}
    dets = {
        's1': np.array([[0., 0., 0., 10., 10., 10., .9],
                        [50., 50., 50., 60., 60., 60., .8]]),
        # a detection thinner than one voxel inside the lesion: one voxel,
        # IoBB 1 (it would be an invalid box without the clamp)
        's2': np.array([[4., 4., 4., 4.5, 4.5, 4.5, .7]]),
        'other': np.array([[0., 0., 0., 10., 10., 10., .99]]),  # ignored
    }
    out = evaluate_3d(dets, gts)
    assert list(out) == KEYS + ['lesions', 'findings']
    assert out['lesions'] == 2 and out['findings'] == 3
    assert type(out['lesions']) is int and type(out['findings']) is int
    # TP, FP (1/3 FPs per series), TP
    assert out['sens@0.125'] == 0.5 and out['sens@0.25'] == 0.5
    assert out['sens@0.5'] == 1.0 and out['sens@8'] == 1.0
    assert out['average'] == np.mean([.5, .5, 1, 1, 1, 1, 1])
    # without the FP: every rate at 1
    dets['s1'] = dets['s1'][:1]
    out = evaluate_3d(dets, gts)
    assert out['average'] == 1.0 and out['findings'] == 2


def test_evaluate_3d_series_without_detections_count():
    gt = np.array([[0., 0., 0., 10., 10., 10.]])
    far = np.array([[50., 50., 50., 60., 60., 60., .9]])
    one = evaluate_3d({'a': far}, {'a': gt})
    four = evaluate_3d({'a': far}, {'a': gt, 'b': np.zeros((0, 6)),
                                     'c': np.zeros((0, 6)),
                                     'd': np.zeros((0, 6))})
    assert one['lesions'] == four['lesions'] == 1
    assert one['findings'] == four['findings'] == 1
    assert one['average'] == four['average'] == 0.0


def test_annotation_reference_uses_one_slice_boxes():
    infos = [
        dict(series_dir='/data/Images_png/000001_01_01/', key_slice='12',
             instances=[dict(bbox=[10., 10., 20., 20.])]),
        dict(series_dir='/data/Images_png/000001_01_01', key_slice=30,
             instances=[dict(bbox=[40., 40., 50., 50.])]),
        dict(series_dir='/data/Images_png/000002_01_01', key_slice=5,
             instances=[]),
    ]
    # truth (continuous voxels): the first lesion spans slices 11.5..12.5,
    # the second 28..32 (a 4-slice lesion: a one-slice box has IoBB 1)
    gts = {
        '000001_01_01': np.array([[10., 10., 11.5, 20., 20., 12.5],
                                  [40., 40., 28., 50., 50., 32.]]),
        '000002_01_01': np.zeros((0, 6)),
    }
    out = annotation_reference(InfoDataset(infos), gts)
    assert out['lesions'] == 2 and out['findings'] == 2
    assert out['average'] == 1.0
    expected = evaluate_3d(
        {'000001_01_01': np.array([[10., 10., 11.5, 20., 20., 12.5, 1.],
                                   [40., 40., 29.5, 50., 50., 30.5, 1.]])},
        gts)
    assert out == expected
    # a key slice off the lesion: the reference misses it
    infos[1] = dict(infos[1], key_slice=40)
    out = annotation_reference(InfoDataset(infos), gts)
    assert out['sens@8'] == 0.5 and out['findings'] == 2


def test_annotation_reference_detections_exactly(monkeypatch):
    seen = {}

    def capture(dets, gts):
        seen.update(dets=dets, gts=gts)
        return {}

    monkeypatch.setattr(series_mod, 'evaluate_3d', capture)
    infos = [
        dict(series_dir='/x/000001_01_01', key_slice=7,
             instances=[dict(bbox=[1, 2, 3, 4]), dict(bbox=[5, 6, 7, 8])]),
        dict(series_dir='/x/000002_01_01/', key_slice='0',
             instances=[dict(bbox=[0, 0, 1, 1])]),
        dict(series_dir='/x/000003_01_01', key_slice=3, instances=[]),
    ]
    gts = {'000001_01_01': np.zeros((0, 6))}
    annotation_reference(InfoDataset(infos), gts)
    assert seen['gts'] is gts
    assert sorted(seen['dets']) == ['000001_01_01', '000002_01_01']
    a = seen['dets']['000001_01_01']
    assert a.dtype == np.float64 and a.shape == (2, 7)
    assert a.tolist() == [[1., 2., 6.5, 3., 4., 7.5, 1.],
                          [5., 6., 6.5, 7., 8., 7.5, 1.]]
    assert seen['dets']['000002_01_01'].tolist() == [
        [0., 0., -0.5, 1., 1., 0.5, 1.]
    ]
