# Copyright (c) mmlesion contributors. All rights reserved.
"""Parsing of DeepLesion's ``DL_info.csv`` (Yan et al., JMI 2018): one row
per lesion, 18 columns, beside ``Images_png/<patient>_<study>_<series>/``.

The table's pixel coordinates are MATLAB's, **1-based**;
:func:`parse_dl_info` makes ``Bounding_boxes`` and the RECIST end points of
``Measurement_coordinates`` **0-based** (minus 1: pixel ``img[y, x]`` is at
``(x, y)``); lengths and normalised locations are unchanged. Boxes keep the
official evaluation's inclusive convention (width = x2 - x1 + 1);
:func:`mmdet_box` gives mmdet's (``x2`` one past the last pixel).

``row`` is a record's line number, the header being line 1.
"""
import csv
import io
import logging
import math
import os
import os.path as osp
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.logging import print_log
from mmlesion.utils.writing.atomic import atomic_write

from mmlesion.utils.input_files import read_csv_text

#: The 18 official columns of DL_info.csv, in the official order.
DL_INFO_COLUMNS: Tuple[str, ...] = (
    'File_name', 'Patient_index', 'Study_index', 'Series_ID',
    'Key_slice_index', 'Measurement_coordinates', 'Bounding_boxes',
    'Lesion_diameters_Pixel_', 'Normalized_lesion_location',
    'Coarse_lesion_type', 'Possibly_noisy', 'Slice_range', 'Spacing_mm_px_',
    'Image_size', 'DICOM_windows', 'Patient_gender', 'Patient_age',
    'Train_Val_Test')

#: Names of ``Coarse_lesion_type`` 1..8 (index = type - 1); -1 is unknown
#: (the whole official training split has -1).
COARSE_LESION_TYPES: Tuple[str, ...] = ('bone', 'abdomen', 'mediastinum',
                                        'liver', 'lung', 'kidney',
                                        'soft tissue', 'pelvis')

#: ``Train_Val_Test`` values by split name.
SPLITS: Dict[str, int] = {'train': 1, 'val': 2, 'test': 3}

#: Plausible ``Spacing_mm_px_`` (mm): pixel spacing in (0, 5] (DeepLesion
#: has 0.18 to 0.98, CT pixels are below 2 mm), slice interval in (0, 20]
#: (DeepLesion has 0.25 to 5, CT slices are at most about 10 mm thick).
#: Beyond is a value in other units (cm, m, um) or a damaged row.
MAX_PIXEL_SPACING_MM = 5.0
MAX_SLICE_INTERVAL_MM = 20.0
#: The x and y pixel spacings of a row must agree to this (relative): the
#: pixels of DeepLesion are square and only the x spacing is used.
SQUARE_PIXEL_TOL = 0.01

_FILE_NAME_RE = re.compile(r'^(\d+)_(\d+)_(\d+)_(\d+)\.png$')

PathLike = Union[str, os.PathLike]


def mmdet_box(bbox: Sequence[float]) -> List[float]:
    """An inclusive pixel box (0-based first and last pixel, as
    :attr:`DLInfoRecord.bbox`) -> mmdet's ``[x1, y1, x2, y2]`` with ``x2,
    y2`` one past the last pixel (``x2 - x1`` pixels wide)."""
    x1, y1, x2, y2 = bbox
    return [float(x1), float(y1), float(x2) + 1.0, float(y2) + 1.0]


