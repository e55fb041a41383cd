# Copyright (c) mmlesion contributors. All rights reserved.
"""Release replicas: the layout and headers of the public releases (checked
against the real files of the shared data folder where it is present),
determinism, the marker and the atomic write."""
import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import SimpleITK as sitk

from mmlesion.datasets.deeplesion.dl_info import DL_INFO_COLUMNS
from projects.replicas import release as rr
from projects.replicas.release import (REPLICA_DATASETS,
                                       generate_release_replica)
from mmlesion.datasets.replica_marker import (REPLICA_FILE,
                                              REPLICA_FIRST_LINE,
                                              find_replica_marker)
from mmlesion.testing import shared_data_root
from tests.helpers.demo_sets import dataset_digest


@pytest.fixture(scope='module')
def replicas(tmp_path_factory):
    root = tmp_path_factory.mktemp('replicas')
    return {name: Path(generate_release_replica(
        name, root / name, seed=0, size='tiny')['out_dir'])
            for name in REPLICA_DATASETS}


def _shared(*parts) -> Path:
    root = shared_data_root()
    path = None if root is None else Path(root).joinpath(*parts)
    if path is None or not path.exists():
        pytest.skip(f'shared data file {"/".join(parts)} not available')
    return path


def _first_line(path: Path) -> bytes:
    return path.read_bytes().split(b'\n', 1)[0] + b'\n'


def _files(root: Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob('*')
                  if p.is_file())


# ------------------------------------------------------------------ marker
def test_marker_in_every_replica(replicas, tmp_path):
    for name, root in replicas.items():
        text = (root / REPLICA_FILE).read_text(encoding='utf-8')
        assert text.splitlines()[0] == REPLICA_FIRST_LINE
        found = find_replica_marker(root)
        assert found['dataset'] == name and found['size'] == 'tiny'
        assert found['seed'] == '0' and found['root'] == str(root)
    # from a sub-folder or a file the converters are pointed at
    kits = replicas['kits19']
    assert find_replica_marker(kits / 'data')['dataset'] == 'kits19'
    assert find_replica_marker(
        kits / 'data' / 'case_00000' / 'imaging.nii.gz')['root'] == str(kits)
    assert find_replica_marker(tmp_path) is None
    (tmp_path / REPLICA_FILE).write_text('my notes\n')  # not a marker
    assert find_replica_marker(tmp_path) is None


def test_real_data_is_not_a_replica():
    assert find_replica_marker(_shared('luna16')) is None


