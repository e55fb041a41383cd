# Copyright (c) mmlesion contributors. All rights reserved.
"""The LUNA16 converter (scans made here with SimpleITK; the CSV readers
are the evaluator's, tested on the real files in
tests/test_evaluation/test_functional/test_luna16.py)."""
import csv
import importlib.util
import json
import os.path as osp
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmlesion.datasets import CTVolumeDataset, DeepLesionDataset
from mmlesion.datasets.transforms import LoadCTVolume, LoadDeepLesionSlices
from mmlesion.datasets.volumes import load_ct_volume
from mmlesion.testing.volume_files import write_volume

TOOLS = Path(__file__).resolve().parents[3] / 'tools' / 'dataset_converters'


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_csv(path, rows, header=('seriesuid', 'coordX', 'coordY', 'coordZ',
                                   'diameter_mm')):
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)
    return str(path)


UID_A = '1.3.6.1.4.1.14519.5.2.1.6279.6001.111'
UID_B = '1.3.6.1.4.1.14519.5.2.1.6279.6001.222'
NODULE = (-80.0, -50.0, -270.0)  # world mm, 8 mm nodule in scan A


def _scan(shape, spacing_xyz, origin):
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    arr = np.full(shape, -900, np.int16)
    # world position of every voxel (identity direction)
    wx = origin[0] + x * spacing_xyz[0]
    wy = origin[1] + y * spacing_xyz[1]
    wz = origin[2] + z * spacing_xyz[2]
    r2 = (wx - NODULE[0])**2 + (wy - NODULE[1])**2 + (wz - NODULE[2])**2
    arr[r2 <= 16] = 60
    return arr


@pytest.fixture
def luna_root(tmp_path):
    root = tmp_path / 'LUNA16'
    for uid, shape, sp in ((UID_A, (24, 64, 64), (0.7, 0.7, 2.5)),
                           (UID_B, (30, 48, 48), (0.8, 0.8, 1.25))):
        origin = (-100.0, -80.0, -300.0)
        write_volume(
            str(root / 'subset0' / f'{uid}.mhd'), _scan(shape, sp, origin),
            sp, origin)
    _write_csv(root / 'annotations.csv', [[UID_A, *NODULE, 8.0]])
    _write_csv(root / 'annotations_excluded.csv',
               [[UID_A, -70.0, -60.0, -290.0, -1],
                [UID_B, -90.0, -60.0, -285.0, 3.5]])
    _write_csv(root / 'seriesuids.csv', [[UID_A], [UID_B]], header=())
    return root


def test_convert_luna16_with_2d_export(luna_root, tmp_path, capsys):
    tool = load_tool('luna16')
    out = str(tmp_path / 'out' / 'luna16.json')
    export = str(tmp_path / 'luna16_2d')
    argv = [
        str(luna_root), '--annotations',
        str(luna_root / 'annotations.csv'), '--excluded',
        str(luna_root / 'annotations_excluded.csv'), '--seriesuids',
        str(luna_root / 'seriesuids.csv'), '--out', out, '--export-2d',
        export, '--num-slices', '3', '--interval-mm', '2'
    ]
    assert tool.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.split('summary json: ')[1])
    assert summary['volumes'] == 2 and summary['lesions'] == 1
    assert summary['ignored'] == 2 and summary['key_slice_rows'] == 1
    data = json.load(open(out))
    assert data['metainfo']['classes'] == ['nodule']
    vol_a = data['volumes'][0]
    assert vol_a['id'] == UID_A and vol_a['series_uid'] == UID_A
    assert not osp.isabs(vol_a['file'])
    nod, exc = vol_a['annotations']
    assert nod['center_world'] == pytest.approx(NODULE)
    assert not nod['ignore'] and exc['ignore'] and exc['diameter_mm'] == -1
    ext = np.subtract(exc['bbox'][3:], exc['bbox'][:3])
    np.testing.assert_allclose(ext, [10 / 0.7, 10 / 0.7, 10 / 2.5])

    # the 3D dataset puts the nodule's bright voxels inside its box
    init_default_scope('mmdet')
    # the scans are in a sibling folder of out/: data_root covers both
    ds = CTVolumeDataset(ann_file=out, data_root=str(tmp_path),
                         pipeline=[LoadCTVolume()])
    res = ds[0]
    x1, y1, z1, x2, y2, z2 = res['gt_bboxes'][0]
    zz, yy, xx = np.nonzero(res['img'] > 0)
    assert xx.min() >= x1 and xx.max() <= x2 and yy.min() >= y1
    assert yy.max() <= y2 and zz.min() >= z1 and zz.max() <= z2

    # re-running refuses to overwrite, then --overwrite works
    assert tool.main(argv) == 1
    assert '--overwrite' in capsys.readouterr().err
    assert tool.main(argv + ['--overwrite']) == 0

    # the 2D export trains the 2D detectors unchanged
    ds2d = DeepLesionDataset(
        data_root=export,
        ann_file='DL_info.csv',
        data_prefix=dict(img='Images_png/'),
        pipeline=[LoadDeepLesionSlices(num_slices=3, interval_mm=2.0)])
    assert len(ds2d) == 1
    info = ds2d.get_data_info(0)
    assert info['spacing'] == pytest.approx(0.7)
    assert info['slice_interval'] == pytest.approx(2.5)
    vol = load_ct_volume(luna_root / 'subset0' / f'{UID_A}.mhd')
    c = vol.world_to_voxel(NODULE)[0]
    assert info['key_slice'] == int(round(c[0])) + 1
    x1, y1, x2, y2 = info['instances'][0]['bbox']
    # the 8 mm circle at the centre slice in mmdet's box (pixel i spans
    # [i, i + 1): the centre voxel c at c + 0.5)
    assert (x1 + x2) / 2 == pytest.approx(c[2] + 0.5, abs=0.01)
    assert (y1 + y2) / 2 == pytest.approx(c[1] + 0.5, abs=0.01)
    assert x2 - x1 == pytest.approx(8 / 0.7, abs=0.01)
    sample = ds2d[0]
    assert sample['num_fallback_slices'] == 0
    key = int(round(c[0]))
    np.testing.assert_array_equal(sample['img'][..., 1], vol.array[key])
    # 2 mm from the key slice, between stored slices 2.5 mm apart
    np.testing.assert_allclose(
        sample['img'][..., 2],
        0.2 * vol.array[key] + 0.8 * vol.array[key + 1],
        atol=1e-3)


