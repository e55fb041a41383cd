# Copyright (c) mmlesion contributors. All rights reserved.
"""The dataset fingerprint on two tiny scans with known intensities."""
import json
import os.path as osp

import numpy as np
import pytest
import SimpleITK as sitk

from mmlesion.datasets.volumes import (box_center_world, load_ct_volume,
                                       volume_entry, write_annotation_file)
from mmlesion.datasets.volumes.fingerprint import (DatasetFingerprint,
                                                   Distribution,
                                                   FingerprintSettings,
                                                   compute_fingerprint)


def _scan(folder, name, spacing_xyz, shape=(16, 24, 24)):
    """Soft tissue (40 HU) with a 120 HU block at z 4..9, y/x 8..15."""
    arr = np.full(shape, 40, np.int16)
    arr[:, :, :3] = -1000  # some air
    arr[4:10, 8:16, 8:16] = 120
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing_xyz)
    path = osp.join(folder, f'{name}.nii.gz')
    sitk.WriteImage(img, path)
    return path


@pytest.fixture
def ann_file(tmp_path):
    entries = []
    for name, spacing, split in (('a', (0.8, 0.8, 2.), 1),
                                 ('b', (0.6, 0.6, 1.), 3)):
        path = _scan(str(tmp_path), name, spacing)
        vol = load_ct_volume(path)
        bbox = [7.5, 7.5, 3.5, 15.5, 15.5, 9.5]  # the block's voxels
        entries.append(volume_entry(vol, name, osp.basename(path), [dict(
            bbox=bbox, center_world=box_center_world(vol, bbox),
            diameter_mm=-1, label=0, ignore=False)], split=split))
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
    assert train.lesion_extents_zyx_mm == [[12., 6.4, 6.4]]
    assert test.lesion_extents_zyx_mm == [[6., 4.8, 4.8]]
    assert train.lesion_diameter_mm.at(50) == 12.
    assert every.spacing_zyx_mm[0].percentiles['p0.5'] == pytest.approx(
        1.005)
    assert every.shape_zyx[2].at(50) == 24
    assert every.orientations == {'LPS': 2}
    # inside the inscribed ellipsoid only the block; outside never the block
    assert every.hu_inside.at(0.5) == every.hu_inside.at(99.5) == 120
    assert every.hu_outside.at(99.5) == 40 and every.hu_outside.at(0.5) == \
        -1000
    assert sum(every.hu_histogram_inside) == every.hu_inside.n
    assert len(fp.crops) == 2 and fp.crops[0].hu.shape == (64, 64)
    assert fp.crops[0].hu.max() == 120
    back = DatasetFingerprint.from_json(json.loads(json.dumps(fp.to_json())))
    assert back.splits['test'] == test and back.crops == []
    assert back.ann_sha256 == fp.ann_sha256


def test_fingerprint_refuses_a_stale_entry(ann_file):
    with open(ann_file) as f:
        data = json.load(f)
    data['volumes'][1]['shape_zyx'] = [17, 24, 24]
    with open(ann_file, 'w') as f:
        json.dump(data, f)
    with pytest.raises(ValueError, match=r'b\.nii\.gz: shape .* differs '
                       r'from \[17, 24, 24\] in .*ann\.json'):
        compute_fingerprint(FingerprintSettings(ann_file,
                                                show_progress=False))


def test_distribution():
    d = Distribution.of([1, 2, 3, 4])
    assert (d.n, d.mean, d.at(50)) == (4, 2.5, 2.5)
    with pytest.raises(ValueError, match='no values'):
        Distribution.of([]).at(50)
    with pytest.raises(ValueError, match='not a dataset fingerprint'):
        DatasetFingerprint.from_json({'splits': {}}, 'x.json')
