# Copyright (c) mmlesion contributors. All rights reserved.
"""DeepLesionExporter options (in-memory volumes)."""
import json
import os

import numpy as np
import pytest

from mmlesion.apps.own_data import (DeepLesionExporter,
                                    sphere_slice_boxes)
from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
from mmlesion.datasets.deeplesion.png_slices import read_hu_png
from mmlesion.datasets.volumes import CTVolume


def _volume():
    arr = np.random.default_rng(0).integers(-1000, 500, (20, 32, 32))
    return CTVolume(arr.astype(np.float32), (2.0, 0.8, 0.8), (0, 0, 0))


LESIONS = [
    dict(bbox=[4.5, 4.5, 2.5, 12.5, 10.5, 7.5], diameter_mm=6.0),
    dict(bbox=[20.5, 20.5, 3.5, 24.5, 24.5, 6.5], diameter_mm=3.0),
    dict(bbox=[10.5, 10.5, 13.5, 14.5, 14.5, 16.5], diameter_mm=4.0,
         ignore=True),
]


def test_key_slices_rows_and_pngs(tmp_path):
    vol = _volume()
    exp = DeepLesionExporter(str(tmp_path), num_slices=3, interval_mm=2.0,
                             negatives_per_key=0)
    assert exp.add_volume(vol, 'a', LESIONS, split=2) == '000001_01_01'
    exp.write()
    recs = parse_dl_info(str(tmp_path / 'DL_info.csv'))
    # keys: slice 5 (lesion 1, centre z 5) and 5 (lesion 2): one key slice
    # with both lesions; the ignored finding has no row
    assert [r.file_name for r in recs] == ['000001_01_01_006.png'] * 2
    assert recs[0].bbox == pytest.approx((5, 5, 12, 10))
    assert recs[0].spacing == pytest.approx((0.8, 0.8, 2.0))
    assert recs[0].split == 2 and recs[0].slice_range == (4, 8)
    files = sorted(os.listdir(tmp_path / 'Images_png' / '000001_01_01'))
    assert files == ['004.png', '005.png', '006.png', '007.png', '008.png']
    np.testing.assert_array_equal(
        read_hu_png(str(tmp_path / 'Images_png/000001_01_01/006.png')),
        vol.array[5])
    with pytest.raises(FileExistsError, match='--overwrite'):
        DeepLesionExporter(str(tmp_path))


def test_key_slice_is_the_largest_cross_section(tmp_path):
    """A mask lesion's key slice is its largest cross-section, not the
    centre of its 3D box; series_map.json lists each lesion's own key slice
    and its box there (DL_info's 1-based first and last pixel)."""
    cone = dict(bbox=[4.5, 4.5, 1.5, 16.5, 16.5, 9.5], diameter_mm=9.,
                slice_boxes={z: [10.5 - r, 10.5 - r, 10.5 + r, 10.5 + r]
                             for z, r in zip(range(2, 10),
                                             (6, 5, 4, 3, 2, 1, 1, 1))})
    exp = DeepLesionExporter(str(tmp_path), num_slices=3, interval_mm=2.0,
                             negatives_per_key=0)
    exp.add_volume(_volume(), 'a', [cone, LESIONS[1]])
    exp.write()
    recs = parse_dl_info(str(tmp_path / 'DL_info.csv'))
    # the cone: slice z 2 (DL 3), not its centre z 6; lesion 2: its centre
    # z 5, which the cone's rim crosses too (a row of its own there)
    assert sorted((r.key_slice_index, r.bbox) for r in recs) == [
        (3, (5, 5, 16, 16)), (6, (8, 8, 13, 13)), (6, (21, 21, 24, 24))]
    (series, ) = json.load(open(tmp_path / 'series_map.json'))
    assert series['lesions'] == [
        dict(key_slice=3, bbox=[6., 6., 17., 17.]),
        dict(key_slice=6, bbox=[22., 22., 25., 25.])]


def test_options(tmp_path):
    vol = _volume()
    exp = DeepLesionExporter(
        str(tmp_path),
        key_lesions='all',
        min_diameter_mm=3.5,
        export_unlabeled=True)
    exp.add_volume(vol, 'a', LESIONS)
    exp.write()
    recs = parse_dl_info(str(tmp_path / 'DL_info.csv'))
    # lesion 2 (3 mm) gets no key slice but a row on lesion 1's key slice;
    # the ignored finding gets its own key slice (16 -> 016.png)
    assert sorted({r.key_slice_index for r in recs}) == [6, 16]
    assert len(os.listdir(tmp_path / 'Images_png' / '000001_01_01')) == 20
    with pytest.raises(ValueError, match='key_lesions'):
        DeepLesionExporter(str(tmp_path / 'x'), key_lesions='some')


