# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16Metric: 3D boxes -> world marks -> official LUNA16 evaluation."""
import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from mmdet.registry import METRICS
from mmlesion.datasets.volumes import CTVolume
from mmlesion.evaluation.functional import luna16 as L
from mmlesion.evaluation.metrics.luna16_metric import \
    boxes_to_world_candidates
from mmlesion.testing import shared_data_root

SPACING_ZYX = (2.5, 0.7, 0.8)
ORIGIN = (-180.0, -200.0, -320.0)
# an oblique direction (rotation about z by 10 degrees)
C, S = np.cos(np.deg2rad(10)), np.sin(np.deg2rad(10))
OBLIQUE = np.array([[C, -S, 0], [S, C, 0], [0, 0, 1.]])


def test_box_centres_agree_with_simpleitk():
    boxes = np.array([[10., 20., 5., 30., 44., 9.], [0, 0, 0, 1, 1, 1]])
    world, diam = boxes_to_world_candidates(boxes, SPACING_ZYX, ORIGIN,
                                            OBLIQUE.ravel())
    img = sitk.Image(8, 8, 8, sitk.sitkFloat32)
    img.SetSpacing(SPACING_ZYX[::-1])
    img.SetOrigin(ORIGIN)
    img.SetDirection(OBLIQUE.ravel().tolist())
    for b, w in zip(boxes, world):
        centre = ((b[:3] + b[3:]) / 2).tolist()
        ref = img.TransformContinuousIndexToPhysicalPoint(centre)
        np.testing.assert_allclose(w, ref, atol=1e-9)
    # extents 20, 24, 4 voxels x (0.8, 0.7, 2.5) mm -> 16, 16.8, 10 mm
    assert diam[0] == pytest.approx((16 + 16.8 + 10) / 3)


def _box_at(world_xyz, radius_mm, geometry):
    zyx = geometry.world_to_voxel(np.asarray(world_xyz)[None])[0]
    half = radius_mm / np.asarray(geometry.spacing_zyx)
    lo, hi = zyx - half, zyx + half
    return [lo[2], lo[1], lo[0], hi[2], hi[1], hi[0]]


def _sample(uid, boxes, scores, geometry, instances=None):
    out = dict(
        img_id=uid,
        img_path=f'{uid}.mhd',
        series_uid=uid,
        spacing_zyx=geometry.spacing_zyx,
        origin_xyz=geometry.origin_xyz,
        direction=geometry.direction.ravel().tolist(),
        pred_instances=dict(
            bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 6),
            scores=torch.tensor(scores, dtype=torch.float32)))
    if instances is not None:
        out['instances'] = instances
    return out


def test_ground_truth_from_instances(tmp_path):
    geo = CTVolume(np.zeros((1, 1, 1), np.float32), SPACING_ZYX, ORIGIN,
                   OBLIQUE)
    nodule = [-150.0, -170.0, -300.0]
    excluded = [-120.0, -170.0, -300.0]
    inst = [
        dict(center_world=nodule, diameter_mm=8.0, ignore_flag=0,
             bbox=[0] * 6, bbox_label=0),
        dict(center_world=excluded, diameter_mm=-1.0, ignore_flag=1,
             bbox=[0] * 6, bbox_label=0),
    ]
    samples = [
        _sample('scan1', [_box_at(nodule, 4, geo), _box_at(excluded, 3, geo),
                          _box_at([-100., -100, -280], 3, geo)],
                [0.9, 0.8, 0.3], geo, inst),
        _sample('scan2', [_box_at([-100., -100, -280], 3, geo)], [0.6], geo,
                []),
    ]
    metric = METRICS.build(
        dict(type='LUNA16Metric', num_bootstrap=20,
             outfile_prefix=str(tmp_path / 'run' / 'val')))
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    # TP 0.9; the mark on the excluded finding is ignored; FPs 0.6, 0.3
    assert res['luna16/cpm'] == 1.0 and res['luna16/sens@0.125'] == 1.0
    # TNP threshold: 0.9 (sensitivity 1 >= 0.95); scan2's FP (0.6) is below
    assert res['luna16/tnp'] == 1.0
    summary = json.loads((tmp_path / 'run' / 'val_metrics.json').read_text())
    assert summary['tnp']['threshold'] == pytest.approx(0.9)
    assert summary['tnp']['num_negative_scans'] == 1
    assert summary['num_irrelevant'] == 1 and summary['num_fp'] == 2
    assert summary['options']['max_marks'] == 100
    cands = L.read_candidates_csv(str(tmp_path / 'run' /
                                      'val_candidates.csv'))
    np.testing.assert_allclose(cands.xyz[0], nodule, atol=1e-3)
    assert (tmp_path / 'run' / 'val_froc.png').stat().st_size > 0
    head = (tmp_path / 'run' / 'val_candidates.csv').read_text().split()[0]
    assert head.endswith('probability,diameter_mm')


def test_ground_truth_from_official_csvs():
    root = shared_data_root()
    if root is None or not (root / 'luna16' / 'annotations.csv').is_file():
        pytest.skip('real LUNA16 CSVs ($MMLESION_SHARED_DATA/luna16) not available')
    d = root / 'luna16'
    ann = L.read_findings_csv(str(d / 'annotations.csv'))
    geo = CTVolume(np.zeros((1, 1, 1), np.float32), SPACING_ZYX, ORIGIN)
    uids = list(dict.fromkeys(ann.seriesuids))[:5]
    samples = []
    for uid in uids:
        sel = ann.seriesuids == uid
        boxes = [_box_at(c, r / 2, geo) for c, r in
                 zip(ann.xyz[sel], ann.diameter_mm[sel])]
        samples.append(_sample(uid, boxes, [0.9] * len(boxes), geo))
    metric = METRICS.build(
        dict(type='LUNA16Metric', annotations=str(d / 'annotations.csv'),
             excluded=str(d / 'annotations_excluded.csv'), num_bootstrap=0))
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    assert res['luna16/cpm'] == 1.0
    # with the full seriesuids list every other scan counts in the FPs
    # denominator and its nodules are missed
    metric = METRICS.build(
        dict(type='LUNA16Metric', annotations=str(d / 'annotations.csv'),
             seriesuids=str(d / 'seriesuids.csv'), num_bootstrap=0))
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    found = sum(int((ann.seriesuids == u).sum()) for u in uids)
    assert res['luna16/sens@8'] == pytest.approx(found / 1186)


def test_missing_metainfo_is_a_clear_error():
    metric = METRICS.build(dict(type='LUNA16Metric'))
    with pytest.raises(ValueError, match='spacing_zyx'):
        metric.process({}, [dict(
            img_id='x', series_uid='x',
            pred_instances=dict(bboxes=torch.zeros(0, 6),
                                scores=torch.zeros(0)))])
    with pytest.raises(ValueError, match='need annotations'):
        METRICS.build(dict(type='LUNA16Metric', excluded='e.csv'))