def test_nodule_outside_scan(luna_root, tmp_path):
    _write_csv(luna_root / 'annotations.csv', [[UID_A, 500.0, -50.0, -270.0,
                                                6.0]])
    from mmlesion.apps.own_data import ConvertSettings, convert_dataset
    with pytest.raises(ValueError,
                       match=r'annotations.csv: finding 1 \(series .*111, '
                       r'coordX/Y/Z \(500.0, -50.0, -270.0\)\): lies '
                       r'outside the scan'):
        convert_dataset(ConvertSettings(
            str(luna_root), str(tmp_path / 'x.json'), 'luna16',
            boxes=str(luna_root / 'annotations.csv'), show_progress=False))


def test_luna16_export_ignores_excluded_findings(luna_root, tmp_path,
                                                 capsys):
    """LENS: LUNA16's excluded findings are uncertain (ignored) boxes on
    the exported slices they cross, negative slices included."""
    from mmlesion.methods.lens.datasets import DeepLesionMinedDataset
    tool = load_tool('luna16')
    export = tmp_path / 'luna16_2d'
    assert tool.main([
        str(luna_root), '--annotations',
        str(luna_root / 'annotations.csv'), '--excluded',
        str(luna_root / 'annotations_excluded.csv'), '--seriesuids',
        str(luna_root / 'seriesuids.csv'), '--out',
        str(tmp_path / 'luna16.json'), '--export-2d',
        str(export), '--num-slices', '3', '--interval-mm', '2',
        '--negatives-per-key', '100'
    ]) == 0
    capsys.readouterr()
    vol = load_ct_volume(luna_root / 'subset0' / f'{UID_A}.mhd')
    c = vol.world_to_voxel((-70.0, -60.0, -290.0))[0]  # excluded, 10 mm
    init_default_scope('mmdet')
    ds = DeepLesionMinedDataset(
        data_root=str(export), ann_file='DL_info.csv',
        mined_ann_file='lens_extra_slices.json', pipeline=[])
    ignored = {}
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        for ins in info['instances']:
            if ins['ignore_flag']:
                ignored[info['key_slice']] = ins['bbox']
    # every slice the 10 mm sphere cuts (z +- 1 at 2.5 mm; at +- 2 it
    # touches a point), as a negative slice with an ignored box centred on
    # the finding
    assert sorted(ignored) == [int(round(c[0])) + 1 + d for d in
                               range(-1, 2)]
    x1, y1, x2, y2 = ignored[int(round(c[0])) + 1]  # mmdet's box
    assert (x1 + x2) / 2 == pytest.approx(c[2] + 0.5, abs=0.01)
    assert x2 - x1 == pytest.approx(10 / 0.7, abs=0.01)
    # scan B has no nodule, hence no DL_info row: its excluded finding
    # cannot be listed (documented)
    assert all(s.startswith('000001') for s in
               {osp.basename(osp.dirname(ds.get_data_info(i)['img_path']))
                for i in range(len(ds))})
