# Copyright (c) mmlesion contributors. All rights reserved.
import copy
import json

import pytest

from mmlesion.datasets.volumes.hard_regions import (HARD_REGION_KINDS,
                                                    dump_hard_regions,
                                                    index_hard_regions,
                                                    load_hard_regions)


def hard_region_scans():
    """Two scan entries: one with a hard negative and a hard positive, one
    without hard regions."""
    geometry = dict(shape_zyx=[40, 50, 60], spacing_zyx=[1., 1., 1.],
                    origin_xyz=[-10., 5., 100.],
                    direction=[1., 0., 0., 0., 1., 0., 0., 0., 1.])
    return [
        dict(id='scan_a', series_uid='1.2.3', img_path='a.mhd',
             regions=[
                 dict(kind='hard_negative', score=0.91,
                      center_world=[0., 15., 120.],
                      center_voxel_zyx=[20., 10., 10.], diameter_mm=6.5),
                 dict(kind='hard_positive', score=0.0,
                      center_world=[20., 35., 110.],
                      center_voxel_zyx=[10., 30., 30.], diameter_mm=4.0)
             ], **geometry),
        dict(id='scan_b', series_uid=None, img_path='b.mhd', regions=[],
             **geometry),
    ]


def test_round_trip_and_index(tmp_path):
    path = str(tmp_path / 'sub' / 'hard.json')
    scans = hard_region_scans()
    dump_hard_regions(path, scans, config='c.py', checkpoint='e.pth',
                      neg_score_thr=0.5)
    data = load_hard_regions(path)
    assert data['scans'] == scans
    meta = data['metainfo']
    assert meta['format'] == 'mmlesion.hard_regions' and meta['version'] == 1
    assert meta['kinds'] == list(HARD_REGION_KINDS)
    assert meta['config'] == 'c.py' and meta['neg_score_thr'] == 0.5
    index = index_hard_regions(data)
    assert index['scan_a'] is index['1.2.3'] and len(index) == 3
    assert index['scan_b']['regions'] == []
    # no silent overwrite; explicit overwrite works
    with pytest.raises(FileExistsError, match='--overwrite'):
        dump_hard_regions(path, scans)
    dump_hard_regions(path, scans[:1], overwrite=True)
    assert len(load_hard_regions(path)['scans']) == 1


@pytest.mark.parametrize('edit, message', [
    (lambda d: d['scans'][0]['regions'][0].update(kind='fp'),
     r"scans\[0\] \(id 'scan_a'\), regions\[0\], field \"kind\""),
    (lambda d: d['scans'][0]['regions'][1].update(score=1.5),
     r'regions\[1\], field "score": expected a probability'),
    (lambda d: d['scans'][1].update(spacing_zyx=[1., 0., 1.]),
     r"scans\[1\] \(id 'scan_b'\), field \"spacing_zyx\""),
    (lambda d: d['scans'][0]['regions'][0].pop('center_world'),
     r'regions\[0\], field "center_world"'),
    (lambda d: d['scans'][1].update(id='scan_a'), 'unique'),
    (lambda d: d['scans'][1].pop('regions'), 'missing field "regions"'),
    (lambda d: d['metainfo'].update(version=7), 'not supported'),
    (lambda d: d['metainfo'].update(format='x'), 'metainfo.format'),
])
def test_bad_files_name_file_scan_region_and_field(tmp_path, edit, message):
    path = tmp_path / 'hard.json'
    dump_hard_regions(str(path), hard_region_scans())
    data = json.loads(path.read_text())
    bad = copy.deepcopy(data)
    edit(bad)
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=message) as err:
        load_hard_regions(str(path))
    assert str(path) in str(err.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='find_hard_regions.py'):
        load_hard_regions(str(tmp_path / 'none.json'))
    (tmp_path / 'broken.json').write_text('{"scans": [')
    with pytest.raises(ValueError, match='not valid JSON'):
        load_hard_regions(str(tmp_path / 'broken.json'))
    with pytest.raises(ValueError, match='kind'):  # validated before writing
        bad = hard_region_scans()
        bad[0]['regions'][0]['kind'] = 'easy'
        dump_hard_regions(str(tmp_path / 'x.json'), bad)
    assert not (tmp_path / 'x.json').exists()
