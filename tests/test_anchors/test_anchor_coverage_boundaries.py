# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of :mod:`mmlesion.anchors.anchor_coverage`.

Pinned: the report of one anchor set in closed form (median, the fraction
reaching the threshold exactly at it, the threshold passed on, rounding to
4 decimals, types, a flat list of sizes), the message without boxes, the
optimiser run for a config (its strides and sizes kept, the seed, logging
off unless asked, settings passed on; the search is replaced by a
recording stand-in) and the report of a config with given optimised
anchors (docs/mutation_testing.md).
"""
import types

import numpy as np
import pytest
from mmengine.config import Config

from mmlesion.anchors import anchor_coverage as ac
from mmlesion.anchors.anchor_config import AnchorConfig
from mmlesion.anchors.anchor_coverage import (anchor_coverage, config_boxes,
                                              coverage_report,
                                              optimise_anchors)

ONE = AnchorConfig((8, ), (32., ), (1.0, ), (1.0, ))


def test_report_in_closed_form():
    # IoUs 1, 0.5 (32 x 16), 0.25 (16 x 16), 1/3 (32 x 64 -> 1024/3072)
    wh = [32., 32., 32., 16., 16., 16., 32., 96.]
    cov = anchor_coverage(wh, dict(one=ONE))['one']
    assert cov == dict(num_boxes=4, mean_iou=round((1 + .5 + .25 + 1 / 3) /
                                                   4, 4),
                       median_iou=round((.5 + 1 / 3) / 2, 4),
                       frac_iou_ge_thr=0.5, iou_thr=0.5, strides=[8],
                       sizes=[32.0], ratios=[1.0], scales=[1.0])
    assert type(cov['iou_thr']) is float and type(cov['strides'][0]) is int
    # the threshold is passed on and reached at its value
    cov = anchor_coverage(wh, dict(one=ONE), iou_thr=0.25)['one']
    assert cov['frac_iou_ge_thr'] == 1.0 and cov['iou_thr'] == 0.25
    cov = anchor_coverage(wh, dict(one=ONE), iou_thr=1)['one']
    assert cov['frac_iou_ge_thr'] == 0.25
    # a fraction with more than 4 decimals
    cov = anchor_coverage(wh[:6], dict(one=ONE), iou_thr=0.75)['one']
    assert cov['frac_iou_ge_thr'] == 0.3333


def test_report_rounds_the_anchors():
    anchors = AnchorConfig((8, ), (32.123456, ), (0.123456, ), (1.234567, ))
    cov = anchor_coverage([[32., 32.]], dict(a=anchors))['a']
    assert cov['sizes'] == [32.123456]
    assert cov['ratios'] == [0.1235] and cov['scales'] == [1.2346]
    assert list(anchor_coverage([[32., 32.]],
                                dict(b=ONE, a=anchors))) == ['b', 'a']


def test_no_boxes():
    with pytest.raises(ValueError) as err:
        anchor_coverage(np.zeros((0, 2)), dict(one=ONE))
    assert str(err.value) == 'anchor_coverage: no boxes'


CFG = Config(dict(model=dict(bbox_head=dict(anchor_generator=dict(
    type='AnchorGenerator', strides=[4, 8], base_sizes=[16, 32],
    ratios=[1.0], scales=[1.0])))))


class FakeOptimizer:
    calls = []
    boxes = []

    def __init__(self, **kwargs):
        FakeOptimizer.calls.append(kwargs)

    def optimize(self, box_wh):
        FakeOptimizer.boxes.append(box_wh)
        return types.SimpleNamespace(box_wh=box_wh, anchors=ONE)


def test_optimise_anchors_for_a_config(monkeypatch):
    monkeypatch.setattr(ac, 'DEAnchorOptimizer', FakeOptimizer)
    FakeOptimizer.calls = []
    wh = np.ones((2, 2))
    res = optimise_anchors(CFG, wh)
    assert res.box_wh is wh
    assert FakeOptimizer.calls == [dict(sizes=(16.0, 32.0), strides=(4, 8),
                                        seed=0, log_interval=0)]
    optimise_anchors(CFG, wh, seed=3, log_interval=5, popsize=4)
    assert FakeOptimizer.calls[1] == dict(sizes=(16.0, 32.0), strides=(4, 8),
                                          seed=3, log_interval=5, popsize=4)


def test_config_boxes_and_report(monkeypatch):
    splits = []

    def boxes_from_config(cfg, split):
        assert cfg is CFG
        splits.append(split)
        return np.array([[0., 0., 16., 16.], [0., 0., 32., 16.]]), {}

    monkeypatch.setattr(ac, 'boxes_from_config', boxes_from_config)
    np.testing.assert_array_equal(config_boxes(CFG), [[16., 16.],
                                                      [32., 16.]])
    assert splits == ['train']
    config_boxes(CFG, 'val')
    assert splits[-1] == 'val'

    monkeypatch.setattr(ac, 'DEAnchorOptimizer', FakeOptimizer)
    FakeOptimizer.calls = []
    report, optimised = coverage_report(CFG, split='test', seed=7,
                                        iou_thr=0.3)
    assert splits[-1] == 'test' and optimised == ONE
    assert FakeOptimizer.calls[0]['seed'] == 7
    np.testing.assert_array_equal(FakeOptimizer.boxes[-1],
                                  [[16., 16.], [32., 16.]])
    coverage_report(CFG)
    assert splits[-1] == 'train' and FakeOptimizer.calls[1]['seed'] == 0
    assert list(report) == ['mmdet_default', 'config', 'optimised']
    assert report['mmdet_default']['ratios'] == [0.5, 1.0, 2.0]
    assert report['mmdet_default']['sizes'] == [16.0, 32.0]
    assert report['mmdet_default']['strides'] == [4, 8]
    assert report['config']['ratios'] == [1.0]
    assert report['optimised']['strides'] == [8]
    assert all(r['iou_thr'] == 0.3 for r in report.values())
    # given anchors: no search
    FakeOptimizer.calls = []
    n = len(splits)
    mine = AnchorConfig((4, 8), (16., 32.), (2.0, ), (1.0, ))
    report, optimised = coverage_report(CFG, optimised=mine)
    assert optimised is mine and FakeOptimizer.calls == []
    assert splits[n:] == ['train']
    assert report['optimised']['ratios'] == [2.0]
    assert report['config']['iou_thr'] == 0.5
