# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the LUNA16 CSV files (:mod:`...functional.luna16.io`).

Pinned: the columns found by name in any order (extra columns ignored,
spaces around header names), blank rows skipped but counted in the line
numbers, coordinates accepted up to ``MAX_WORLD_MM`` inclusive and refused
just beyond it on both signs (the diameter and probability columns never
are), a repeated row refused only in an annotations file and only for the
same series and coordinates, the header word of a ``seriesuids.csv``
skipped on line 1 only (any case), and every error naming the file, the
line and the field. ``write_candidates_csv`` round-trips float64 exactly,
with or without its ``diameter_mm`` column. Synthetic files only
(docs/mutation_testing.md).
"""
import csv

import numpy as np
import pytest

from mmlesion.evaluation.functional import luna16 as L
from mmlesion.utils.input_files import MAX_WORLD_MM

FIND_HEADER = 'seriesuid,coordX,coordY,coordZ,diameter_mm\n'
CAND_HEADER = 'seriesuid,coordX,coordY,coordZ,probability\n'


def _write(tmp_path, text, name='f.csv'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- columns by name ---------------------------------------------------------


def test_columns_are_found_by_name_in_any_order_and_extra_ones_ignored(
        tmp_path):
    path = _write(
        tmp_path, ' diameter_mm ,extra, coordZ,coordY ,coordX,seriesuid\n'
        '6.5,zz,3,2,1, a \n'
        '-1,zz,-3,-2,-1,b\n')
    f = L.read_findings_csv(path)
    assert f.seriesuids.dtype == object
    assert f.seriesuids.tolist() == ['a', 'b']  # the UID is stripped
    assert f.xyz.dtype == np.float64 and f.xyz.shape == (2, 3)
    assert f.xyz.tolist() == [[1., 2., 3.], [-1., -2., -3.]]
    assert f.diameter_mm.tolist() == [6.5, -1.]
    assert f.diameter_mm.flags['C_CONTIGUOUS'] and f.xyz.flags['C_CONTIGUOUS']
    c = L.read_candidates_csv(
        _write(tmp_path, 'probability,coordX,coordY,coordZ,seriesuid\n'
               '0.25,1,2,3,u\n', 'c.csv'))
    assert c.xyz.tolist() == [[1., 2., 3.]]
    assert c.probability.tolist() == [0.25]
    assert c.probability.dtype == np.float64


def test_a_header_only_file_gives_empty_arrays_of_the_right_shapes(tmp_path):
    f = L.read_findings_csv(_write(tmp_path, FIND_HEADER))
    assert f.xyz.shape == (0, 3) and f.diameter_mm.shape == (0, )
    assert len(f.seriesuids) == 0
    c = L.read_candidates_csv(_write(tmp_path, CAND_HEADER, 'c.csv'))
    assert c.xyz.shape == (0, 3) and c.probability.shape == (0, )


def test_missing_file_names_the_kind_of_file(tmp_path):
    missing = str(tmp_path / 'nope.csv')
    with pytest.raises(FileNotFoundError,
                       match=r'cannot open the annotations CSV .*nope\.csv: '
                       r'no such file$'):
        L.read_findings_csv(missing)
    with pytest.raises(FileNotFoundError,
                       match=r'cannot open the candidates CSV .*nope\.csv: '
                       r'no such file$'):
        L.read_candidates_csv(missing)
    with pytest.raises(FileNotFoundError,
                       match=r'cannot open the seriesuids CSV .*nope\.csv: '
                       r'no such file$'):
        L.read_seriesuids_csv(missing)


def test_empty_file_and_missing_columns(tmp_path):
    path = _write(tmp_path, '')
    with pytest.raises(ValueError,
                       match=r'f\.csv: empty file, expected a header '
                       r'seriesuid,coordX,coordY,coordZ,diameter_mm$'):
        L.read_findings_csv(path)
    path = _write(tmp_path, 'seriesuid,coordX,coordY,coordZ\n')
    with pytest.raises(
            ValueError,
            match=r"f\.csv line 1: the header \['seriesuid', 'coordX', "
            r"'coordY', 'coordZ'\] lacks the column\(s\) \['probability'\] "
            r'of the candidates format '
            r'\(seriesuid,coordX,coordY,coordZ,probability\)$'):
        L.read_candidates_csv(path)
    with pytest.raises(ValueError, match=r"\['diameter_mm'\] of the "
                       r'annotations format'):
        L.read_findings_csv(path)



def test_an_extra_column_is_read_as_a_candidates_file(tmp_path):
    # the errors of read_candidate_column name the candidates format
    with pytest.raises(FileNotFoundError,
                       match=r'cannot open the candidates CSV .*nope\.csv: '
                       r'no such file$'):
        L.read_candidate_column(str(tmp_path / 'nope.csv'), 'rpn_probability')
    path = _write(tmp_path, CAND_HEADER + 'u,1,2,3,0.5\n')
    with pytest.raises(
            ValueError,
            match=r"f\.csv line 1: the header \['seriesuid', 'coordX', "
            r"'coordY', 'coordZ', 'probability'\] lacks the column\(s\) "
            r"\['rpn_probability'\] of the candidates format "
            r'\(seriesuid,rpn_probability\)$'):
        L.read_candidate_column(path, 'rpn_probability')
    assert L.read_candidate_column(path, 'probability').tolist() == [0.5]


# --- rows --------------------------------------------------------------------


def test_blank_rows_are_skipped_but_counted_in_line_numbers(tmp_path):
    path = _write(tmp_path, FIND_HEADER + '\n , ,,,\na,1,2,3,4\n\n'
                  'b,1,2,3\n')
    with pytest.raises(ValueError,
                       match=r'f\.csv line 6: 4 fields, the header has 5$'):
        L.read_findings_csv(path)
    path = _write(tmp_path, FIND_HEADER + '\n,,,,\na,1,2,3,4\n')
    assert L.read_findings_csv(path).seriesuids.tolist() == ['a']


def test_wrong_field_count_both_ways(tmp_path):
    path = _write(tmp_path, CAND_HEADER + 'a,1,2,3,0.5,9\n')
    with pytest.raises(ValueError, match=r'line 2: 6 fields, the header '
                       r'has 5'):
        L.read_candidates_csv(path)


def test_a_repeated_header_line_is_refused(tmp_path):
    path = _write(tmp_path,
                  CAND_HEADER + 'a,1,2,3,0.5\n seriesuid , coordX,coordY,'
                  'coordZ,probability\n', 'c.csv')
    with pytest.raises(
            ValueError,
            match=r'c\.csv line 3: a repeated header line \(files joined '
            r'together\?\); it would be read as a row\. Remove it$'):
        L.read_candidates_csv(path)


def test_empty_uid_is_named(tmp_path):
    path = _write(tmp_path, CAND_HEADER + ' ,1,2,3,0.5\n')
    with pytest.raises(ValueError,
                       match=r"line 2: field 'seriesuid' is empty$"):
        L.read_candidates_csv(path)


def test_non_numeric_value_names_field_and_value(tmp_path):
    path = _write(tmp_path, FIND_HEADER + 'a,1,2,3,big\n')
    with pytest.raises(ValueError,
                       match=r"f\.csv line 2: field 'diameter_mm' is not a "
                       r"number: 'big'$"):
        L.read_findings_csv(path)


@pytest.mark.parametrize('value', ['inf', '-inf', 'nan'])
def test_non_finite_values_are_refused_in_every_column(tmp_path, value):
    for col in range(1, 5):
        row = ['a', '1', '2', '3', '4']
        row[col] = value
        path = _write(tmp_path, FIND_HEADER + ','.join(row) + '\n')
        name = FIND_HEADER.strip().split(',')[col]
        with pytest.raises(ValueError,
                           match=rf"line 2: field '{name}' is not finite or "
                           r'absurd \(over 100000 mm\)'):
            L.read_findings_csv(path)


def test_coordinates_up_to_max_world_mm_inclusive(tmp_path):
    edge = repr(float(MAX_WORLD_MM))
    path = _write(tmp_path, CAND_HEADER + f'a,{edge},-{edge},{edge},1e9\n')
    c = L.read_candidates_csv(path)
    assert c.xyz.tolist() == [[MAX_WORLD_MM, -MAX_WORLD_MM, MAX_WORLD_MM]]
    assert c.probability.tolist() == [1e9]  # not a coordinate: no bound
    path = _write(tmp_path, FIND_HEADER + 'a,1,2,3,1e9\n')
    assert L.read_findings_csv(path).diameter_mm.tolist() == [1e9]
    above = repr(float(np.nextafter(MAX_WORLD_MM, np.inf)))
    for col, name in ((1, 'coordX'), (2, 'coordY'), (3, 'coordZ')):
        for sign in ('', '-'):
            row = ['a', '1', '2', '3', '0.5']
            row[col] = sign + above
            path = _write(tmp_path, CAND_HEADER + ','.join(row) + '\n')
            with pytest.raises(ValueError,
                               match=rf"field '{name}' is not finite or "
                               rf"absurd \(over 100000 mm\): '{sign}{above}'"):
                L.read_candidates_csv(path)


def test_a_csv_syntax_error_names_its_line(tmp_path):
    # a field over the csv module's size limit is a csv.Error
    big = 'x' * (csv.field_size_limit() + 10)
    path = _write(tmp_path, CAND_HEADER + 'a,1,2,3,0.5\n' + big + ',1,2,3,.5\n')
    with pytest.raises(ValueError, match=r'f\.csv line 3: field larger'):
        L.read_candidates_csv(path)
    path = _write(tmp_path, 'u1\n' + big + '\n', 's.csv')
    with pytest.raises(ValueError, match=r's\.csv line 2: field larger'):
        L.read_seriesuids_csv(path)


# --- repeated rows -----------------------------------------------------------


def test_repeated_annotation_refused_only_for_same_series_and_position(
        tmp_path):
    rows = ('a,1,2,3,4\n'
            'b,1,2,3,4\n'  # another series: fine
            'a,1,2,3.5,4\n'  # another position: fine
            'a,1,2,3,9\n')  # same series and position, other diameter
    path = _write(tmp_path, FIND_HEADER + rows)
    with pytest.raises(
            ValueError,
            match=r'f\.csv line 5: repeats line 2 \(series a, the same '
            r'coordX,coordY,coordZ\): a repeated row would count as a second '
            r'annotations finding \(and change the sensitivity and CPM\); '
            r'remove one \(an excluded-findings file may repeat rows: read '
            r'it with allow_duplicates=True\)$'):
        L.read_findings_csv(path)
    both = L.read_findings_csv(path, allow_duplicates=True)
    assert both.diameter_mm.tolist() == [4., 4., 4., 9.]
    # the three distinct rows alone are accepted by default
    ok = _write(tmp_path, FIND_HEADER + rows.rsplit('a,1,2,3,9', 1)[0], 'o.csv')
    assert len(L.read_findings_csv(ok).seriesuids) == 3


def test_candidates_may_repeat_rows(tmp_path):
    path = _write(tmp_path, CAND_HEADER + 'a,1,2,3,0.5\na,1,2,3,0.5\n')
    assert L.read_candidates_csv(path).probability.tolist() == [0.5, 0.5]


# --- seriesuids.csv ----------------------------------------------------------


@pytest.mark.parametrize('word', [
    'seriesuid', 'SeriesUID', 'uid', 'series_uid', 'coordX', 'diameter_mm',
    'probability'
])
def test_seriesuids_header_word_skipped_on_line_one_only(tmp_path, word):
    path = _write(tmp_path, f'{word},extra\n u1 ,x\n\nu2\n', 's.csv')
    assert L.read_seriesuids_csv(path) == ['u1', 'u2']
    path = _write(tmp_path, f'u1\n{word}\n', 's.csv')
    with pytest.raises(
            ValueError,
            match=rf"s\.csv line 2: a header line \('{word}'\) inside the "
            r'list \(files joined together\?\); it would count as one more '
            r'scan\. Remove it$'):
        L.read_seriesuids_csv(path)
    # a blank first line: the header word is then on line 2
    path = _write(tmp_path, f'\n{word}\nu1\n', 's.csv')
    with pytest.raises(ValueError, match='line 2: a header line'):
        L.read_seriesuids_csv(path)


def test_seriesuids_errors_name_the_line(tmp_path):
    path = _write(tmp_path, 'u1\n\n ,x\n', 's.csv')
    with pytest.raises(ValueError, match=r's\.csv line 3: empty seriesuid$'):
        L.read_seriesuids_csv(path)
    path = _write(tmp_path, 'u1\nu2\n\nu1\n', 's.csv')
    with pytest.raises(ValueError,
                       match=r's\.csv line 4: seriesuid u1 is listed twice '
                       r'\(first on line 1\)$'):
        L.read_seriesuids_csv(path)
    for text in ('', 'seriesuid\n', '\n \n'):
        path = _write(tmp_path, text, 's.csv')
        with pytest.raises(ValueError, match=r's\.csv: no seriesuid$'):
            L.read_seriesuids_csv(path)


def test_seriesuids_keep_file_order(tmp_path):
    path = _write(tmp_path, 'z\na\nm\n', 's.csv')
    assert L.read_seriesuids_csv(path) == ['z', 'a', 'm']


# --- write_candidates_csv ----------------------------------------------------


def test_write_round_trips_exactly_without_and_with_diameters(tmp_path):
    xyz = np.array([0.1, 0.2, 0.3, -1 / 3, 2 / 3, 1e-17])  # flat: reshaped
    prob = np.array([[1 / 7], [0.5]])  # (2, 1): flattened
    path = str(tmp_path / 'c.csv')
    L.write_candidates_csv(path, ['u', 'v'], xyz, prob)
    with open(path, newline='') as f:
        lines = f.read().split('\r\n')
    assert lines[0] == 'seriesuid,coordX,coordY,coordZ,probability'
    assert lines[1] == 'u,0.1,0.2,0.3,' + repr(1 / 7)
    back = L.read_candidates_csv(path)
    assert back.seriesuids.tolist() == ['u', 'v']
    assert np.array_equal(back.xyz, xyz.reshape(-1, 3))
    assert np.array_equal(back.probability, prob.reshape(-1))
    L.write_candidates_csv(path, ['u', 'v'], xyz, prob,
                           diameter_mm=[[4], [0.1 + 0.2]])
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    assert rows[0] == [
        'seriesuid', 'coordX', 'coordY', 'coordZ', 'probability',
        'diameter_mm'
    ]
    assert rows[2][-1] == repr(0.1 + 0.2) and rows[1][-1] == '4.0'
    assert len(rows) == 3
    back = L.read_candidates_csv(path)  # the extra column is ignored
    assert np.array_equal(back.probability, prob.reshape(-1))


def test_a_folder_is_refused_naming_the_kind_of_file(tmp_path):
    folder = tmp_path / 'dir.csv'
    folder.mkdir()
    with pytest.raises(ValueError,
                       match=r'dir\.csv: annotations CSV file is a folder'):
        L.read_findings_csv(str(folder))
    with pytest.raises(ValueError,
                       match=r'dir\.csv: candidates CSV file is a folder'):
        L.read_candidates_csv(str(folder))
    with pytest.raises(ValueError,
                       match=r'dir\.csv: seriesuids CSV file is a folder'):
        L.read_seriesuids_csv(str(folder))


def test_quoted_line_ends_inside_a_uid_are_kept(tmp_path):
    # the csv module reads the text as written (newline=''): a quoted
    # field keeps its own line end, CR LF included
    path = tmp_path / 'c.csv'
    path.write_bytes(CAND_HEADER.encode() + b'"a\r\nb",1,2,3,0.5\r\n')
    assert L.read_candidates_csv(str(path)).seriesuids.tolist() == ['a\r\nb']
    path = tmp_path / 's.csv'
    path.write_bytes(b'"u\r\nv"\r\nw\r\n')
    assert L.read_seriesuids_csv(str(path)) == ['u\r\nv', 'w']


def test_write_flattens_probabilities_and_diameters_of_any_shape(tmp_path):
    path = str(tmp_path / 'c.csv')
    L.write_candidates_csv(path, ['u', 'v'], [[0, 0, 0], [1, 1, 1]],
                           np.array([[0.25, 0.5]]),
                           diameter_mm=np.array([[3., 4.]]))
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    assert rows[1:] == [['u', '0.0', '0.0', '0.0', '0.25', '3.0'],
                        ['v', '1.0', '1.0', '1.0', '0.5', '4.0']]


def test_carriage_return_line_ends_are_line_ends(tmp_path):
    path = tmp_path / 'c.csv'
    path.write_bytes(CAND_HEADER.strip().encode() + b'\ra,1,2,3,0.5\r'
                     b'b,4,5,6,0.25\r')
    c = L.read_candidates_csv(str(path))
    assert c.seriesuids.tolist() == ['a', 'b']
    assert c.probability.tolist() == [0.5, 0.25]
    path = tmp_path / 's.csv'
    path.write_bytes(b'u\rv\r')
    assert L.read_seriesuids_csv(str(path)) == ['u', 'v']
