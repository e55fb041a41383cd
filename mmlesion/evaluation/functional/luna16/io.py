# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 CSV files: findings, candidates and series UIDs (read, write)."""
import csv
import io
import math
import os.path as osp
from typing import (Dict, Iterator, List, NamedTuple, Optional, Sequence,
                    Tuple)

import numpy as np

from mmlesion.utils.writing.atomic import atomic_write
from mmlesion.utils.input_files import MAX_WORLD_MM, read_csv_text


_FINDING_COLUMNS = ('seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm')
_CANDIDATE_COLUMNS = ('seriesuid', 'coordX', 'coordY', 'coordZ',
                      'probability')


class LUNA16Findings(NamedTuple):
    """Rows of ``annotations.csv`` or ``annotations_excluded.csv``.

    Attributes:
        seriesuids (np.ndarray): ``(N,)`` object array of series UIDs.
        xyz (np.ndarray): ``(N, 3)`` float64 world centres (mm).
        diameter_mm (np.ndarray): ``(N,)`` float64 diameters as written
            (``-1`` = unknown).
    """
    seriesuids: np.ndarray
    xyz: np.ndarray
    diameter_mm: np.ndarray


class LUNA16Candidates(NamedTuple):
    """Rows of a candidates (CAD marks) CSV.

    Attributes:
        seriesuids (np.ndarray): ``(N,)`` object array of series UIDs.
        xyz (np.ndarray): ``(N, 3)`` float64 world positions (mm).
        probability (np.ndarray): ``(N,)`` float64 probabilities.
    """
    seriesuids: np.ndarray
    xyz: np.ndarray
    probability: np.ndarray


class InstanceFinding(NamedTuple):
    """The finding of a ``CTVolumeDataset`` instance."""
    center_world: np.ndarray
    diameter_mm: float
    ignored: bool


def instance_finding(inst: dict, where: str) -> InstanceFinding:
    """``(center_world, diameter_mm, ignored)`` of a ``CTVolumeDataset``
    instance; a ``ValueError`` naming ``where`` when it lacks them."""
    try:
        return InstanceFinding(
            np.asarray(inst['center_world'], dtype=np.float64).reshape(3),
            float(inst['diameter_mm']), bool(inst.get('ignore_flag', 0)))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: needs 'center_world' [x, y, z] and "
                         f"'diameter_mm' ({err})") from err


def findings_of(rows: Sequence[tuple]) -> LUNA16Findings:
    """:class:`LUNA16Findings` of ``(seriesuid, xyz, diameter_mm)`` rows."""
    return LUNA16Findings(
        np.asarray([r[0] for r in rows], dtype=object),
        np.asarray([r[1] for r in rows], dtype=np.float64).reshape(-1, 3),
        np.asarray([r[2] for r in rows], dtype=np.float64))