# -------------------------------------------------------------- DeepLesion
def test_deeplesion_layout(replicas):
    root = replicas['deeplesion']
    files = _files(root)
    assert {f for f in files if not f.startswith('Images_png/')} == {
        'DL_info.csv', 'DeepLesion_manual_1K_test_release.pkl', REPLICA_FILE}
    import re
    pattern = re.compile(r'^Images_png/\d{6}_\d{2}_\d{2}/\d{3}\.png$')
    pngs = [f for f in files if f.startswith('Images_png/')]
    assert pngs and all(pattern.match(f) for f in pngs)
    raw = cv2.imread(str(root / pngs[0]), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.ndim == 2
    hu = raw.astype(np.int32) - 32768
    assert hu.min() < -500 and hu.max() > 0  # air and tissue
    header = _first_line(root / 'DL_info.csv')
    assert header.decode().rstrip('\n').split(',') == list(DL_INFO_COLUMNS)
    import csv
    with open(root / 'DL_info.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert {r['Train_Val_Test'] for r in rows} == {'1', '2', '3'}
    for row in rows:  # 30 mm of stored slices each side, as released
        lo, hi = (int(v) for v in row['Slice_range'].split(', '))
        key, dz = int(row['Key_slice_index']), float(
            row['Spacing_mm_px_'].split(', ')[2])
        assert round((key - lo) * dz) == 30 == round((hi - key) * dz)
        series = row['File_name'][:12]
        for index in (lo, key, hi):
            assert (root / 'Images_png' / series / f'{index:03d}.png'
                    ).is_file()


def test_deeplesion_header_is_the_real_one(replicas):
    real = _shared('deeplesion', 'annotations', 'DL_info_val.csv')
    assert _first_line(replicas['deeplesion'] / 'DL_info.csv') == \
        _first_line(real)


def test_deeplesion_manual_3d_set(replicas):
    from mmlesion.evaluation.functional.froc_3d import \
        load_deeplesion_manual_3d
    path = replicas['deeplesion'] / 'DeepLesion_manual_1K_test_release.pkl'
    subvols = load_deeplesion_manual_3d(str(path))
    assert subvols and {s.split for s in subvols} <= {'val', 'test'}
    for s in subvols:
        assert (s.boxes[:, 2] >= s.first_slice).all()
        assert (s.boxes[:, 5] <= s.last_slice).all()
        folder = replicas['deeplesion'] / 'Images_png' / s.volume
        for z in range(s.first_slice, s.last_slice + 1):
            assert (folder / f'{z:03d}.png').is_file()
    with open(path, 'rb') as f:
        assert f.read(2) == b'\x80\x03'  # pickle protocol 3, as released


def test_deeplesion_manual_3d_format_is_the_real_one(replicas):
    real = _shared('deeplesion', 'annotations',
                   'DeepLesion_manual_1K_test_release.pkl')
    with open(real, 'rb') as f:
        head = f.read(2)
        f.seek(0)
        data = pickle.load(f)
    mine = pickle.loads(
        (replicas['deeplesion'] /
         'DeepLesion_manual_1K_test_release.pkl').read_bytes())
    assert head == b'\x80\x03' and list(data) == list(mine) == ['val', 'test']
    real_box = next(iter(data['test'].values()))
    mine_box = next(iter(mine['test'].values()))
    assert real_box.dtype == mine_box.dtype and mine_box.shape[1] == 6


@pytest.mark.parametrize('split', ['train', 'val', 'test'])
def test_deeplesion_dataset_loads_the_replica(replicas, split):
    from mmlesion.datasets import DeepLesionDataset
    ds = DeepLesionDataset(data_root=str(replicas['deeplesion']),
                           split=split, pipeline=[], serialize_data=False)
    assert len(ds) >= 1
    assert ds.get_data_info(0)['instances']


# ------------------------------------------------------------------ LUNA16
def test_luna16_layout(replicas):
    root = replicas['luna16']
    for i in range(10):
        assert (root / f'subset{i}').is_dir()
    uids = (root / 'seriesuids.csv').read_bytes().decode().split('\r\n')
    assert uids[-1] == '' and uids[:-1] == sorted(uids[:-1])
    uids = uids[:-1]
    # two scans with nodules and one without (the release's negative
    # patients, TNP's), the latter in subset0 beside one with nodules
    assert len(uids) == 3 and all(len(u) == 64 for u in uids)
    noduled = {r.split(',')[0] for r in (root / 'annotations.csv')
               .read_text().splitlines()[1:]}
    (negative, ) = set(uids) - noduled
    assert len(noduled) == 2
    assert len(list(root.glob('subset0/*.mhd'))) == 2
    assert (root / 'subset0' / f'{negative}.mhd').is_file()
    for uid in uids:
        mhd = list(root.glob(f'subset*/{uid}.mhd'))
        assert len(mhd) == 1 and mhd[0].with_suffix('.raw').is_file()
        header = mhd[0].read_text().splitlines()
        for line in ('TransformMatrix = 1 0 0 0 1 0 0 0 1',
                     'AnatomicalOrientation = RAI', 'ElementType = MET_SHORT',
                     'CompressedData = False',
                     f'ElementDataFile = {uid}.raw'):
            assert line in header
        mask_hdr = root / 'seg-lungs-LUNA16' / f'{uid}.mhd'
        assert f'ElementDataFile = {uid}.zraw' in mask_hdr.read_text()
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(mask_hdr)))
        assert set(np.unique(mask)) <= {0, 3, 4, 5}
        assert {3, 4} <= set(np.unique(mask))
        img = sitk.ReadImage(str(mhd[0]))
        assert img.GetPixelID() == sitk.sitkInt16
        assert mask.shape == sitk.GetArrayViewFromImage(img).shape
    for name, last in (('annotations.csv', 'diameter_mm'),
                       ('annotations_excluded.csv', 'diameter_mm'),
                       ('candidates.csv', 'class'),
                       ('candidates_V2.csv', 'class')):
        data = (root / name).read_bytes()
        assert data.startswith(
            f'seriesuid,coordX,coordY,coordZ,{last}\r\n'.encode())
        assert data.endswith(b'\r\n') and b'\n' not in data.replace(
            b'\r\n', b'')
        rows = [r.split(',') for r in data.decode().split('\r\n')[1:-1]]
        assert rows and all(r[0] in uids for r in rows)
    # the left lung (label 3) lies at +x (LPS), where the lung mask reader
    # and the official masks put it
    from mmlesion.datasets.volumes import VolumeOptions, load_ct_volume
    vol = load_ct_volume(str(root / 'seg-lungs-LUNA16' / f'{uids[0]}.mhd'),
                         scan_checks=dict(force_ct=True),
                         options=VolumeOptions(dtype=None))
    cols = np.nonzero(vol.array == 3)[2]
    x = vol.origin_xyz[0] + cols * vol.spacing_zyx[2]
    assert (x > 0).all()


