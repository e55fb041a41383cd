# Copyright (c) mmlesion contributors. All rights reserved.
"""The dataset fingerprint on two tiny scans with known intensities."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import SimpleITK as sitk

from mmlesion.datasets.volumes import (box_center_world, load_ct_volume,
                                       volume_entry, write_annotation_file)
from mmlesion.apps.own_data.fingerprint import (DatasetFingerprint,
                                                Distribution,
                                                FingerprintSettings,
                                                compute_fingerprint)


def _scan(folder, name, spacing_xyz, shape=(16, 24, 24)):
    """Soft tissue (40 HU) with a block at z 4..9, y/x 8..15: 120 HU for x
    8..11, 200 HU for x 12..15; its label map (1 on the 120 HU half)."""
    arr = np.full(shape, 40, np.int16)
    arr[:, :, :3] = -1000  # some air
    arr[4:10, 8:16, 8:12] = 120
    arr[4:10, 8:16, 12:16] = 200
    paths = []
    for kind, values in (('', arr), ('_mask', (arr == 120).astype(np.uint8))):
        img = sitk.GetImageFromArray(values)
        img.SetSpacing(spacing_xyz)
        paths.append(osp.join(folder, f'{name}{kind}.nii.gz'))
        sitk.WriteImage(img, paths[-1])
    return paths


@pytest.fixture
def ann_file(tmp_path):
    entries = []
    for name, spacing, split in (('a', (0.8, 0.8, 2.), 1),
                                 ('b', (0.6, 0.6, 1.), 3)):
        path, mask = _scan(str(tmp_path), name, spacing)
        vol = load_ct_volume(path)
        bbox = [7.5, 7.5, 3.5, 15.5, 15.5, 9.5]  # the block's voxels
        # scan a has its label map, b only the box
        extra = dict(mask_file=osp.basename(mask)) if name == 'a' else {}
        entries.append(volume_entry(vol, name, osp.basename(path), [dict(
            bbox=bbox, center_world=box_center_world(vol, bbox),
            diameter_mm=-1, label=0, ignore=False)], split=split, **extra))
    out = str(tmp_path / 'ann.json')
    write_annotation_file(out, 'toy', ['lesion'], entries)
    return out


def test_fingerprint_per_split(ann_file):
    fp = compute_fingerprint(FingerprintSettings(ann_file, show_progress=False,
                                                 voxels_per_scan=500))
    assert set(fp.splits) == {'train', 'test', 'all'}
    train, test, every = (fp.splits[k] for k in ('train', 'test', 'all'))
    assert (train.num_scans, train.num_lesions) == (1, 1)
    assert every.num_scans == 2 and every.lesions_per_scan.at(50) == 1
    # boxes of 8 x 8 x 6 voxels: extents in mm, the diameter the largest
    # axial one
    assert train.lesion_extents_zyx_mm == [[12., 6.4, 6.4]]
    assert test.lesion_extents_zyx_mm == [[6., 4.8, 4.8]]
    assert train.lesion_diameter_mm.at(50) == 6.4
    assert every.spacing_zyx_mm[0].percentiles['p0.5'] == pytest.approx(
        1.005)
    assert every.shape_zyx[2].at(50) == 24
    assert every.orientations == {'LPS': 2}
    # inside: the label map's voxels (a), the inscribed ellipsoid (b, both
    # halves); outside never the block
    assert train.hu_inside.at(0.5) == train.hu_inside.at(99.5) == 120
    assert (test.hu_inside.at(0.5), test.hu_inside.at(99.5)) == (120, 200)
    assert every.hu_outside.at(99.5) == 40 and every.hu_outside.at(0.5) == \
        -1000
    assert sum(every.hu_histogram_inside) == every.hu_inside.n
    assert len(fp.crops) == 2 and fp.crops[0].hu.shape == (64, 64)
    assert fp.crops[0].hu.max() == 200
    # a process pool reads the scans: the same fingerprint
    pooled = compute_fingerprint(FingerprintSettings(
        ann_file, show_progress=False, voxels_per_scan=500, workers=2))
    assert pooled.to_json() == fp.to_json()
    back = DatasetFingerprint.from_json(json.loads(json.dumps(fp.to_json())))
    assert back.splits['test'] == test and back.crops == []
    assert back.ann_sha256 == fp.ann_sha256


def _refused(ann_file, data, match):
    with open(ann_file, 'w') as f:
        json.dump(data, f)
    with pytest.raises(ValueError, match=match):
        compute_fingerprint(FingerprintSettings(ann_file,
                                                show_progress=False))


def test_fingerprint_refuses_a_stale_entry(ann_file):
    with open(ann_file) as f:
        data = json.load(f)
    data['volumes'][1]['shape_zyx'] = [17, 24, 24]
    _refused(ann_file, data, r'b\.nii\.gz: shape .* differs from '
             r'\[17, 24, 24\] in .*ann\.json')
    small = osp.join(osp.dirname(ann_file), 'small.nii.gz')
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 8, 8), np.uint8)),
                    small)
    data['volumes'][0]['mask_file'] = 'small.nii.gz'
    _refused(ann_file, data, r'small\.nii\.gz: label map of shape '
             r'\[8, 8, 8\] on another grid')


def test_distribution():
    d = Distribution.of([1, 2, 3, 4])
    assert (d.n, d.mean, d.at(50)) == (4, 2.5, 2.5)
    with pytest.raises(ValueError, match='no values'):
        Distribution.of([]).at(50)
    with pytest.raises(ValueError, match='not a dataset fingerprint'):
        DatasetFingerprint.from_json({'splits': {}}, 'x.json')


def test_fingerprint_of_real_ct_with_made_masks(tmp_path):
    """Real CT (TotalSegmentator's example, 3 mm) with its spleen, kidneys
    and liver (labels 1, 2, 3, 5) as lesions: soft tissue inside, air
    outside."""
    import shutil

    from mmlesion.apps.own_data import ConvertSettings, convert_dataset
    from mmlesion.testing import shared_data_root
    root = shared_data_root()
    src = None if root is None else root / 'ct_volumes' / 'totalsegmentator'
    if src is None or not src.is_dir():
        pytest.skip('real CT not available ($MMLESION_SHARED_DATA/'
                    'ct_volumes/totalsegmentator; set MMLESION_SHARED_DATA)')
    (tmp_path / 'img').mkdir()
    (tmp_path / 'lab').mkdir()
    # copies: a link leading out of the data root is refused
    shutil.copy(src / 'example_ct_sm.nii.gz', tmp_path / 'img' / 'a.nii.gz')
    shutil.copy(src / 'example_seg.nii.gz', tmp_path / 'lab' / 'a.nii.gz')
    out = str(tmp_path / 'a.json')
    convert_dataset(ConvertSettings(
        str(tmp_path / 'img'), out, masks=str(tmp_path / 'lab'),
        labels=[1, 2, 3, 5], instances=True, show_progress=False))
    fp = compute_fingerprint(FingerprintSettings(out, show_progress=False))
    every = fp.splits['all']
    assert every.num_lesions == 4 and every.spacing_zyx_mm[0].at(50) == 3.
    assert every.orientations == {'RAS': 1}  # as stored
    # the organs' voxels: soft tissue (an inscribed ellipsoid of the liver
    # box would reach the lungs)
    assert -200 < every.hu_inside.at(0.5) and every.hu_inside.at(
        99.5) < 400
    assert every.hu_outside.at(0.5) < -900  # air around the body
    assert all(10 < d < 200 for d in np.asarray(
        every.lesion_extents_zyx_mm).ravel())


def test_killed_fingerprint_resumes_from_its_records(ann_file, monkeypatch):
    from mmlesion.apps.own_data import fingerprint as module
    from mmlesion.apps.own_data.scan_records import records_dir
    clean = compute_fingerprint(FingerprintSettings(
        ann_file, show_progress=False, voxels_per_scan=500))
    out = ann_file + '.fingerprint.json'
    read, real = [], module._read_scan

    def killed_after_one(settings, labels, wanted, i, vol):
        if read:
            raise KeyboardInterrupt
        read.append(vol['id'])
        return real(settings, labels, wanted, i, vol)

    monkeypatch.setattr(module, '_read_scan', killed_after_one)
    settings = FingerprintSettings(ann_file, show_progress=False,
                                   voxels_per_scan=500, records_for=out)
    with pytest.raises(KeyboardInterrupt):
        compute_fingerprint(settings)
    assert read == ['a'] and len(os.listdir(records_dir(out))) == 1
    read.clear()
    monkeypatch.setattr(module, '_read_scan', lambda *job: read.append(
        job[-1]['id']) or real(*job))
    resumed = compute_fingerprint(settings)
    assert read == ['b']  # scan a from its record
    assert resumed.to_json() == clean.to_json()
    assert [c.hu.tolist() for c in resumed.crops] == [
        c.hu.tolist() for c in clean.crops]
