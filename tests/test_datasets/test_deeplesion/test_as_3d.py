# Copyright (c) mmlesion contributors. All rights reserved.
import numpy as np
import pytest

from mmlesion.datasets.deeplesion.as_3d import (As3DSettings, chunk_ranges,
                                                deeplesion_to_3d,
                                                lesion_box, lesion_diameter_mm,
                                                load_chunk_volume)
from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
from mmlesion.testing import shared_data_root
from tests.helpers.dl_info_rows import (lesion_row, write_dl_info_csv,
                                           write_key_slices)


def _records(tmp_path, rows):
    return parse_dl_info(write_dl_info_csv(str(tmp_path / 'dl.csv'), rows))


def test_diameter_rule(tmp_path):
    # 0.8 mm/px; box = RECIST extent + 5 px per side
    small, large = _records(tmp_path, [
        lesion_row(1, 50, (100, 100), 10, 6, angle_deg=45),   # 8 mm long
        lesion_row(1, 50, (300, 300), 40, 20)                # 32 mm long
    ])
    # small: box long side (10 cos45 + 10 + 1 px) * 0.8 > 8 mm -> 8 mm
    assert lesion_diameter_mm(small) == pytest.approx(8.0)
    # large: the box long side, (40 + 10 + 1) px
    assert lesion_diameter_mm(large) == pytest.approx(51 * 0.8, abs=0.01)


def test_chunks_merge_and_drop(tmp_path):
    rows = [
        lesion_row(1, 50, (100, 100), 20, 10, split=1),        # slices 48-52
        lesion_row(1, 51, (103, 101), 22, 10, split=1),        # same lesion
        lesion_row(1, 53, (300, 300), 70, 40, split=1),        # >= 48: drop
        lesion_row(1, 90, (200, 200), 20, 10, split=1),        # 2nd chunk
        lesion_row(2, 20, (200, 200), 70, 40, split=3),        # test: kept
    ]
    recs = _records(tmp_path, rows)
    assert chunk_ranges(recs)['000001_01_01'] == [(48, 55), (88, 92)]
    out = deeplesion_to_3d(recs)
    first = out[('000001_01_01', 48, 55)]
    assert len(first) == 1 and first[0].rows == [2, 3]
    assert np.allclose(first[0].centre_xyz, [101.5, 100.5, 2.5])
    assert len(out[('000001_01_01', 88, 92)]) == 1
    assert out[('000002_01_01', 18, 22)][0].diameter_mm > 48
    unmerged = deeplesion_to_3d(recs, As3DSettings(merge=False,
                                                   drop_large_mm=0))
    assert len(unmerged[('000001_01_01', 48, 55)]) == 3
    box = lesion_box(out[('000001_01_01', 88, 92)][0], (0.8, 0.8, 5.))
    assert box[5] - box[2] == pytest.approx(
        out[('000001_01_01', 88, 92)][0].diameter_mm / 5)


def test_load_chunk(tmp_path):
    rows = [lesion_row(1, 10, (32, 32), 8, 4, image_size=64)]
    recs = _records(tmp_path, rows)
    img_dir = tmp_path / 'Images_png'
    for k in range(8, 13):
        r = dict(rows[0], File_name=f'000001_01_01_{k:03d}.png')
        write_key_slices(str(img_dir), [r], np.full((64, 64), k * 10.))
    vol = load_chunk_volume(str(img_dir), '000001_01_01', 8, 12,
                            recs[0].spacing)
    assert vol.shape_zyx == (5, 64, 64) and vol.spacing_zyx == (5., .8, .8)
    assert vol.array[0, 0, 0] == 80 and vol.array[4, 0, 0] == 120
    with pytest.raises(FileNotFoundError, match='013.png'):
        load_chunk_volume(str(img_dir), '000001_01_01', 8, 13, (1, 1, 1))


def test_real_val_rows():
    root = shared_data_root()
    if root is None:
        pytest.skip('shared data ($MMLESION_SHARED_DATA) not available')
    recs = parse_dl_info(
        str(root / 'deeplesion/annotations/DL_info_val.csv'))
    out = deeplesion_to_3d(recs)
    lesions = [les for v in out.values() for les in v]
    # merging only ever reduces the count; val keeps its large lesions
    assert 0 < len(lesions) <= len(recs)
    assert any(les.diameter_mm >= 48 for les in lesions)
    assert all(les.centre_xyz[2] >= 0 for les in lesions)


def test_converter_tool(tmp_path):
    import importlib.util
    import json

    from mmlesion.testing import repo_root
    path = repo_root() / 'tools/dataset_converters/deeplesion_to_3d.py'
    spec = importlib.util.spec_from_file_location('dl_to_3d', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rows = [lesion_row(1, 10, (32, 30), 8, 4, image_size=64, split=1),
            lesion_row(2, 10, (20, 20), 8, 4, image_size=64, split=3)]
    img_dir = tmp_path / 'Images_png'
    for row in rows:
        for k in range(8, 13):
            write_key_slices(str(img_dir), [dict(
                row, File_name=row['File_name'][:-7] + f'{k:03d}.png')])
    csv = write_dl_info_csv(str(tmp_path / 'dl.csv'), rows)
    out = tmp_path / 'out'
    counts = tool.main([csv, str(img_dir), str(out)])
    assert counts == {'train': 1, 'test': 1}
    train = json.loads((out / 'deeplesion3d_train.json').read_text())
    ann = train['volumes'][0]['annotations'][0]
    assert np.allclose(ann['bbox'][:3], [32 - 4, 30 - 4, 2 - 0.64], atol=.01)
    assert ann['lesion_type'] == 4
    with pytest.raises(FileExistsError):
        tool.main([csv, str(img_dir), str(out)])


def test_possibly_noisy_rows_are_no_lesions(tmp_path):
    """Sec. V: "noisy annotations are removed"; inside another lesion's
    chunk a noisy row stays as an ignored box (neither positive nor
    negative)."""
    rows = [
        lesion_row(1, 50, (100, 100), 20, 10, split=1),              # 48-52
        lesion_row(1, 51, (300, 300), 20, 10, split=1, noisy=True),  # in it
        lesion_row(1, 90, (200, 200), 20, 10, split=1, noisy=True),  # alone
        lesion_row(2, 20, (200, 200), 20, 10, split=3, noisy=True),  # alone
    ]
    recs = _records(tmp_path, rows)
    out = deeplesion_to_3d(recs)
    assert list(out) == [('000001_01_01', 48, 52)]  # no chunk of noise
    lesions = out[('000001_01_01', 48, 52)]
    assert [(les.rows, les.ignore) for les in lesions] == [
        ([2], False), ([3], True)]
    kept = deeplesion_to_3d(recs, As3DSettings(drop_noisy=False))
    assert len(kept) == 3 and not any(
        les.ignore for chunk in kept.values() for les in chunk)
