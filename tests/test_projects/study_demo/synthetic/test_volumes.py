# Copyright (c) mmlesion contributors. All rights reserved.
"""The synthetic CT volume set (LUNA16 / KiTS19 / LiTS layouts)."""
import csv
import importlib.util
import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from projects.study_demo.synthetic.volumes import (GROUND_TRUTH_FILE,
                                                   LUNA16_COLUMNS,
                                                   DemoVolumeConfig,
                                                   DemoVolumeGenerator,
                                                   generate_demo_volumes)
from mmlesion.testing import repo_root, shared_data_root
from tests.helpers.demo_sets import dataset_digest

# small scans: the test set renders in ~2 s
SMALL = dict(num_luna=3, num_kits=1, num_lits=1, size_range=(96, 112),
             num_slices_range=(48, 64), small_nodule_prob=1.,
             unannotated_prob=.3)


@pytest.fixture(scope='module')
def volume_set(tmp_path_factory):
    root = tmp_path_factory.mktemp('vols') / 'demo_volumes'
    summary = generate_demo_volumes(root, seed=3, **SMALL)
    gt = json.loads((root / GROUND_TRUTH_FILE).read_text())
    return root, gt, summary


def _read_canonical(path):
    img = sitk.DICOMOrient(sitk.ReadImage(str(path)), 'LPS')
    return img, sitk.GetArrayFromImage(img)


def _read_csv(path):
    with open(path, newline='') as f:
        return list(csv.reader(f))


def test_layout_and_counts(volume_set):
    root, gt, summary = volume_set
    assert summary['luna16']['scans'] == 3
    assert summary['kits']['scans'] == summary['lits']['scans'] == 1
    luna = [s for s in gt['scans'] if s['dataset'] == 'luna16']
    for s in luna:
        assert (root / 'luna16' / 'subset0' / f"{s['series_uid']}.mhd"
                ).is_file()
        assert (root / 'luna16' / 'subset0' / f"{s['series_uid']}.raw"
                ).is_file()
    assert (root / 'kits/case_00000/imaging.nii.gz').is_file()
    assert (root / 'kits/case_00000/segmentation.nii.gz').is_file()
    assert (root / 'lits/volume-0.nii.gz').is_file()
    assert (root / 'lits/segmentation-0.nii.gz').is_file()
    kinds = {les['kind'] for les in gt['lesions']}
    assert {'small_nodule', 'kidney_tumour', 'liver_tumour'} <= kinds
    assert kinds & {'solid_nodule', 'part_solid_nodule'}
    assert any(not les['annotated'] and not les['excluded']
               for les in gt['lesions']), 'no unannotated lesion planted'
    assert gt['lookalikes'], 'no vessel bifurcation look-alike'
    assert {s['split'] for s in luna} == {'train', 'val'}


def test_geometry_read_back_by_simpleitk(volume_set):
    root, gt, _ = volume_set
    for s in gt['scans']:
        img, arr = _read_canonical(root / s['file'])
        assert list(arr.shape) == s['shape_zyx']
        assert np.allclose(img.GetSpacing()[::-1], s['spacing_zyx'])
        assert np.allclose(img.GetOrigin(), s['origin_xyz'], atol=1e-3)
        assert np.allclose(img.GetDirection(), np.eye(3).ravel())
        raw = sitk.ReadImage(str(root / s['file']))
        assert np.allclose(raw.GetDirection(), s['file_direction'])
        sz, sy, sx = s['spacing_zyx']
        assert .6 <= sx == sy <= .9 and 1. <= sz <= 2.5
        assert arr.dtype == np.int16
        body = arr[arr > -500]
        assert -1024 <= arr.min() and arr.max() <= 3071 and body.size
        if s['dataset'] == 'luna16':  # lung parenchyma around -860 HU
            lung = arr[(arr > -950) & (arr < -750)]
            assert lung.size > .1 * arr.size
            assert -880 < np.median(lung) < -840