@dataclass(frozen=True)
class DLInfoRecord:
    """One lesion, i.e. one row of ``DL_info.csv``, with 0-based pixels.

    The fields are the columns of the same name; those that differ:

    Attributes:
        row (int): line number in the CSV (header = line 1).
        recist (tuple): 4 points ``((x, y), ...)``, 0-based: the long-axis end
            points p1, p2 then the short-axis end points p3, p4.
        bbox (tuple): ``(x1, y1, x2, y2)``, 0-based, inclusive pixels.
        diameters_px (tuple): ``(long, short)`` RECIST diameters in pixels.
        normalized_location (tuple): ``(x, y, z)`` in [0, 1] (body-relative).
        lesion_type (int): 1..8 (:data:`COARSE_LESION_TYPES`), -1 unknown.
        slice_range (tuple): ``(first, last)`` slice released (inclusive).
        spacing (tuple): ``(x, y, z)`` mm: pixel spacing, slice interval.
        image_size (tuple): ``(height, width)``.
        dicom_windows (tuple): the DICOM ``(low, high)`` HU (may be NaN).
        age (int | None): None where the table says NaN.
        split (int): ``Train_Val_Test``: 1 train, 2 val, 3 test.
    """
    row: int
    file_name: str
    patient_index: int
    study_index: int
    series_id: int
    key_slice_index: int
    recist: Tuple[Tuple[float, float], ...]
    bbox: Tuple[float, float, float, float]
    diameters_px: Tuple[float, float]
    normalized_location: Tuple[float, float, float]
    lesion_type: int
    noisy: bool
    slice_range: Tuple[int, int]
    spacing: Tuple[float, float, float]
    image_size: Tuple[int, int]
    dicom_windows: Tuple[float, float]
    gender: str
    age: Optional[int]
    split: int

    @property
    def series_name(self) -> str:
        """Folder of the series under ``Images_png``, e.g. ``000001_01_01``."""
        return self.file_name.rsplit('_', 1)[0]

    @property
    def slice_file(self) -> str:
        """Key slice file inside the series folder, e.g. ``109.png``."""
        return self.file_name.rsplit('_', 1)[1]

    @property
    def pixel_spacing(self) -> float:
        """In-plane pixel spacing in mm/px (x direction)."""
        return self.spacing[0]

    @property
    def slice_interval(self) -> float:
        """Distance between stored slices in mm (z spacing)."""
        return self.spacing[2]

    @property
    def diameters_mm(self) -> Tuple[float, float]:
        """``(long, short)`` RECIST diameters in mm."""
        return (self.diameters_px[0] * self.spacing[0],
                self.diameters_px[1] * self.spacing[0])


class _RowParser:
    """Field converters that raise errors naming file, row and field."""

    def __init__(self, csv_path: str, row: int) -> None:
        self.csv_path = csv_path
        self.row = row

    def error(self, field: str, msg: str) -> ValueError:
        return ValueError(
            f"{self.csv_path}: row {self.row}, field '{field}': {msg}")

    def floats(self, text: str, field: str, n: int,
               allow_nan: bool = False) -> Tuple[float, ...]:
        parts = text.split(',')
        if len(parts) != n:
            raise self.error(
                field, f'expected {n} numbers, got {len(parts)} '
                f'({text!r})')
        try:
            values = tuple(map(float, parts))
        except ValueError:
            raise self.error(field, f'expected {n} numbers, got {text!r}')
        if not allow_nan and not all(map(math.isfinite, values)):
            raise self.error(field, f'non-finite value in {text!r}')
        return values

    def ints(self, text: str, field: str, n: int) -> Tuple[int, ...]:
        parts = text.split(',')
        if len(parts) == n:
            try:
                return tuple(map(int, parts))
            except ValueError:
                pass  # maybe '5.0': checked below
        values = self.floats(text, field, n)
        if not all(v == int(v) for v in values):
            raise self.error(field, f'expected {n} integers, got {text!r}')
        return tuple(int(v) for v in values)

    def int(self, text: str, field: str) -> int:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value == int(value)):
            raise self.error(field, f'expected an integer, got {text!r}')
        return int(value)


def _check_header(header: Optional[Sequence[str]], csv_path: str) -> None:
    if not header:
        raise ValueError(f'{csv_path}: empty file, expected a DL_info.csv '
                         f'header with the columns {list(DL_INFO_COLUMNS)}')
    header = [h.strip() for h in header]
    missing = [c for c in DL_INFO_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f'{csv_path}: row 1 (header): missing DL_info.csv column(s) '
            f'{missing}; found {header}')
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ValueError(f'{csv_path}: row 1 (header): duplicated '
                         f'column(s) {dup}')


