# Copyright (c) mmlesion contributors. All rights reserved.
import csv
import math

import pytest

from mmlesion.datasets.deeplesion.dl_info import (DL_INFO_COLUMNS,
                                                  DLInfoRecord, parse_dl_info)
from mmlesion.testing import shared_data_root
from tests.helpers.dl_info_rows import lesion_row, write_dl_info_csv

HEADER = ','.join(DL_INFO_COLUMNS)
ROW = ('000002_01_01_162.png,2,1,1,162,'
       '"238.314, 261.228, 235.858, 268.594, 240.36, 265.729, 234.222, '
       '262.865","229.222, 256.228, 245.36, 273.594","7.76388, 6.77335",'
       '"0.437715, 0.573812, 0.609054",2,0,"156, 168",'
       '"0.859375, 0.859375, 5","512, 512","-175, 275",F,51,2')


def _annotations():
    root = shared_data_root()
    if root is None or not (root / 'deeplesion' / 'annotations').is_dir():
        pytest.skip('shared DeepLesion annotations ($MMLESION_SHARED_DATA/'
                    'deeplesion/annotations) are not available')
    return root / 'deeplesion' / 'annotations'


def _write(tmp_path, lines, name='DL_info.csv'):
    path = tmp_path / name
    path.write_text('\n'.join(lines) + '\n')
    return path


def _row_fields():
    return next(csv.DictReader([HEADER, ROW]))


def _row_text(fields, columns=DL_INFO_COLUMNS):
    out = []
    for col in columns:
        value = fields[col]
        out.append(f'"{value}"' if ',' in value else value)
    return ','.join(out)


@pytest.mark.parametrize('split,name,count', [(2, 'DL_info_val.csv', 4889),
                                              (3, 'DL_info_test.csv', 4927)])
def test_every_real_row_parses(split, name, count):
    path = _annotations() / name
    records = parse_dl_info(path)
    assert len(records) == count
    with open(path, newline='') as f:
        raw = list(csv.DictReader(f))
    assert len(raw) == count
    for rec, row in zip(records, raw):
        assert isinstance(rec, DLInfoRecord)
        assert rec.split == split
        assert rec.file_name == row['File_name']
        assert rec.lesion_type in (-1, 1, 2, 3, 4, 5, 6, 7, 8)
        # 1-based CSV -> 0-based pixels
        box = [float(v) for v in row['Bounding_boxes'].split(',')]
        assert rec.bbox == pytest.approx([v - 1 for v in box])
        pts = [float(v) for v in row['Measurement_coordinates'].split(',')]
        assert [c for p in rec.recist for c in p] == pytest.approx(
            [v - 1 for v in pts])
        assert rec.slice_range[0] <= rec.key_slice_index <= \
            rec.slice_range[1]
        assert rec.series_name + '_' + rec.slice_file == rec.file_name
    # rows are line numbers: header is line 1
    assert records[0].row == 2 and records[-1].row == count + 1
    assert sum(r.noisy for r in records) > 0


def test_first_row_values(tmp_path):
    rec = parse_dl_info(_write(tmp_path, [HEADER, ROW]))[0]
    assert rec.row == 2
    assert (rec.patient_index, rec.study_index, rec.series_id,
            rec.key_slice_index) == (2, 1, 1, 162)
    assert rec.bbox == pytest.approx((228.222, 255.228, 244.36, 272.594))
    assert rec.recist[0] == pytest.approx((237.314, 260.228))
    assert rec.recist[3] == pytest.approx((233.222, 261.865))
    assert rec.diameters_px == pytest.approx((7.76388, 6.77335))
    assert rec.diameters_mm == pytest.approx(
        (7.76388 * 0.859375, 6.77335 * 0.859375))
    assert rec.spacing == (0.859375, 0.859375, 5.0)
    assert rec.slice_interval == 5.0 and rec.pixel_spacing == 0.859375
    assert rec.slice_range == (156, 168)
    assert rec.image_size == (512, 512)
    assert rec.dicom_windows == (-175.0, 275.0)
    assert (rec.gender, rec.age, rec.split) == ('F', 51, 2)
    assert rec.lesion_type == 2 and rec.noisy is False
    assert rec.series_name == '000002_01_01' and rec.slice_file == '162.png'


def test_columns_found_by_header_name(tmp_path):
    fields = _row_fields()
    columns = list(reversed(DL_INFO_COLUMNS)) + ['Extra']
    fields['Extra'] = 'x'
    path = _write(tmp_path,
                  [','.join(columns), _row_text(fields, columns)])
    assert parse_dl_info(path) == parse_dl_info(
        _write(tmp_path, [HEADER, ROW], 'ref.csv'))


def test_nan_age_and_blank_lines(tmp_path):
    fields = _row_fields()
    fields['Patient_age'] = 'NaN'
    path = _write(tmp_path, [HEADER, '', _row_text(fields), ''])
    records = parse_dl_info(path)
    assert len(records) == 1
    assert records[0].age is None and records[0].row == 3