def _data_rows(reader, path: str) -> Iterator[Tuple[int, List[str]]]:
    """The rows of a CSV ``reader`` that are not blank, each with its line
    (a CSV error raised as a ``ValueError`` naming ``path`` and the line)."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise ValueError(f'{path} line {reader.line_num}: {err}') from None
        if row and not all(not f.strip() for f in row):
            yield reader.line_num, row


def _read_table(path: str, columns: Sequence[str], what: str,
                allow_duplicates: bool = True,
                rename: Optional[Dict[str, str]] = None
                ) -> Tuple[np.ndarray, np.ndarray]:
    """Read a LUNA16 CSV with a header; return uids and the float columns.

    ``rename`` maps headers of the file onto the names of ``columns``.
    Raises ``ValueError`` naming the file, the line and the field of the
    first bad value and, unless ``allow_duplicates``, the two lines of a
    repeated row (same series UID and coordinates).
    """
    if not osp.exists(path):
        raise FileNotFoundError(f'cannot open the {what} CSV {path}: no '
                                'such file')
    reader = csv.reader(io.StringIO(read_csv_text(path, f'{what} CSV'),
                                    newline=''))
    header = next(reader, None)
    if header is None:
        raise ValueError(f'{path}: empty file, expected a header '
                         f'{",".join(columns)}')
    raw = [h.strip() for h in header]
    header = [(rename or {}).get(h, h) for h in raw]
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(
            f'{path} line 1: the header {header} lacks the column(s) '
            f'{missing} of the {what} format ({",".join(columns)})')
    idx = [header.index(c) for c in columns]
    uids: List[str] = []
    values: List[List[float]] = []
    seen: Dict[tuple, int] = {}
    for line, row in _data_rows(reader, path):
        if [f.strip() for f in row] == raw:
            raise ValueError(
                f'{path} line {line}: a repeated header line (files joined '
                'together?); it would be read as a row. Remove it')
        if len(row) != len(header):
            raise ValueError(
                f'{path} line {line}: {len(row)} fields, the header has '
                f'{len(header)}')
        uid = row[idx[0]].strip()
        if not uid:
            raise ValueError(f'{path} line {line}: field '
                             f"'{columns[0]}' is empty")
        vals = []
        for name, j in zip(columns[1:], idx[1:]):
            try:
                val = float(row[j])
            except ValueError:
                raise ValueError(
                    f"{path} line {line}: field '{name}' is not a "
                    f'number: {row[j]!r}') from None
            if not math.isfinite(val) or (name.startswith('coord') and
                                          abs(val) > MAX_WORLD_MM):
                raise ValueError(f"{path} line {line}: field '{name}' "
                                 f'is not finite or absurd (over '
                                 f'{MAX_WORLD_MM:g} mm): {row[j]!r}')
            vals.append(val)
        if not allow_duplicates:
            key = (uid, *vals[:3])
            if key in seen:
                raise ValueError(
                    f'{path} line {line}: repeats line {seen[key]} (series '
                    f'{uid}, the same {",".join(columns[1:4])}): a repeated '
                    f'row would count as a second {what} finding (and change '
                    'the sensitivity and CPM); remove one (an excluded-'
                    'findings file may repeat rows: read it with '
                    'allow_duplicates=True)')
            seen[key] = line
        uids.append(uid)
        values.append(vals)
    arr = np.asarray(values, dtype=np.float64).reshape(-1, len(columns) - 1)
    return np.asarray(uids, dtype=object), arr


def read_findings_csv(path: str,
                      allow_duplicates: bool = False) -> LUNA16Findings:
    """Read ``annotations.csv`` or ``annotations_excluded.csv``.

    Args:
        path (str): CSV with the header ``seriesuid,coordX,coordY,coordZ,
            diameter_mm`` (extra columns are ignored).
        allow_duplicates (bool): accept two rows of one series at the same
            coordinates (True for ``annotations_excluded.csv``, whose
            release repeats 8,382 rows). False (default) refuses them,
            naming both lines.

    Returns:
        LUNA16Findings: the rows in file order.
    """
    uids, vals = _read_table(path, _FINDING_COLUMNS, 'annotations',
                             allow_duplicates)
    return LUNA16Findings(uids, vals[:, :3].copy(), vals[:, 3].copy())


def read_candidates_csv(path: str) -> LUNA16Candidates:
    """Read a candidates CSV (``seriesuid,coordX,coordY,coordZ,
    probability``).

    Args:
        path (str): the CSV file.

    Returns:
        LUNA16Candidates: the rows in file order.
    """
    uids, vals = _read_table(path, _CANDIDATE_COLUMNS, 'candidates')
    return LUNA16Candidates(uids, vals[:, :3].copy(), vals[:, 3].copy())


def read_seriesuids_csv(path: str) -> List[str]:
    """Read ``seriesuids.csv`` (one UID per line, first column; a header on
    the first line is skipped).

    Raises ``ValueError`` naming the file and line on an empty UID, a UID
    listed twice, a header line inside the file or an undecodable byte.
    """
    if not osp.exists(path):
        raise FileNotFoundError(f'cannot open the seriesuids CSV {path}: no '
                                'such file')
    uids: List[str] = []
    seen: Dict[str, int] = {}
    reader = csv.reader(io.StringIO(read_csv_text(path, 'seriesuids CSV'),
                                    newline=''))
    for line, row in _data_rows(reader, path):
        uid = row[0].strip()
        if not uid:
            raise ValueError(f'{path} line {line}: empty '
                             'seriesuid')
        if uid.lower() in _HEADER_WORDS:
            if line == 1:
                continue  # a header line: not a scan
            raise ValueError(
                f'{path} line {line}: a header line ({uid!r}) '
                'inside the list (files joined together?); it would count '
                'as one more scan. Remove it')
        if uid in seen:
            raise ValueError(
                f'{path} line {line}: seriesuid {uid} is '
                f'listed twice (first on line {seen[uid]})')
        seen[uid] = line
        uids.append(uid)
    if not uids:
        raise ValueError(f'{path}: no seriesuid')
    return uids


#: First fields of a header line, not series UIDs.
_HEADER_WORDS = frozenset(
    c.lower() for c in _FINDING_COLUMNS + _CANDIDATE_COLUMNS + ('uid',
                                                                'series_uid'))


def read_candidate_column(path: str, column: str) -> np.ndarray:
    """One extra numeric column of a candidates CSV (``rpn_probability``,
    ``diameter_mm``), in file order; bad values are refused as by
    :func:`read_candidates_csv`."""
    return _read_table(path, ('seriesuid', column), 'candidates')[1][:, 0]


def write_candidates_csv(path: str,
                         seriesuids: Sequence[str],
                         xyz: np.ndarray,
                         probability: np.ndarray,
                         diameter_mm: Optional[np.ndarray] = None,
                         rpn_probability: Optional[np.ndarray] = None
                         ) -> None:
    """Write candidates in the official CSV format.

    Numbers are written with ``repr`` so that reading the file back gives
    the same float64 values (the evaluation is then bit-identical).

    Args:
        path (str): output CSV.
        seriesuids (Sequence[str]): ``(N,)`` series UID per mark.
        xyz (np.ndarray): ``(N, 3)`` world positions (mm).
        probability (np.ndarray): ``(N,)`` probabilities.
        diameter_mm (np.ndarray, optional): ``(N,)`` estimated diameters,
            written as an extra ``diameter_mm`` column (the official script
            reads columns by name and ignores it).
        rpn_probability (np.ndarray, optional): ``(N,)`` the RPN score of
            each mark (the one a test-time cut reads,
            :mod:`.score_cut`), an extra ``rpn_probability`` column.
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    probability = np.asarray(probability, dtype=np.float64).reshape(-1)
    extra = {name: np.asarray(v, dtype=np.float64).reshape(-1)
             for name, v in (('diameter_mm', diameter_mm),
                             ('rpn_probability', rpn_probability))
             if v is not None}
    with atomic_write(path, newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(_CANDIDATE_COLUMNS + tuple(extra))
        for row in zip(seriesuids, *xyz.T, probability, *extra.values()):
            writer.writerow([row[0]] + [repr(float(v)) for v in row[1:]])