def parse_dl_info_row(fields: Dict[str, str], row: int,
                      csv_path: str = '<DL_info>') -> DLInfoRecord:
    """Parse one ``DL_info.csv`` record given as ``{column: text}``.

    Args:
        fields (dict): the 18 official columns (extra keys are ignored).
        row (int): line number in the file, used in error messages.
        csv_path (str): file name used in error messages.

    Returns:
        DLInfoRecord: the lesion with 0-based pixel coordinates.

    Raises:
        ValueError: naming ``csv_path``, ``row`` and the field, for a
            malformed or inconsistent value.
    """
    p = _RowParser(csv_path, row)

    file_name = fields['File_name'].strip()
    match = _FILE_NAME_RE.match(file_name)
    if match is None:
        raise p.error(
            'File_name', f'expected <patient>_<study>_<series>_<slice>.png, '
            f'got {file_name!r}')
    patient = p.int(fields['Patient_index'], 'Patient_index')
    study = p.int(fields['Study_index'], 'Study_index')
    series = p.int(fields['Series_ID'], 'Series_ID')
    key = p.int(fields['Key_slice_index'], 'Key_slice_index')
    for field, value, part in (('Patient_index', patient, 1),
                               ('Study_index', study, 2),
                               ('Series_ID', series, 3),
                               ('Key_slice_index', key, 4)):
        if int(match.group(part)) != value:
            raise p.error(
                field, f'{value} disagrees with File_name {file_name!r}')

    coords = p.floats(fields['Measurement_coordinates'],
                      'Measurement_coordinates', 8)
    recist = tuple(
        (coords[2 * i] - 1.0, coords[2 * i + 1] - 1.0) for i in range(4))
    box = p.floats(fields['Bounding_boxes'], 'Bounding_boxes', 4)
    if box[2] < box[0] or box[3] < box[1]:
        raise p.error('Bounding_boxes',
                      f'expected x1 <= x2 and y1 <= y2, got {box}')
    bbox = (box[0] - 1.0, box[1] - 1.0, box[2] - 1.0, box[3] - 1.0)
    diameters = p.floats(fields['Lesion_diameters_Pixel_'],
                         'Lesion_diameters_Pixel_', 2)
    if min(diameters) < 0:
        raise p.error('Lesion_diameters_Pixel_',
                      f'negative diameter in {diameters}')
    location = p.floats(fields['Normalized_lesion_location'],
                        'Normalized_lesion_location', 3, allow_nan=True)
    lesion_type = p.int(fields['Coarse_lesion_type'], 'Coarse_lesion_type')
    if lesion_type != -1 and not 1 <= lesion_type <= 8:
        raise p.error('Coarse_lesion_type',
                      f'expected -1 or 1..8, got {lesion_type}')
    noisy = p.int(fields['Possibly_noisy'], 'Possibly_noisy')
    if noisy not in (0, 1):
        raise p.error('Possibly_noisy', f'expected 0 or 1, got {noisy}')
    slice_range = p.ints(fields['Slice_range'], 'Slice_range', 2)
    if not slice_range[0] <= key <= slice_range[1]:
        raise p.error(
            'Slice_range', f'{slice_range} does not contain the key slice '
            f'{key}')
    spacing = p.floats(fields['Spacing_mm_px_'], 'Spacing_mm_px_', 3)
    if min(spacing) <= 0:
        raise p.error('Spacing_mm_px_',
                      f'expected positive spacings, got {spacing}')
    if max(spacing[:2]) > MAX_PIXEL_SPACING_MM:
        raise p.error(
            'Spacing_mm_px_', f'pixel spacing {spacing[0]:g}, {spacing[1]:g} '
            f'mm is implausible for CT (at most {MAX_PIXEL_SPACING_MM:g} '
            'mm; another unit?)')
    if spacing[2] > MAX_SLICE_INTERVAL_MM:
        raise p.error(
            'Spacing_mm_px_', f'slice interval {spacing[2]:g} mm is '
            f'implausible for CT (at most {MAX_SLICE_INTERVAL_MM:g} mm; '
            'another unit?)')
    if abs(spacing[0] - spacing[1]) > SQUARE_PIXEL_TOL * spacing[0]:
        raise p.error(
            'Spacing_mm_px_', f'x and y pixel spacings {spacing[0]:g} and '
            f'{spacing[1]:g} mm differ; DeepLesion pixels are square and '
            'only the first is used, so sizes in mm would be wrong')
    image_size = p.ints(fields['Image_size'], 'Image_size', 2)
    if min(image_size) <= 0:
        raise p.error('Image_size', f'expected positive sizes, got '
                      f'{image_size}')
    height, width = image_size
    # the box must overlap the image and stick out by at most its size
    if not (-width <= bbox[0] < width and -height <= bbox[1] < height
            and 0 < bbox[2] <= 2 * width and 0 < bbox[3] <= 2 * height):
        raise p.error('Bounding_boxes',
                      f'{box} lies outside the image of Image_size '
                      f'{image_size[0]}, {image_size[1]}')
    windows = p.floats(fields['DICOM_windows'], 'DICOM_windows', 2,
                       allow_nan=True)
    gender = fields['Patient_gender'].strip()
    age_text = fields['Patient_age'].strip()
    if age_text.lower() in ('nan', ''):
        age = None
    else:
        age = p.int(age_text, 'Patient_age')
    split = p.int(fields['Train_Val_Test'], 'Train_Val_Test')
    if split not in (1, 2, 3):
        raise p.error('Train_Val_Test', f'expected 1, 2 or 3, got {split}')

    return DLInfoRecord(
        row=row, file_name=file_name, patient_index=patient,
        study_index=study, series_id=series, key_slice_index=key,
        recist=recist, bbox=bbox, diameters_px=diameters,
        normalized_location=location, lesion_type=lesion_type,
        noisy=bool(noisy), slice_range=slice_range, spacing=spacing,
        image_size=image_size, dicom_windows=windows, gender=gender,
        age=age, split=split)


