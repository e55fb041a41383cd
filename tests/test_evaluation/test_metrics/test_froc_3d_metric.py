# Copyright (c) mmlesion contributors. All rights reserved.
"""FROC3DMetric: the LENS 3D protocol as an mmengine metric."""
import json

import numpy as np
import pytest
import torch

from mmdet.registry import METRICS
from mmlesion.evaluation.functional.froc_3d import (
    froc_3d_curve, lens_sensitivities, load_deeplesion_manual_3d)
from mmlesion.testing import shared_data_root


def _sample(img_id, pred_boxes, scores, gt_boxes, ignore=None):
    ignore = ignore or [0] * len(gt_boxes)
    return dict(
        img_id=img_id,
        img_path=f'{img_id}.nii.gz',
        pred_instances=dict(
            bboxes=torch.tensor(pred_boxes, dtype=torch.float32).reshape(
                -1, 6),
            scores=torch.tensor(scores, dtype=torch.float32)),
        instances=[
            dict(bbox=b, bbox_label=0, ignore_flag=i)
            for b, i in zip(gt_boxes, ignore)
        ])


def test_registered_and_counts_subvolumes(tmp_path):
    metric = METRICS.build(dict(type='FROC3DMetric', out_dir=str(tmp_path)))
    gt = [0., 0., 0., 10., 10., 10.]  # continuous: 10 voxels per axis
    samples = [
        # exact box: IoBB 1 (continuous -> inclusive on both sides)
        _sample('a', [gt, [50., 50, 50, 60, 60, 60]], [0.9, 0.4], [gt]),
        # only an ignored lesion: the box on it is an FP
        _sample('b', [gt], [0.8], [gt], ignore=[1]),
        _sample('c', [], [], []),  # lesion-free sub-volume, no boxes
        _sample('d', [[0., 0, 7, 10, 10, 17]], [0.7], [gt]),  # IoBB 0.3
    ]
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    # order: 0.9 TP, 0.8 FP (1/4), 0.7 TP, 0.4 FP (2/4)
    assert res['froc3d/sens@0.125'] == 0.5
    assert res['froc3d/sens@0.25'] == 1.0
    assert res['froc3d/mean@0.125-8'] == pytest.approx(13 / 14)
    assert (tmp_path / 'froc3d_curve.png').stat().st_size > 0
    dump = json.loads((tmp_path / 'froc3d_detections.json').read_text())
    assert dump['num_images'] == 4 and dump['num_lesions'] == 2
    assert dump['images'][0]['outcomes'] == ['tp', 'fp']


def test_inclusive_convention_and_bad_boxes():
    metric = METRICS.build(
        dict(type='FROC3DMetric', box_convention='inclusive'))
    gt = [0., 0., 0., 9., 9., 9.]
    # IoBB with +1 sizes: 3 of 10 slices -> 0.3
    metric.process({}, [_sample('a', [[0., 0, 7, 9, 9, 16]], [0.5], [gt])])
    assert metric.evaluate(1)['froc3d/sens@8'] == 1.0
    with pytest.raises(ValueError, match=r'\(N, 6\)'):
        metric.process({}, [dict(
            img_id='x', pred_instances=dict(
                bboxes=torch.zeros(1, 4), scores=torch.ones(1)),
            instances=[])])
    with pytest.raises(ValueError, match='box_convention'):
        METRICS.build(dict(type='FROC3DMetric', box_convention='mm'))


def test_manual_test_set_perfect_and_shifted():
    root = shared_data_root()
    path = None if root is None else (
        root / 'deeplesion' / 'annotations' /
        'DeepLesion_manual_1K_test_release.pkl')
    if path is None or not path.is_file():
        pytest.skip('DeepLesion_manual_1K_test_release.pkl not available')
    subs = load_deeplesion_manual_3d(str(path), splits=('test', ))
    metric = METRICS.build(
        dict(type='FROC3DMetric', box_convention='inclusive',
             dump_detections=False))
    samples, dets, gts = [], [], []
    for s in subs:
        g = s.local_boxes()
        # every lesion found, plus one FP per sub-volume shifted far away
        d = np.vstack([g, g[:1] + 1000.]) if len(g) else g
        sc = np.r_[np.ones(len(g)), np.full(min(len(g), 1), 0.1)]
        samples.append(_sample(s.name, d.tolist(), sc.tolist(), g.tolist()))
        dets.append(np.hstack([d, sc[:, None]]))
        gts.append(g)
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    assert res['froc3d/mean@0.125-8'] == 1.0
    ref = lens_sensitivities(froc_3d_curve(dets, gts))
    assert res['froc3d/mean@0.125-8'] == ref['average']
