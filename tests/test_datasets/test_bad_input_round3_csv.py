# Copyright (c) mmlesion contributors. All rights reserved.
"""Bad CSV files: LUNA16 CSVs with a byte-order mark, a repeated header,
a repeated nodule row or an undecodable byte; DL_info rows whose spacing is
implausible for CT; a FIFO given as a CSV. Each case is one line naming
file, line / row and field, or a correct result."""
import contextlib
import os
import threading

import pytest

from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
from mmlesion.evaluation.functional.luna16 import (read_candidates_csv,
                                                   read_findings_csv,
                                                   read_seriesuids_csv)
from tests.helpers.dl_info_rows import lesion_row, write_dl_info_csv

UID_A = '1.3.6.1.4.1.14519.5.2.1.6279.6001.1001'
UID_B = '1.3.6.1.4.1.14519.5.2.1.6279.6001.1002'
ANN = ('seriesuid,coordX,coordY,coordZ,diameter_mm\n'
       f'{UID_A},-100.5,20.25,-300,5.5\n'
       f'{UID_B},10,20,30,7\n')
CAND = ('seriesuid,coordX,coordY,coordZ,probability\n'
        f'{UID_A},-100.5,20.25,-300,0.9\n'
        f'{UID_B},10,20,30,0.1\n')


@contextlib.contextmanager
def fifo(path):
    """A FIFO; a helper thread serves any reader an empty file (the old
    behaviour), so no test can block forever."""
    os.mkfifo(path)
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            os.close(os.open(path, os.O_WRONLY))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield str(path)
    finally:
        stop.set()
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        thread.join(5)
        os.close(fd)


def _file(tmp_path, text, name='f.csv', data=None):
    path = tmp_path / name
    path.write_bytes(text.encode('utf-8') if data is None else data)
    return str(path)


def _one_line_error(func, path, *words):
    with pytest.raises(ValueError) as info:
        func(path)
    msg = str(info.value)
    assert path in msg and '\n' not in msg, msg
    for word in words:
        assert word in msg, (word, msg)


# ------------------------------------------------------------ BOM
@pytest.mark.parametrize('func,text,n', [(read_findings_csv, ANN, 2),
                                         (read_candidates_csv, CAND, 2)])
def test_luna16_csv_with_bom_is_read(tmp_path, func, text, n):
    path = _file(tmp_path, '\ufeff' + text)
    table = func(path)
    assert list(table.seriesuids) == [UID_A, UID_B][:n]
    assert table.xyz[0].tolist() == [-100.5, 20.25, -300.0]


@pytest.mark.parametrize('header', ['', 'seriesuid\n'])
def test_seriesuids_with_bom_is_read(tmp_path, header):
    path = _file(tmp_path, '\ufeff' + header + f'{UID_A}\n{UID_B}\n')
    assert read_seriesuids_csv(path) == [UID_A, UID_B]


# ------------------------------------------------ undecodable bytes
@pytest.mark.parametrize('func,text,line', [
    (read_findings_csv, ANN, 3), (read_candidates_csv, CAND, 3),
    (read_seriesuids_csv, f'{UID_A}\n{UID_B}\n', 2)])
def test_undecodable_byte_names_file_and_line(tmp_path, func, text, line):
    data = text.encode().replace(UID_B.encode(), UID_B.encode() + b'\xe9')
    path = _file(tmp_path, '', data=data)
    _one_line_error(func, path, f'line {line}', 'not UTF-8', '0xe9')


@pytest.mark.parametrize('func', [read_findings_csv, read_seriesuids_csv])
def test_utf16_csv_is_refused(tmp_path, func):
    path = _file(tmp_path, '', data=ANN.encode('utf-16'))
    _one_line_error(func, path, 'UTF-16')


# --------------------------------------------- counts that drift
def test_header_line_inside_seriesuids(tmp_path):
    path = _file(tmp_path, f'{UID_A}\nseriesuid\n{UID_B}\n')
    _one_line_error(read_seriesuids_csv, path, 'line 2', 'header line')


def test_header_line_inside_seriesuids_after_leading_header(tmp_path):
    path = _file(tmp_path, f'seriesuid\n{UID_A}\nseriesuid\n{UID_B}\n')
    _one_line_error(read_seriesuids_csv, path, 'line 3', 'header line')