@pytest.mark.parametrize('name', ['annotations.csv',
                                  'annotations_excluded.csv'])
def test_luna16_headers_are_the_real_ones(replicas, name):
    real = _shared('luna16', name)
    assert _first_line(replicas['luna16'] / name) == _first_line(real)


def test_luna16_seriesuids_as_the_real_file(replicas):
    real = _shared('luna16', 'seriesuids.csv').read_bytes()
    mine = (replicas['luna16'] / 'seriesuids.csv').read_bytes()
    assert real.endswith(b'\r\n') and mine.endswith(b'\r\n')
    assert not real.startswith(b'seriesuid') and not mine.startswith(
        b'seriesuid')


# ------------------------------------------------------------------ KiTS19
def test_kits19_layout(replicas):
    root = replicas['kits19']
    assert _files(root) == [
        REPLICA_FILE, 'data/case_00000/imaging.nii.gz',
        'data/case_00000/segmentation.nii.gz',
        'data/case_00210/imaging.nii.gz', 'data/kits.json']
    seg = sitk.ReadImage(str(root / 'data/case_00000/segmentation.nii.gz'))
    img = sitk.ReadImage(str(root / 'data/case_00000/imaging.nii.gz'))
    assert seg.GetPixelID() == sitk.sitkUInt8
    assert set(np.unique(sitk.GetArrayViewFromImage(seg))) == {0, 1, 2}
    for image in (seg, img):
        assert image.GetOrigin() == (0., 0., 0.)
        assert np.allclose(image.GetDirection(),
                           (0, 0, 1, 0, 1, 0, -1, 0, 0))
    records = json.loads((root / 'data/kits.json').read_text())
    assert [r['case_id'] for r in records] == ['case_00000']
    assert records[0]['voxel_spacing']['z_spacing'] == seg.GetSpacing()[0]


def test_kits19_files_as_the_real_ones(replicas):
    real_json = json.loads(_shared('kits19', 'kits.json').read_text())
    mine = json.loads(
        (replicas['kits19'] / 'data' / 'kits.json').read_text())

    def keys(record):
        return [(k, keys(v) if isinstance(v, dict) else None)
                for k, v in record.items()]

    assert keys(mine[0]) == keys(real_json[0])
    assert (replicas['kits19'] / 'data' / 'kits.json').read_bytes(
    ).endswith(b'}\n]') == _shared('kits19', 'kits.json').read_bytes(
    ).endswith(b'}\n]')
    real = sitk.ReadImage(
        str(_shared('kits19', 'case_00002', 'segmentation.nii.gz')))
    seg = sitk.ReadImage(str(replicas['kits19'] / 'data' / 'case_00000' /
                             'segmentation.nii.gz'))
    assert seg.GetPixelID() == real.GetPixelID()
    assert np.allclose(seg.GetDirection(), real.GetDirection())
    assert np.allclose(seg.GetOrigin(), real.GetOrigin())