def find_duplicate_rows(
        records: Sequence[DLInfoRecord]
) -> List[Tuple[DLInfoRecord, DLInfoRecord, str]]:
    """Rows that repeat a lesion of an earlier row.

    Two rows describe the same lesion when they have the same ``File_name``
    and the same ``Bounding_boxes`` or ``Measurement_coordinates`` (no two
    lesions of the official val / test rows share either).

    Args:
        records (Sequence[DLInfoRecord]): parsed rows, in file order.

    Returns:
        list[tuple]: ``(first, repeat, field)`` for every repeated row,
        ``field`` naming the column that coincides.
    """
    seen: Dict[tuple, DLInfoRecord] = {}
    duplicates = []
    for rec in records:
        keys = [(rec.file_name, 'Bounding_boxes', rec.bbox),
                (rec.file_name, 'Measurement_coordinates', rec.recist)]
        first = next((key for key in keys if key in seen), None)
        if first is not None:
            duplicates.append((seen[first], rec, first[1]))
        else:
            seen.update(dict.fromkeys(keys, rec))
    return duplicates


def parse_dl_info(csv_path: PathLike,
                  duplicate_rows: str = 'error') -> List[DLInfoRecord]:
    """Parse a UTF-8 DeepLesion ``DL_info.csv``: the 18 official columns
    (:data:`DL_INFO_COLUMNS`) in any order, extra ones ignored.

    Args:
        csv_path (str | PathLike): path of the CSV file.
        duplicate_rows (str): what to do with a row repeating a lesion of an
            earlier row (:func:`find_duplicate_rows`): ``'error'`` (default)
            raises naming both rows, ``'drop'`` keeps the first and logs a
            warning naming the pairs.

    Returns:
        list[DLInfoRecord]: one record per lesion, in file order.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: another encoding, a bad header, a row with a wrong
            number of fields, a malformed field or a duplicated row
            (naming the file, the row and the field).
    """
    if duplicate_rows not in ('error', 'drop'):
        raise ValueError(f"duplicate_rows must be 'error' or 'drop', got "
                         f'{duplicate_rows!r}')
    csv_path = str(csv_path)
    if not osp.exists(csv_path):
        raise FileNotFoundError(f'DL_info file not found: {csv_path}')
    records = []
    text = read_csv_text(csv_path, 'DL_info')  # UTF-8, last row complete
    reader = csv.reader(io.StringIO(text, newline=''))
    header = next(reader, None)
    _check_header(header, csv_path)
    header = [h.strip() for h in header]
    n_cols = len(header)
    while True:
        start_line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise ValueError(f'{csv_path}: row {start_line}: {e}')
        if not values or all(not v.strip() for v in values):
            continue  # blank line
        if len(values) != n_cols:
            raise ValueError(
                f'{csv_path}: row {start_line}: expected {n_cols} '
                f'fields as in the header, got {len(values)}')
        records.append(
            parse_dl_info_row(dict(zip(header, values)), start_line, csv_path))
    duplicates = find_duplicate_rows(records)
    if duplicates:
        pairs = [f'row {rep.row} repeats row {first.row} ({rep.file_name!r}, '
                 f'same {field})' for first, rep, field in duplicates]
        listed = '; '.join(pairs[:10]) + (' ...' if len(pairs) > 10 else '')
        if duplicate_rows == 'error':
            raise ValueError(
                f'{csv_path}: {len(duplicates)} duplicated lesion row(s): '
                f'{listed}. A repeated row counts as a second lesion (in '
                'training and in the FROC); remove it or pass '
                "duplicate_rows='drop' to keep the first")
        print_log(
            f'{csv_path}: dropped {len(duplicates)} duplicated lesion '
            f'row(s): {listed}', logger='current', level=logging.WARNING)
        dropped = {id(rep) for _, rep, _ in duplicates}
        records = [r for r in records if id(r) not in dropped]
    return records