def test_missing_file_and_column(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.csv'):
        parse_dl_info(tmp_path / 'nope.csv')
    header = HEADER.replace('Bounding_boxes', 'Boxes')
    path = _write(tmp_path, [header, ROW])
    with pytest.raises(ValueError, match=r"row 1.*'Bounding_boxes'"):
        parse_dl_info(path)
    with pytest.raises(ValueError, match='empty file'):
        parse_dl_info(_write(tmp_path, [''], 'empty.csv'))


def test_wrong_number_of_fields(tmp_path):
    path = _write(tmp_path, [HEADER, ROW, ROW + ',extra'])
    with pytest.raises(ValueError) as err:
        parse_dl_info(path)
    msg = str(err.value)
    assert str(path) in msg and 'row 3' in msg and 'expected 18' in msg


@pytest.mark.parametrize('field,value,expect', [
    ('Bounding_boxes', '1, 2, 3', 'expected 4 numbers, got 3'),
    ('Bounding_boxes', '1, 2, x, 4', 'expected 4 numbers'),
    ('Bounding_boxes', '10, 2, 5, 4', 'x1 <= x2'),
    ('Bounding_boxes', '1, 2, inf, 4', 'non-finite'),
    ('Measurement_coordinates', '1, 2, 3, 4', 'expected 8 numbers'),
    ('Lesion_diameters_Pixel_', '-1, 2', 'negative'),
    ('Normalized_lesion_location', '0.1, 0.2', 'expected 3 numbers'),
    ('Coarse_lesion_type', '9', 'expected -1 or 1..8'),
    ('Coarse_lesion_type', 'liver', 'expected an integer'),
    ('Possibly_noisy', '2', 'expected 0 or 1'),
    ('Slice_range', '170, 180', 'does not contain the key slice'),
    ('Slice_range', '156.5, 168', 'expected 2 integers'),
    ('Spacing_mm_px_', '0.8, 0.8, 0', 'positive'),
    ('Image_size', '512', 'expected 2 numbers'),
    ('DICOM_windows', '-175', 'expected 2 numbers'),
    ('Patient_age', 'old', 'expected an integer'),
    ('Train_Val_Test', '4', 'expected 1, 2 or 3'),
    ('Patient_index', '3', 'disagrees with File_name'),
    ('Key_slice_index', '161', 'disagrees with File_name'),
    ('File_name', '000002_01_01_162.jpg', 'expected <patient>'),
])
def test_malformed_field_names_file_row_field(tmp_path, field, value,
                                              expect):
    fields = _row_fields()
    fields[field] = value
    path = _write(tmp_path, [HEADER, ROW, _row_text(fields)])
    with pytest.raises(ValueError) as err:
        parse_dl_info(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: row 3, field '{field}': "), msg
    assert expect in msg


def test_official_size_parses(tmp_path):
    """32,735 rows (the size of the official file) parse, each kept."""
    fields = _row_fields()
    lines = [HEADER] + [
        _row_text(
            dict(fields,
                 File_name=f'{p:06d}_01_01_162.png',
                 Patient_index=str(p))) for p in range(1, 32736)
    ]  # distinct lesions (a repeated row is an error)
    path = _write(tmp_path, lines)
    records = parse_dl_info(path)
    assert len(records) == 32735 and records[-1].row == 32736
    assert not math.isnan(records[-1].bbox[0])


def test_other_encodings_name_the_file(tmp_path):
    rows = [lesion_row(1, 10, (30, 30), 10, 6),
            dict(lesion_row(2, 10, (30, 30), 10, 6), Patient_gender='F\xe9')]
    utf8 = write_dl_info_csv(str(tmp_path / 'utf8.csv'), rows)
    assert [r.gender for r in parse_dl_info(utf8)] == ['F', 'F\xe9']
    text = open(utf8, encoding='utf-8').read()
    latin1 = tmp_path / 'latin1.csv'
    latin1.write_bytes(text.encode('latin-1'))
    with pytest.raises(ValueError,
                       match=rf'{latin1} line 3: not UTF-8 text \(byte 0xe9'):
        parse_dl_info(latin1)
    utf16 = tmp_path / 'utf16.csv'
    utf16.write_bytes(text.encode('utf-16'))
    with pytest.raises(ValueError, match=rf'{utf16}: UTF-16 encoded'):
        parse_dl_info(utf16)


def test_duplicated_rows(tmp_path):
    first = lesion_row(1, 10, (30, 30), 10, 6)
    moved = lesion_row(1, 10, (40, 40), 10, 6)  # same key slice, other box
    # same RECIST points, box written differently
    same_recist = dict(first, Bounding_boxes='19, 19, 42, 42')
    path = write_dl_info_csv(str(tmp_path / 'dup.csv'),
                             [first, moved, same_recist, first])
    with pytest.raises(ValueError) as err:
        parse_dl_info(path)
    msg = str(err.value)
    assert f'{path}: 2 duplicated lesion row(s)' in msg
    assert 'row 4 repeats row 2 (\'000001_01_01_010.png\', same ' \
        'Measurement_coordinates)' in msg
    assert 'row 5 repeats row 2 (\'000001_01_01_010.png\', same ' \
        'Bounding_boxes)' in msg
    kept = parse_dl_info(path, duplicate_rows='drop')
    assert [r.row for r in kept] == [2, 3]