# -------------------------------------------------------------------- LiTS
def test_lits_layout(replicas):
    root = replicas['lits']
    assert _files(root) == [
        REPLICA_FILE, 'Training Batch 1/segmentation-0.nii',
        'Training Batch 1/volume-0.nii', 'Training Batch 2/segmentation-28.nii',
        'Training Batch 2/volume-28.nii']
    seg = sitk.ReadImage(str(root / 'Training Batch 1/segmentation-0.nii'))
    assert set(np.unique(sitk.GetArrayViewFromImage(seg))) == {0, 1, 2}
    assert (root / 'Training Batch 1/volume-0.nii').read_bytes()[:2] != \
        b'\x1f\x8b'  # not gzipped


# ------------------------------------------------------------------ NIH-LN
def test_nih_ln_layout(replicas):
    from mmlesion.datasets.volumes import (VolumeOptions, list_dicom_series,
                                           load_ct_volume)
    root = replicas['nih_ln']
    masks = sorted((root / 'MED_ABD_LYMPH_MASKS').iterdir())
    assert [m.name for m in masks] == ['ABD_LYMPH_001', 'MED_LYMPH_001']
    for folder in masks:
        patient = folder.name
        assert [p.name for p in folder.iterdir()] == [
            f'{patient}_mask.nii.gz']
        series = [p.parent for p in (root / 'CT Lymph Nodes' / patient
                                     ).rglob('1-001.dcm')]
        assert len(series) == 1 and len(list_dicom_series(
            str(series[0]))) == 1
        vol = load_ct_volume(str(series[0]))
        mask = load_ct_volume(str(folder / f'{patient}_mask.nii.gz'),
                              scan_checks=dict(force_ct=True),
                              options=VolumeOptions(dtype=None))
        assert mask.shape_zyx == vol.shape_zyx
        assert np.allclose(mask.origin_xyz, vol.origin_xyz, atol=1e-3)
        assert set(np.unique(mask.array)) == {0, 1}
        assert vol.array.min() <= -1000 + 50


# ------------------------------------------------------ determinism, writes
@pytest.mark.parametrize('name', sorted(REPLICA_DATASETS))
def test_deterministic_by_seed(replicas, name, tmp_path):
    again = generate_release_replica(name, tmp_path / 'again', seed=0,
                                     size='tiny')
    assert dataset_digest(again['out_dir']) == dataset_digest(
        replicas[name])
    other = generate_release_replica(name, tmp_path / 'other', seed=1,
                                     size='tiny')
    assert dataset_digest(other['out_dir']) != dataset_digest(
        replicas[name])


def test_refuses_user_folders(tmp_path):
    out = tmp_path / 'LUNA16'
    out.mkdir()
    (out / 'annotations.csv').write_text('mine\n')
    with pytest.raises(FileExistsError, match='not empty'):
        generate_release_replica('lits', out, size='tiny')
    with pytest.raises(FileExistsError, match=REPLICA_FILE):
        generate_release_replica('lits', out, size='tiny', overwrite=True)
    assert (out / 'annotations.csv').read_text() == 'mine\n'
    # a replica is replaced with overwrite
    rep = tmp_path / 'rep'
    generate_release_replica('lits', rep, size='tiny')
    generate_release_replica('kits19', rep, size='tiny', overwrite=True)
    assert find_replica_marker(rep)['dataset'] == 'kits19'
    assert not (rep / 'Training Batch 1').exists()
    with pytest.raises(ValueError, match='unknown dataset'):
        generate_release_replica('lidc', tmp_path / 'x')
    with pytest.raises(ValueError, match='unknown replica size'):
        generate_release_replica('lits', tmp_path / 'x', size='huge')


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    writer, layout = REPLICA_DATASETS['lits']

    def broken(root, size, seed, progress=None):
        writer(root, size, seed, progress)
        raise KeyboardInterrupt

    monkeypatch.setitem(rr.REPLICA_DATASETS, 'lits', (broken, layout))
    with pytest.raises(KeyboardInterrupt):
        generate_release_replica('lits', tmp_path / 'LiTS', size='tiny')
    assert list(tmp_path.iterdir()) == []
