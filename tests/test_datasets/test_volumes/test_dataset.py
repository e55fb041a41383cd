# Copyright (c) mmlesion contributors. All rights reserved.
import json
import os.path as osp

import numpy as np
import pytest
import SimpleITK as sitk
from mmdet.registry import DATASETS
from mmengine.registry import init_default_scope

import mmlesion  # noqa: F401
from mmlesion.datasets.volumes import (box_center_world,
                                       box_from_world_sphere, load_ct_volume,
                                       volume_entry, write_annotation_file)


def _make_scan(folder, uid='1.2.840.1', shape=(12, 20, 24)):
    arr = np.full(shape, -1000, dtype=np.int16)
    arr[5:8, 8:12, 10:14] = 50
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.7, 0.8, 2.0))
    img.SetOrigin((-10.0, -20.0, -30.0))
    path = osp.join(folder, f'{uid}.mhd')
    sitk.WriteImage(img, path)
    return path


@pytest.fixture
def ann_file(tmp_path):
    scans = tmp_path / 'scans'
    scans.mkdir()
    path = _make_scan(str(scans))
    vol = load_ct_volume(path)
    # the bright block covers voxels x 10..13, y 8..11, z 5..7
    bbox = [9.5, 7.5, 4.5, 13.5, 11.5, 7.5]
    centre = box_center_world(vol, bbox)
    excluded = box_from_world_sphere(vol, [0.0, -12.0, -20.0], 4.0)
    entries = [
        volume_entry(vol, 'scan0', 'scans/1.2.840.1.mhd', [
            dict(bbox=bbox, center_world=centre, diameter_mm=3.0, label=0,
                 ignore=False),
            dict(bbox=excluded, center_world=[0.0, -12.0, -20.0],
                 diameter_mm=4.0, label=0, ignore=True)
        ]),
        volume_entry(vol, 'scan1', osp.abspath(path), [])
    ]
    out = str(tmp_path / 'ann.json')
    write_annotation_file(out, 'toy', ['nodule'], entries)
    with pytest.raises(FileExistsError, match='--overwrite'):
        write_annotation_file(out, 'toy', ['nodule'], entries)
    write_annotation_file(out, 'toy', ['nodule'], entries, overwrite=True)
    return out


def test_dataset_and_loading(ann_file):
    init_default_scope('mmdet')
    ds = DATASETS.build(
        dict(
            type='CTVolumeDataset',
            ann_file=ann_file,
            pipeline=[dict(type='LoadCTVolume')]))
    assert len(ds) == 2
    assert ds.metainfo['classes'] == ('nodule', )
    info = ds.get_data_info(0)
    assert info['img_id'] == 'scan0' and info['series_uid'] == '1.2.840.1'
    assert info['shape_zyx'] == (12, 20, 24)
    assert info['instances'][1]['ignore_flag'] == 1
    res = ds[0]
    assert res['img'].shape == (12, 20, 24) and res['img'].dtype == np.float32
    assert res['gt_bboxes'].shape == (2, 6)
    np.testing.assert_array_equal(res['gt_ignore_flags'], [False, True])
    np.testing.assert_array_equal(res['gt_bboxes_labels'], [0, 0])
    # the box covers exactly the bright voxels
    x1, y1, z1, x2, y2, z2 = res['gt_bboxes'][0]
    block = res['img'][int(z1 + .5):int(z2 + .5), int(y1 + .5):int(y2 + .5),
                       int(x1 + .5):int(x2 + .5)]
    assert (block == 50).all() and (res['img'] == 50).sum() == block.size
    # excluded sphere: 4 mm across -> 2 slices, 5 and 5.7 voxels in-plane
    ext = res['gt_bboxes'][1, 3:] - res['gt_bboxes'][1, :3]
    np.testing.assert_allclose(ext, [4 / 0.7, 4 / 0.8, 2.0], rtol=1e-5)
    assert ds[1]['gt_bboxes'].shape == (0, 6)

    # resampled to 1 mm: boxes follow
    ds = DATASETS.build(
        dict(
            type='CTVolumeDataset',
            ann_file=ann_file,
            filter_cfg=dict(filter_empty_gt=True),
            pipeline=[dict(type='LoadCTVolume', spacing_zyx=(1, 1, 1))]))
    assert len(ds) == 1
    res = ds[0]
    assert res['spacing_zyx'] == (1.0, 1.0, 1.0)
    assert res['ori_spacing_zyx'] == (2.0, 0.8, 0.7)
    ext = res['gt_bboxes'][0, 3:] - res['gt_bboxes'][0, :3]
    np.testing.assert_allclose(ext, [4 * 0.7, 4 * 0.8, 3 * 2.0], rtol=1e-5)


def test_geometry_mismatch_and_bad_file(ann_file, tmp_path):
    init_default_scope('mmdet')
    data = json.load(open(ann_file))
    data['volumes'][0]['shape_zyx'] = [13, 20, 24]
    bad = str(tmp_path / 'bad.json')
    json.dump(data, open(bad, 'w'))
    ds = DATASETS.build(
        dict(
            type='CTVolumeDataset',
            ann_file=bad,
            pipeline=[dict(type='LoadCTVolume')]))
    with pytest.raises(ValueError, match=r'1\.2\.840\.1\.mhd: volume shape'):
        ds[0]
    data['volumes'][0]['annotations'][0]['bbox'][3] = 1.0
    json.dump(data, open(bad, 'w'))
    with pytest.raises(
            ValueError,
            match=r"bad.json: volumes\[0\] \(id 'scan0'\), annotations\[0\], "
            r'field "bbox": x2 > x1'):
        DATASETS.build(dict(type='CTVolumeDataset', ann_file=bad))
    data['volumes'][0]['spacing_zyx'] = [0, 1, 1]
    json.dump(data, open(bad, 'w'))
    with pytest.raises(ValueError, match='field "spacing_zyx"'):
        DATASETS.build(dict(type='CTVolumeDataset', ann_file=bad))


def test_crops_per_scan_lists_every_scan_k_times(ann_file):
    init_default_scope('mmdet')
    base = dict(type='CTVolumeDataset', ann_file=ann_file, pipeline=[])
    ds = DATASETS.build(dict(base, crops_per_scan=3))
    assert len(ds) == 6
    assert [ds.get_data_info(i)['img_id'] for i in range(6)] == \
        ['scan0', 'scan1'] * 3
    # the empty-scan filter applies first: scan0 three times
    ds = DATASETS.build(dict(base, crops_per_scan=3,
                             filter_cfg=dict(filter_empty_gt=True)))
    assert [ds.get_data_info(i)['img_id'] for i in range(len(ds))] == \
        ['scan0'] * 3
    with pytest.raises(ValueError, match='test_mode'):
        DATASETS.build(dict(base, crops_per_scan=2, test_mode=True))
    with pytest.raises(ValueError, match='int >= 1'):
        DATASETS.build(dict(base, crops_per_scan=0))
