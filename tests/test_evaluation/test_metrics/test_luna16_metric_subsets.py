# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16Metric's DeepLesion options (3D Aggregated Faster R-CNN Tables V
and VI): FP rates up to 16 and their mean, lesions >= 48 mm removed, the
lesion-type and size breakdowns (ground truth filtered, marks kept)."""
import json

import numpy as np
import pytest
import torch

from mmdet.registry import METRICS
from mmlesion.evaluation.functional import luna16 as L

SPACING = (1., 1., 1.)


def _box(centre_xyz, radius):
    c = np.asarray(centre_xyz, np.float64)
    return np.concatenate([c - radius, c + radius]).tolist()


def _sample(uid, marks, instances):
    """A scan at the world origin with 1 mm voxels: voxel = world."""
    return dict(
        img_id=uid, series_uid=uid, spacing_zyx=SPACING,
        origin_xyz=(0., 0., 0.), direction=np.eye(3).ravel().tolist(),
        instances=instances,
        pred_instances=dict(
            bboxes=torch.tensor([_box(c, 2) for c, _ in marks],
                                dtype=torch.float32).reshape(-1, 6),
            scores=torch.tensor([s for _, s in marks], dtype=torch.float32)))


def _lesion(centre, diam, kind, ignore=0):
    return dict(center_world=list(centre), diameter_mm=diam,
                ignore_flag=ignore, lesion_type=kind, bbox=[0] * 6,
                bbox_label=0)


def _samples():
    lung = (20., 20., 20.)     # 8 mm lung lesion, found (0.9)
    liver = (60., 60., 20.)    # 20 mm liver lesion, found (0.7)
    big = (100., 100., 30.)    # 60 mm liver lesion, found (0.8)
    missed = (20., 90., 20.)   # 35 mm kidney lesion, missed
    noisy = (90., 20., 20.)    # an ignored (Possibly_noisy) region
    return [
        _sample('a', [(lung, 0.9), (liver, 0.7), (noisy, 0.95),
                      ((50., 5., 5.), 0.5)],
                [_lesion(lung, 8., 5), _lesion(liver, 20., 4),
                 _lesion(noisy, 10., 4, ignore=1)]),
        _sample('b', [(big, 0.8), ((5., 5., 5.), 0.6)],
                [_lesion(big, 60., 4), _lesion(missed, 35., 6)]),
    ]


def _run(tmp_path, **kw):
    metric = METRICS.build(dict(
        type='LUNA16Metric', num_bootstrap=0, froc_plot=None,
        outfile_prefix=str(tmp_path / 'luna16'),
        fp_rates=(0.125, 0.25, 0.5, 1, 2, 4, 8, 16),
        mean_rates=(0.5, 1, 2, 4, 8, 16), **kw))
    samples = _samples()
    metric.process({}, samples)
    return metric.evaluate(len(samples)), json.loads(
        (tmp_path / 'luna16_metrics.json').read_text())


def test_rates_mean_and_breakdowns(tmp_path):
    res, summary = _run(tmp_path, breakdowns=True)
    # marks by score: noisy (ignored) 0.95, lung TP 0.9, big TP 0.8,
    # liver TP 0.7, FP 0.6, FP 0.5: 3 of 4 lesions, 2 FPs on 2 scans
    assert res['luna16/sens@0.5'] == pytest.approx(0.75)
    assert res['luna16/sens@16'] == pytest.approx(0.75)
    assert res['luna16/mean@0.5-16'] == pytest.approx(0.75)
    assert 'luna16/sens@0.125' in res and 'luna16/cpm' in res
    # lung: the liver marks become FPs, the lung mark outranks them
    assert res['luna16/sens@0.125_type_lung'] == pytest.approx(1.0)
    assert res['luna16/sens@16_type_kidney'] == 0.0
    assert np.isnan(res['luna16/sens@4_type_bone'])  # no bone lesion
    # liver (20 and 60 mm): both found; the lung mark (0.9) is now an FP
    # above them, half an FP per scan
    assert res['luna16/sens@0.25_type_liver'] == 0.0
    assert res['luna16/sens@0.5_type_liver'] == pytest.approx(1.0)
    # sizes: <10 lung, 10-30 liver, >30 big + missed
    assert res['luna16/sens@4_size_lt10mm'] == pytest.approx(1.0)
    assert res['luna16/sens@4_size_10to30mm'] == pytest.approx(1.0)
    assert res['luna16/sens@4_size_gt30mm'] == pytest.approx(0.5)
    sub = summary['subsets']
    assert sub['max_diameter_mm'] is None and sub['num_lesions'] == 4
    assert sub['breakdowns']['type_liver']['num_lesions'] == 2
    assert sub['breakdowns']['type_bone']['metrics'][
        'sens@4_type_bone'] is None
    assert 'every mark kept' in sub['rule']


def test_large_lesions_removed_their_marks_are_fps(tmp_path):
    res, summary = _run(tmp_path, max_diameter_mm=48.)
    # the 60 mm lesion leaves the ground truth; its mark (0.8) is an FP
    # ranked between the lung (0.9) and liver (0.7) TPs: 2 of 3 lesions
    assert summary['subsets']['num_lesions'] == 3
    assert summary['num_fp'] == 3
    assert res['luna16/sens@0.125'] == pytest.approx(1 / 3)
    assert res['luna16/sens@16'] == pytest.approx(2 / 3)


def test_lesion_subsets_functional():
    subsets = L.lesion_subsets([5, 4, -1], [8., 20., 40.])
    keys = [s.key for s in subsets]
    assert keys[:8] == ['type_bone', 'type_abdomen', 'type_mediastinum',
                        'type_liver', 'type_lung', 'type_kidney',
                        'type_soft_tissue', 'type_pelvis']
    assert keys[8:] == ['size_lt10mm', 'size_10to30mm', 'size_gt30mm']
    # unknown types (training split): only the size subsets
    assert [s.key for s in L.lesion_subsets([-1, -1], [8., 9.])] == keys[8:]
    ann = L.LUNA16Findings(np.array(['a', 'b'], dtype=object),
                           np.zeros((2, 3)), np.array([47.9, 48.]))
    assert L.below_diameter(ann, 48.).tolist() == [True, False]
    assert L.select_findings(ann, [False, True]).seriesuids.tolist() == ['b']


def test_bad_options():
    with pytest.raises(ValueError, match='breakdowns=True needs'):
        METRICS.build(dict(type='LUNA16Metric', annotations=__file__,
                           breakdowns=True))
    with pytest.raises(ValueError, match='max_diameter_mm'):
        METRICS.build(dict(type='LUNA16Metric', max_diameter_mm=0))
    with pytest.raises(ValueError, match='mean_rates'):
        METRICS.build(dict(type='LUNA16Metric', mean_rates=[]))
