# Copyright (c) mmlesion contributors. All rights reserved.
"""The converters on the synthetic volume set: boxes land on the planted
lesions of ``ground_truth.json`` (written independently by the generator)."""
import json

import numpy as np
import pytest

from mmlesion.apps.own_data import ConvertSettings, convert_dataset
from projects.study_demo.synthetic.volumes import (GROUND_TRUTH_FILE,
                                                   generate_demo_volumes)

SMALL = dict(num_luna=2, num_kits=1, num_lits=1, size_range=(96, 104),
             num_slices_range=(40, 48), unannotated_prob=.3)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp('vols') / 'demo_volumes'
    generate_demo_volumes(root, seed=5, **SMALL)
    gt = json.loads((root / GROUND_TRUTH_FILE).read_text())
    return root, gt


def _gt_scans(gt, dataset):
    return {s['id']: s for s in gt['scans'] if s['dataset'] == dataset}


def _centre(bbox):
    b = np.asarray(bbox)
    return ((b[:3] + b[3:]) / 2)[::-1]  # z, y, x


def test_luna16_boxes_on_planted_nodules(demo, tmp_path):
    root, gt = demo
    luna = root / 'luna16'
    out = str(tmp_path / 'luna.json')
    convert_dataset(ConvertSettings(
        str(luna), out, 'luna16', boxes=str(luna / 'annotations.csv'),
        excluded=str(luna / 'annotations_excluded.csv'),
        seriesuids=str(luna / 'seriesuids.csv'), show_progress=False))
    data = json.load(open(out))
    scans = _gt_scans(gt, 'luna16')
    assert len(data['volumes']) == len(scans) == 2
    lesions = [les for les in gt['lesions'] if les['dataset'] == 'luna16']
    checked = 0
    for vol in data['volumes']:
        ref = next(s for s in scans.values()
                   if s['series_uid'] == vol['series_uid'])
        assert vol['shape_zyx'] == ref['shape_zyx']
        np.testing.assert_allclose(vol['spacing_zyx'], ref['spacing_zyx'])
        np.testing.assert_allclose(vol['origin_xyz'], ref['origin_xyz'],
                                   atol=1e-3)
        mine = [a for a in vol['annotations'] if not a['ignore']]
        planted = [
            les for les in lesions if les['series_uid'] == vol['series_uid']
            and les['annotated'] and not les['excluded']
        ]
        assert len(mine) == len(planted)
        for les in planted:
            best = min(mine, key=lambda a: np.linalg.norm(
                np.subtract(a['center_world'], les['center_world'])))
            np.testing.assert_allclose(
                best['center_world'], les['center_world'], atol=1e-3)
            np.testing.assert_allclose(
                _centre(best['bbox']), les['center_voxel_zyx'], atol=1e-3)
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize('dataset', ['kits', 'lits'])
def test_mask_boxes_on_planted_tumours(demo, tmp_path, dataset):
    root, gt = demo
    out = str(tmp_path / f'{dataset}.json')
    convert_dataset(ConvertSettings(
        str(root / dataset), out, 'kits19' if dataset == 'kits' else 'lits',
        show_progress=False))
    data = json.load(open(out))
    vol = data['volumes'][0]
    ref = next(iter(_gt_scans(gt, dataset).values()))
    # NIfTI stored in other axis orders: read back in the canonical grid
    assert vol['shape_zyx'] == ref['shape_zyx']
    np.testing.assert_allclose(vol['origin_xyz'], ref['origin_xyz'],
                               atol=1e-3)
    planted = [
        les for les in gt['lesions']
        if les['scan'] == ref['id'] and les['annotated']
    ]
    mine = vol['annotations']
    assert 1 <= len(mine) <= len(planted)  # touching tumours merge
    for les in planted:
        # every planted tumour centre lies inside one of the boxes
        c = np.asarray(les['center_voxel_zyx'])[::-1]
        assert any(
            np.all(c >= a['bbox'][:3]) and np.all(c <= a['bbox'][3:])
            for a in mine), les