def test_every_annotation_inside_its_scan_and_on_a_lesion(volume_set):
    root, gt, _ = volume_set
    scans = {s['id']: s for s in gt['scans']}
    by_uid = {s['series_uid']: s for s in gt['scans'] if s['series_uid']}
    arrays = {}

    def hu_at(scan, xyz):
        if scan['id'] not in arrays:
            arrays[scan['id']] = _read_canonical(root / scan['file'])
        img, arr = arrays[scan['id']]
        idx = np.array(img.TransformPhysicalPointToContinuousIndex(
            [float(v) for v in xyz]))[::-1]
        assert np.all(idx > 0) and np.all(idx < np.array(arr.shape) - 1)
        k, r, c = np.round(idx).astype(int)
        return idx, arr, (k, r, c)

    rows = _read_csv(root / 'luna16/annotations.csv')
    assert tuple(rows[0]) == LUNA16_COLUMNS
    assert len(rows) > 1
    for row in rows[1:]:
        scan = by_uid[row[0]]
        xyz = [float(v) for v in row[1:4]]
        diameter = float(row[4])
        assert diameter >= 3.
        idx, arr, (k, r, c) = hu_at(scan, xyz)
        # a nodule (solid 0-60 HU, ground glass > -650) in -860 HU lung:
        # the mean over a 3x3 core is far above the lung
        core = arr[k, r - 1:r + 2, c - 1:c + 2].mean()
        assert core > -700, (row, core)
        match = [les for les in gt['lesions'] if les['series_uid'] == row[0]
                 and np.allclose(les['center_world'], xyz, atol=1e-3)]
        assert len(match) == 1 and match[0]['annotated']
        assert np.allclose(match[0]['center_voxel_zyx'], idx, atol=1e-3)
    excluded = _read_csv(root / 'luna16/annotations_excluded.csv')
    assert tuple(excluded[0]) == LUNA16_COLUMNS
    diameters = [float(r[4]) for r in excluded[1:]]
    assert -1. in diameters and any(0 < d < 3 for d in diameters)
    for row in excluded[1:]:
        hu_at(by_uid[row[0]], [float(v) for v in row[1:4]])
    # unannotated lesions are in no file but are real (bright) lesions
    listed = {(r[0], r[1]) for r in rows[1:] + excluded[1:]}
    for les in gt['lesions']:
        if les['dataset'] == 'luna16' and not les['annotated'] and not les[
                'excluded']:
            assert (les['series_uid'], f"{les['center_world'][0]:.10g}") \
                not in listed
    uids = [r[0] for r in _read_csv(root / 'luna16/seriesuids.csv')]
    assert uids == [s['series_uid'] for s in gt['scans']
                    if s['dataset'] == 'luna16']
    # label maps: annotated tumours are label 2 at their centre and their
    # 3D boxes contain the whole label-2 component
    for les in gt['lesions']:
        if les['dataset'] == 'luna16':
            continue
        scan = scans[les['scan']]
        _, seg = _read_canonical(root / scan['label_file'])
        idx, arr, (k, r, c) = hu_at(scan, les['center_world'])
        assert seg[k, r, c] == (2 if les['annotated'] else seg[k, r, c])
        assert abs(float(arr[k, r - 1:r + 2, c - 1:c + 2].mean()) -
                   les['hu']) < 40
        if les['annotated']:
            x1, y1, z1, x2, y2, z2 = les['bbox_voxel']
            components, _ = ndimage.label(seg == 2)
            zz, yy, xx = np.nonzero(components == components[k, r, c])
            for lo, hi, v in ((x1, x2, xx), (y1, y2, yy), (z1, z2, zz)):
                assert lo - .5 <= v.min() and v.max() <= hi + .5
                assert v.max() - v.min() >= (hi - lo) - 3.
        assert set(np.unique(seg)) <= {0, 1, 2} and (seg == 1).any()


def test_deterministic_and_seed_dependent(volume_set, tmp_path):
    root, _, _ = volume_set
    again = tmp_path / 'again'
    generate_demo_volumes(again, seed=3, **SMALL)
    assert dataset_digest(again) == dataset_digest(root)
    gen = DemoVolumeGenerator(seed=4, **SMALL)
    assert [s.series_uid for s in gen.plan()] != [
        s['series_uid'] for s in json.loads(
            (root / GROUND_TRUTH_FILE).read_text())['scans']]


def test_refuses_to_overwrite_without_flag(tmp_path):
    user = tmp_path / 'mine'
    user.mkdir()
    (user / 'scan.nii.gz').write_bytes(b'user data')
    small = dict(SMALL, num_luna=1, num_kits=0, num_lits=0)
    with pytest.raises(FileExistsError, match='not empty'):
        generate_demo_volumes(user, **small)
    with pytest.raises(FileExistsError, match='ground_truth.json'):
        generate_demo_volumes(user, overwrite=True, **small)
    assert (user / 'scan.nii.gz').read_bytes() == b'user data'


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match='spacing_range'):
        DemoVolumeConfig(spacing_range=(0., 1.)).validate()
    with pytest.raises(ValueError, match='nodule_hu_range'):
        DemoVolumeConfig(nodule_hu_range=(100., 50.)).validate()
    with pytest.raises(TypeError, match='num_scans'):
        DemoVolumeGenerator(num_scans=3)


def test_cli(tmp_path, capsys):
    path = (repo_root() / 'projects' / 'study_demo' / 'tools' /
            'generate_demo_volumes.py')
    spec = importlib.util.spec_from_file_location('gen_vols', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'v'
    args = ['--out', str(out), '--num-luna', '1', '--num-kits', '0',
            '--num-lits', '0']
    assert tool.main(args) == 0
    assert '"luna16"' in capsys.readouterr().out
    assert tool.main(args) == 1
    assert '--overwrite' in capsys.readouterr().err
    assert tool.main(args + ['--overwrite', '--quiet']) == 0


def test_csv_format_matches_the_official_files(volume_set):
    """Same header and column types as the real LUNA16 files."""
    root, _, _ = volume_set
    data = shared_data_root()
    if data is None or not (data / 'luna16' / 'annotations.csv').is_file():
        pytest.skip('real LUNA16 CSVs not found ($MMLESION_SHARED_DATA/luna16)')
    for name in ('annotations.csv', 'annotations_excluded.csv'):
        real = _read_csv(data / 'luna16' / name)
        ours = _read_csv(root / 'luna16' / name)
        assert real[0] == ours[0]
        for row in ours[1:]:
            assert len(row) == len(real[1])
            [float(v) for v in row[1:]]
    real_uids = _read_csv(data / 'luna16' / 'seriesuids.csv')
    ours = _read_csv(root / 'luna16' / 'seriesuids.csv')
    assert len(real_uids[0]) == len(ours[0]) == 1