def series_spacings(csv_path: PathLike) -> Dict[str, Tuple[float, float]]:
    """Series folder -> ``(slice interval, pixel spacing)`` in mm, from the
    first row of each series of a ``DL_info.csv``."""
    out: Dict[str, Tuple[float, float]] = {}
    for rec in parse_dl_info(csv_path, duplicate_rows='drop'):
        out.setdefault(rec.series_name,
                       (rec.slice_interval, rec.pixel_spacing))
    return out


def format_dl_number(value: float, digits: int = 6) -> str:
    """One number as the official CSV writes it (C ``%g``, no ``-0``)."""
    text = f'{float(value):.{digits}g}'
    return '0' if text == '-0' else text


def format_dl_numbers(values: Sequence[float]) -> str:
    """A list field of the official CSV, e.g. ``'0.8, 0.8, 5'``."""
    return ', '.join(format_dl_number(v) for v in values)


def write_dl_info(csv_path: PathLike, rows: Sequence[Sequence[str]]) -> None:
    """Write a ``DL_info.csv``: the 18 official columns, then ``rows``.

    Args:
        csv_path (str | PathLike): output file.
        rows (sequence): each row's 18 field texts in the order of
            :data:`DL_INFO_COLUMNS` (numbers formatted with
            :func:`format_dl_numbers`, pixel coordinates 1-based).
    """
    for i, row in enumerate(rows):
        if len(row) != len(DL_INFO_COLUMNS):
            raise ValueError(f'{csv_path}: row {i + 2} has {len(row)} '
                             f'fields, DL_info.csv needs '
                             f'{len(DL_INFO_COLUMNS)}')
    with atomic_write(csv_path, newline='', encoding='utf-8') as f:
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(DL_INFO_COLUMNS)
        writer.writerows(rows)