def test_every_lesion_slice_is_a_key_slice(tmp_path):
    """ElixirNet's KiTS19 protocol: every slice with tumour is an image."""
    vol = _volume()
    exp = DeepLesionExporter(str(tmp_path), num_slices=3, interval_mm=2.0,
                             negatives_per_key=0, key_slices='every')
    exp.add_volume(vol, 'a', LESIONS)
    exp.write()
    recs = parse_dl_info(str(tmp_path / 'DL_info.csv'))
    # lesion 1 crosses z 3..7 (DL slices 4..8), lesion 2 z 4..6 (5..7);
    # the ignored finding gets none
    assert sorted({r.key_slice_index for r in recs}) == [4, 5, 6, 7, 8]
    assert len(recs) == 5 + 3
    # every-train: every slice of a training scan, the own key slice of a
    # val or test scan (lesion 1's, slice 6, crossed by lesion 2 too)
    for split, keys in ((1, [4, 5, 6, 7, 8]), (2, [6]), (3, [6])):
        out = tmp_path / f'split{split}'
        exp = DeepLesionExporter(str(out), num_slices=3, interval_mm=2.0,
                                 negatives_per_key=0,
                                 key_slices='every-train')
        exp.add_volume(vol, 'a', LESIONS, split=split)
        exp.write()
        recs = parse_dl_info(str(out / 'DL_info.csv'))
        assert sorted({r.key_slice_index for r in recs}) == keys, split
    with pytest.raises(ValueError, match='key_slices'):
        DeepLesionExporter(str(tmp_path / 'x'), key_slices='middle')


def test_sphere_slice_boxes():
    vol = _volume()
    boxes = sphere_slice_boxes(vol, (12.0, 12.0, 10.0), 6.0)
    # centre z = 5, radius 3 mm = 1.5 slices -> slices 4, 5, 6
    assert sorted(boxes) == [4, 5, 6]
    np.testing.assert_allclose(boxes[5], [15 - 3.75, 15 - 3.75, 15 + 3.75,
                                          15 + 3.75])
    r = np.sqrt(9 - 4) / 0.8
    np.testing.assert_allclose(boxes[4], [15 - r, 15 - r, 15 + r, 15 + r])


def test_negative_slices_and_ignored_findings(tmp_path):
    """LENS Sec. VI-B: lesion-free slices (with the ignored findings
    crossing them as uncertain boxes) and the ignored findings on key
    slices are listed in lens_extra_slices.json; DeepLesionMinedDataset
    turns them into negatives and ignored instances."""
    from mmengine.registry import init_default_scope

    from mmlesion.methods.lens.datasets import DeepLesionMinedDataset, LENSMultiDataset
    from mmlesion.datasets.deeplesion.mined_file import read_mined_file
    vol = _volume()
    lesions = LESIONS + [  # an ignored finding crossing the key slice 5
        dict(bbox=[25.5, 2.5, 4.5, 29.5, 6.5, 5.5], diameter_mm=3.0,
             ignore=True)
    ]
    exp = DeepLesionExporter(str(tmp_path), num_slices=3, interval_mm=2.0,
                             negatives_per_key=3.0)
    exp.add_volume(vol, 'a', lesions)
    exp.write()
    extra = read_mined_file(str(tmp_path / 'lens_extra_slices.json'))
    by_slice = {s['slice']: s for s in extra['slices']}
    negs = exp.series[0]['negative_slices']
    # one key slice (z 5 -> 006.png), 3 negatives, never on a lesion
    # (slices 3-7 of the two selected lesions: 004-008.png)
    assert len(negs) == 3 and not set(negs) & set(range(4, 9))
    # a second export of the same volume draws the same slices
    again = DeepLesionExporter(str(tmp_path / 'b'), num_slices=3,
                               negatives_per_key=3.0)
    again.add_volume(vol, 'a', lesions)
    assert again.series[0]['negative_slices'] == negs
    assert set(by_slice) == set(negs) | {6}
    # the key slice: the ignored finding's box (pixels 26-29 x 3-6, in
    # mmdet's convention: x2, y2 one past the last pixel)
    assert by_slice[6]['uncertain'] == [[26., 3., 30., 7.]] and \
        not by_slice[6]['mined']
    # the ignored finding of z 13.5-16.5 (slices 14-16: 015-017.png)
    for z in negs:
        crossed = 15 <= z <= 17
        assert bool(by_slice[z]['uncertain']) == crossed
        assert (tmp_path / 'Images_png' / '000001_01_01' /
                f'{z:03d}.png').is_file()
    init_default_scope('mmdet')
    ds = DeepLesionMinedDataset(
        data_root=str(tmp_path), ann_file='DL_info.csv',
        mined_ann_file='lens_extra_slices.json', split='train',
        pipeline=[])
    multi = LENSMultiDataset(datasets=[ds], dataset_names=['x'])
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert len(infos) == 4
    pos = [multi.is_positive(i) for i in range(len(ds))]
    assert pos.count(True) == 1 and pos.count(False) == 3
    key = next(i for i in infos if i['key_slice'] == 6)
    assert sorted(i['ignore_flag'] for i in key['instances']) == [0, 0, 1]
    with pytest.raises(ValueError, match='negatives_per_key'):
        DeepLesionExporter(str(tmp_path / 'c'), negatives_per_key=-1)
