# Copyright (c) mmlesion contributors. All rights reserved.
"""KiTS19 / LiTS / NIH-LN converters on small files made with SimpleITK."""
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmlesion.datasets import DeepLesionDataset
from mmlesion.apps.own_data import ConvertSettings, convert_dataset
from mmlesion.testing.volume_files import (SeriesLayout, write_dicom_series,
                                           write_volume)

TOOLS = Path(__file__).resolve().parents[3] / 'tools' / 'dataset_converters'


def run_tool(name, argv, capsys):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    status = module.main(argv)
    out, err = capsys.readouterr()
    summary = json.loads(out.split('summary json: ')[1]) if status == 0 \
        else None
    return status, summary, err


def _case(shape=(16, 32, 32)):
    img = np.full(shape, -100, np.int16)
    img[:, 0] = -1000  # air at the border: a CT in HU (the converter's CT check)
    seg = np.zeros(shape, np.uint8)
    seg[3:12, 5:25, 4:20] = 1  # organ
    seg[4:7, 8:12, 6:10] = 2  # tumour 1: z 4..6
    seg[8:11, 15:20, 12:18] = 2  # tumour 2: z 8..10
    img[seg == 2] = 80
    return img, seg


# RAS-stored NIfTI, as most KiTS / LiTS files: reoriented to LPS on load
RAS = (-1, 0, 0, 0, -1, 0, 0, 0, 1)


def test_kits19_cli_and_export(tmp_path, capsys):
    root = tmp_path / 'kits19' / 'data'
    for i in (0, 1):
        img, seg = _case()
        d = root / f'case_{i:05d}'
        write_volume(str(d / 'imaging.nii.gz'), img, direction=RAS)
        write_volume(str(d / 'segmentation.nii.gz'), seg, direction=RAS)
    write_volume(str(root / 'case_00210' / 'imaging.nii.gz'), img)
    out = str(tmp_path / 'kits.json')
    export = str(tmp_path / 'kits_2d')
    status, summary, err = run_tool('kits19', [
        str(root), '--out', out, '--export-2d', export, '--num-slices', '3'
    ], capsys)
    assert status == 0, err
    assert summary['volumes'] == 2 and summary['lesions'] == 4
    data = json.load(open(out))
    assert data['metainfo']['lesion_labels'] == [2]
    ann = data['volumes'][0]['annotations']
    assert [a['num_voxels'] for a in ann] == [48, 90]
    assert data['volumes'][0]['mask_file'].endswith('segmentation.nii.gz')
    # kidney + tumour as one class: components of labels 1 and 2
    status, summary, _ = run_tool('kits19', [
        str(root), '--out', out, '--labels', '1', '2', '--overwrite'
    ], capsys)
    assert status == 0 and summary['lesions'] == 2
    # 2D export: one key slice per tumour centre (z 5 and 9 -> 006, 010)
    init_default_scope('mmdet')
    ds = DeepLesionDataset(
        data_root=export, ann_file='DL_info.csv', test_mode=True)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    names = sorted(d['file_name'] for d in infos)
    assert names == [
        '000001_01_01_006.png', '000001_01_01_010.png',
        '000002_01_01_006.png', '000002_01_01_010.png'
    ]
    assert all(i['instances'][0]['lesion_type'] == 6 for i in infos)
    files = sorted(os.listdir(os.path.join(export, 'Images_png',
                                           '000001_01_01')))
    # 3 slices at 2 mm on 2 mm slices: key +- 1, +1 for interpolation;
    # and the lesion-free slices drawn as negatives (one per key slice)
    # with theirs
    with open(os.path.join(export, 'lens_extra_slices.json')) as f:
        extra = json.load(f)
    negs = [s['slice'] for s in extra['slices']
            if s['series_dir'] == '000001_01_01']
    assert len(negs) == 2 and not {6, 10} & set(negs)
    expected = set(range(4, 13))
    for z in negs:
        expected |= {k for k in range(z - 2, z + 3) if 1 <= k <= 16}
    assert files == [f'{z:03d}.png' for z in sorted(expected)]


def test_lits_and_geometry_mismatch(tmp_path, capsys):
    root = tmp_path / 'LiTS' / 'batch1'
    img, seg = _case()
    write_volume(str(root / 'volume-3.nii'), img)
    write_volume(str(root / 'segmentation-3.nii'), seg)
    out = str(tmp_path / 'lits.json')
    status, summary, err = run_tool(
        'lits', [str(tmp_path / 'LiTS'), '--out', out], capsys)
    assert status == 0, err
    assert summary['lesions'] == 2
    assert json.load(open(out))['volumes'][0]['id'] == 'volume-3'
    # a label map with another spacing than its scan
    write_volume(
        str(root / 'segmentation-3.nii'), seg, spacing_xyz=(0.7, 0.7, 2.5))
    status, _, err = run_tool(
        'lits', [str(tmp_path / 'LiTS'), '--out', out, '--overwrite'], capsys)
    assert status == 1
    assert 'segmentation-3.nii: geometry' in err and 'volume-3.nii' in err
    os.remove(root / 'volume-3.nii')
    status, _, err = run_tool(
        'lits', [str(tmp_path / 'LiTS'), '--out', out, '--overwrite'], capsys)
    assert status == 1 and 'volume-3.nii[.gz] is missing' in err


def test_nih_ln(tmp_path, capsys):
    img, seg = _case(shape=(6, 16, 16))
    seg[seg == 1] = 0
    uid = '1.2.826.0.1.3680043.2.1125.77'
    write_dicom_series(
        str(tmp_path / 'scans' / 'ABD_LYMPH_001' / 'study' / 'series'),
        uid,
        img,
        layout=SeriesLayout(spacing_xyz=(0.7, 0.7, 2.0),
                            origin_xyz=(-100.0, -80.0, -300.0)))
    write_volume(
        str(tmp_path / 'masks' / 'ABD_LYMPH_001' /
            'ABD_LYMPH_001_mask.nii.gz'), (seg > 0).astype(np.uint8))
    out = str(tmp_path / 'nih_ln.json')
    status, summary, err = run_tool(
        'nih_ln',
        [str(tmp_path / 'scans'),
         str(tmp_path / 'masks'), '--out', out], capsys)
    assert status == 0, err
    assert summary['lesions'] == 1  # the second node is cut at z = 5
    vol = json.load(open(out))['volumes'][0]
    assert vol['id'] == 'ABD_LYMPH_001' and vol['series_uid'] == uid
    assert vol['annotations'][0]['bbox'] == [5.5, 7.5, 3.5, 9.5, 11.5, 5.5]


def test_kits19_without_cases(tmp_path):
    with pytest.raises(FileNotFoundError, match='no KiTS19 case_'):
        convert_dataset(
            ConvertSettings(str(tmp_path), str(tmp_path / 'x.json'), 'kits19'))