def test_leading_header_of_seriesuids_is_not_a_scan(tmp_path):
    path = _file(tmp_path, f'seriesuid\n{UID_A}\n{UID_B}\n')
    assert read_seriesuids_csv(path) == [UID_A, UID_B]


@pytest.mark.parametrize('func,text', [(read_findings_csv, ANN),
                                       (read_candidates_csv, CAND)])
def test_repeated_header_line_inside_table(tmp_path, func, text):
    header, rest = text.split('\n', 1)
    path = _file(tmp_path, text + header + '\n' + rest)
    _one_line_error(func, path, 'line 4', 'repeated header line')


@pytest.mark.parametrize('repeat', [
    f'{UID_A},-100.5,20.25,-300,5.5',     # the same row
    f'{UID_A},-100.50,20.250,-3e2,5.5',   # the same numbers, other text
    f'{UID_A},-100.5,20.25,-300,9',       # the same centre, other size
])
def test_repeated_nodule_row_is_refused(tmp_path, repeat):
    path = _file(tmp_path, ANN + repeat + '\n')
    _one_line_error(read_findings_csv, path, 'line 4', 'repeats line 2',
                    UID_A)


def test_repeated_rows_of_excluded_findings_are_kept(tmp_path):
    path = _file(tmp_path, ANN + f'{UID_A},-100.5,20.25,-300,5.5\n')
    assert len(read_findings_csv(path, allow_duplicates=True).xyz) == 3


def test_two_nodules_of_one_scan_are_not_duplicates(tmp_path):
    path = _file(tmp_path, ANN + f'{UID_A},-100.5,20.25,-297,5.5\n'
                 f'{UID_B},-100.5,20.25,-300,5.5\n')
    assert len(read_findings_csv(path).xyz) == 4


def test_real_luna16_files_still_read():
    from mmlesion.testing import shared_data_root
    root = shared_data_root()
    d = None if root is None else root / 'luna16'
    if d is None or not (d / 'annotations.csv').is_file():
        pytest.skip('real LUNA16 CSVs ($MMLESION_SHARED_DATA) not available')
    assert len(read_findings_csv(str(d / 'annotations.csv')).xyz) == 1186
    assert len(read_seriesuids_csv(str(d / 'seriesuids.csv'))) == 888
    with pytest.raises(ValueError, match='allow_duplicates=True'):
        read_findings_csv(str(d / 'annotations_excluded.csv'))


# ------------------------------------------------------- FIFOs
@pytest.mark.parametrize('func', [read_findings_csv, read_candidates_csv,
                                  read_seriesuids_csv, parse_dl_info])
def test_fifo_csv_is_refused(tmp_path, func):
    with fifo(tmp_path / 'pipe.csv') as path:
        _one_line_error(func, path, 'FIFO', 'not a regular file')


# ---------------------------------------------- DL_info spacing
@pytest.mark.parametrize('spacing,words', [
    ('6, 6, 5', ['pixel spacing 6, 6 mm', 'implausible']),
    ('0.8, 0.8, 25', ['slice interval 25 mm', 'implausible']),
    ('800, 800, 5', ['pixel spacing 800, 800 mm']),
    ('0.8, 0.8, 5000', ['slice interval 5000 mm']),
    ('0.8, 0.6, 5', ['x and y pixel spacings 0.8 and 0.6']),
])
def test_dl_info_implausible_spacing(tmp_path, spacing, words):
    rows = [lesion_row(1, 10, (100, 100), 20, 10),
            lesion_row(2, 12, (100, 100), 20, 10)]
    rows[1]['Spacing_mm_px_'] = spacing
    path = write_dl_info_csv(str(tmp_path / 'DL_info.csv'), rows)
    _one_line_error(parse_dl_info, path, 'row 3', "'Spacing_mm_px_'",
                    *words)


@pytest.mark.parametrize('spacing', ['5, 5, 20', '0.18, 0.18, 0.25',
                                     '0.976562, 0.976562, 5'])
def test_dl_info_plausible_spacing_bounds(tmp_path, spacing):
    row = lesion_row(1, 10, (100, 100), 20, 10)
    row['Spacing_mm_px_'] = spacing
    path = write_dl_info_csv(str(tmp_path / 'DL_info.csv'), [row])
    rec, = parse_dl_info(path)
    assert rec.spacing == tuple(float(v) for v in spacing.split(','))
