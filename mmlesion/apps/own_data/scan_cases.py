# Copyright (c) mmlesion contributors. All rights reserved.
"""One scan to convert (:class:`ScanCase`) and its lesions from a box CSV
(a header, then one row per finding, its id column naming the scan:
:func:`scan_id`); ``data/README.md`` (``--boxes``) gives the columns of the
``world``, ``recist`` and ``voxel`` formats (:data:`BOX_COLUMNS`). A file
separated by semicolons or tabs is refused naming them
(:func:`~mmlesion.utils.input_files.check_csv_delimiter`).
"""
import csv
import io
import itertools
import math
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from mmengine.logging import print_log

from mmlesion.datasets.volumes import (CTVolume, box_center_world,
                                       box_from_world_sphere)
from mmlesion.datasets.volumes.annotation_file import LesionEntry
from mmlesion.datasets.volumes.loading import (VOLUME_SUFFIXES, dicom_tag,
                                               read_header)
from mmlesion.evaluation.functional.luna16.io import _data_rows, _read_table
from mmlesion.utils.input_files import check_csv_delimiter, read_csv_text
from mmlesion.utils.tool_defaults import tool_defaults

from .deeplesion_export import sphere_slice_boxes

#: Diameter the official LUNA16 script uses for excluded findings of unknown
#: size (-1).
UNKNOWN_DIAMETER_MM = 10.0
#: Columns of the box CSVs after the id column, by ``box_format``
#: (``tool_defaults.json``: the converter's ``--help`` shows the formats).
BOX_COLUMNS = {fmt: tuple(columns) for fmt, columns in
               tool_defaults(__file__)['BOX_COLUMNS'].items()}
#: Columns the ``recist`` layout may add: the patient (the split groups by
#: it), the measured slice (0-based along the stored file's z axis: the key
#: slice) and the axes' end points (``x1, y1, x2, y2`` of the long axis,
#: then of the short one, world mm as coordX / coordY).
RECIST_OPTIONAL = ('patient_id', 'slice_index', 'measurement_coordinates')


@dataclass
class BoxRow:
    """One row of a box CSV.

    Attributes:
        where (str): file, row and scan, for the errors.
        ignore (bool): an excluded finding (an ``ignore`` box).
        center_xyz (tuple, optional): world centre (``world``, ``recist``).
        diameter_mm (float): the sphere's diameter (-1: unknown).
        file_box (tuple, optional): ``x1, y1, z1, x2, y2, z2`` voxels of the
            stored file (``voxel``).
        axes_mm (tuple, optional): RECIST long and short axis (``recist``).
        patient (str, optional): its patient (``patient_id``).
        slice_index (int, optional): the measured slice, 0-based along the
            stored file's z axis.
        end_points (tuple, optional): the axes' end points (world mm, as
            ``measurement_coordinates``).
    """
    where: str
    ignore: bool = False
    center_xyz: Optional[Tuple[float, float, float]] = None
    diameter_mm: float = -1.0
    file_box: Optional[Tuple[float, ...]] = None
    axes_mm: Optional[Tuple[float, float]] = None
    patient: Optional[str] = None
    slice_index: Optional[int] = None
    end_points: Optional[Tuple[float, ...]] = None


@dataclass
class ScanCase:
    """One scan to convert.

    Attributes:
        volume_id (str): its id in the annotation file.
        image (str): the CT (file or DICOM series folder).
        mask (str, optional): its label map (same grid).
        findings (list[BoxRow]): its rows of the box CSVs.
        patient (str, optional): its patient (default: the volume id).
        rows_patient (str, optional): the patient its box CSV rows name
            (:func:`rows_patient`).
    """
    volume_id: str
    image: str
    mask: Optional[str] = None
    findings: List[BoxRow] = field(default_factory=list)
    patient: Optional[str] = None
    rows_patient: Optional[str] = None


def rows_patient(volume_id: str, findings: List[BoxRow]) -> Optional[str]:
    """The patient the ``patient_id`` of a scan's rows names (None where
    they name none).

    Raises:
        ValueError: two rows of the scan name two patients.
    """
    named = {f.patient: f for f in findings if f.patient}
    if len(named) > 1:
        (a, first), (b, second) = list(named.items())[:2]
        raise ValueError(f"{second.where}: field 'patient_id' {b!r}, but "
                         f'{first.where} of the same scan {volume_id} names '
                         f'{a!r}')
    return next(iter(named), None)


def scan_id(rel_path: str) -> str:
    """The id of a scan from its path under the scan folder: the path
    without its volume suffix, ``/``-separated (``a/b.nii.gz`` -> ``a/b``).
    """
    rel = rel_path.replace('\\', '/')
    for suffix in sorted(VOLUME_SUFFIXES, key=len, reverse=True):
        if rel.lower().endswith(suffix):
            return rel[:-len(suffix)]
    return rel


def box_columns(box_format: str, path: str,
                columns: Optional[Dict[str, str]] = None
                ) -> Dict[str, str]:
    """The headers of ``path`` read as the converter's columns
    (``--columns name=header``), echoed in one line where mapped or
    ``recist`` (which optional columns it found).

    Raises:
        ValueError: a name that is no column of the layout, or a header of
            an optional column that the file lacks.
    """
    known = BOX_COLUMNS[box_format] + (
        RECIST_OPTIONAL if box_format == 'recist' else ())
    unknown = sorted(set(columns or {}) - set(known))
    if unknown:
        raise ValueError(f'--columns: {unknown} is not a column of the '
                         f'{box_format} layout ({", ".join(known)})')
    header = next(_data_rows(csv.reader(io.StringIO(read_csv_text(
        path, 'box CSV'), newline='')), path), (0, []))[1]
    header = [h.strip() for h in header]
    used = {name: (columns or {}).get(name, name) for name in known}
    used = {name: head for name, head in used.items()
            if name in BOX_COLUMNS[box_format] or head in header}
    lost = [f'{name}={columns[name]}' for name in columns or {}
            if columns[name] not in header]
    if lost:
        raise ValueError(f'{path} line 1: the header {header} lacks the '
                         f'column(s) of --columns {" ".join(lost)}')
    if columns or box_format == 'recist':  # (the others: as named)
        print_log(f'{path}: columns ' + ', '.join(
            f'{name}={head}' if head != name else name
            for name, head in used.items()), logger='current')
    return used


def _optional_fields(path: str, used: Dict[str, str]
                     ) -> List[Dict[str, Tuple[int, str]]]:
    """Per data row (as :func:`_read_table` reads them) the texts of the
    optional columns in ``used``, each with its line."""
    reader = csv.reader(io.StringIO(read_csv_text(path, 'box CSV'),
                                    newline=''))
    rows = _data_rows(reader, path)
    header = [h.strip() for h in next(rows)[1]]
    index = {name: header.index(head) for name, head in used.items()
             if name in RECIST_OPTIONAL}
    return [{name: (line, row[j].strip()) for name, j in index.items()}
            for line, row in rows]


def _number_list(path: str, line: int, name: str, text: str,
                 count: int) -> Tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.replace(';', ',').replace(
            ' ', ',').split(',') if v.strip())
    except ValueError:
        values = ()
    if len(values) != count or not all(map(math.isfinite, values)):
        raise ValueError(f"{path} line {line}: field '{name}' must be "
                         f'{count} numbers, got {text!r}')
    return values


def _recist_row(path: str, finding: BoxRow, v: list,
                extra: Dict[str, Tuple[int, str]]) -> None:
    """Fill a ``recist`` row's axes and optional columns (checked)."""
    if not 0 < v[4] <= v[3]:
        raise ValueError(
            f"{finding.where}: field 'short_axis_mm' must be in (0, "
            f'long_axis_mm], got {v[4]} (long {v[3]})')
    finding.axes_mm = (v[3], v[4])
    line, text = extra.get('patient_id', (0, ''))
    finding.patient = text or None
    line, text = extra.get('slice_index', (0, ''))
    if text:
        try:
            finding.slice_index = int(text)
        except ValueError:
            raise ValueError(f"{path} line {line}: field 'slice_index' must "
                             f'be a whole slice number, got {text!r}'
                             ) from None
    line, text = extra.get('measurement_coordinates', (0, ''))
    if text:
        finding.end_points = _number_list(path, line,
                                          'measurement_coordinates', text, 8)


def read_box_table(path: str, box_format: str, ignore: bool = False,
                   columns: Optional[Dict[str, str]] = None
                   ) -> Dict[str, List[BoxRow]]:
    """The findings of a box CSV by scan id (file order kept).

    Args:
        path (str): the CSV (columns: :data:`BOX_COLUMNS`, for ``recist``
            also :data:`RECIST_OPTIONAL`).
        box_format (str): ``world``, ``recist`` or ``voxel``.
        ignore (bool): the rows are excluded findings (repeats allowed).
        columns (dict, optional): column name -> the file's header for it
            (:func:`box_columns`).

    Returns:
        dict[str, list[BoxRow]]: scan id -> its findings.

    Raises:
        ValueError: one line naming the file, the line and the field.
    """
    what = f'{box_format} boxes'
    used = None
    if osp.exists(path):  # (a missing file is named by the reader)
        check_csv_delimiter(path, read_csv_text(path, f'{what} CSV'), what)
        used = box_columns(box_format, path, columns)
    ids, values = _read_table(path, BOX_COLUMNS[box_format], what, ignore,
                              {h: n for n, h in (used or {}).items()})
    extras = _optional_fields(path, used) if box_format == 'recist' else []
    out: Dict[str, List[BoxRow]] = {}
    for i, (uid, v) in enumerate(zip(ids, values.tolist())):
        where = f'{path}: finding {i + 1} (series {uid}, '
        if box_format == 'voxel':
            finding = BoxRow(where + f'voxels {tuple(v)})', ignore,
                             file_box=tuple(v))
            if any(v[k] > v[k + 3] for k in range(3)):
                raise ValueError(f"{finding.where}: field 'x2/y2/z2' below "
                                 "'x1/y1/z1'")
        else:
            finding = BoxRow(where + f'coordX/Y/Z {tuple(v[:3])})', ignore,
                             tuple(v[:3]), v[3])
            if box_format == 'recist':
                _recist_row(path, finding, v, extras[i])
        out.setdefault(uid, []).append(finding)
    return out


def _outside(where: str, volume: CTVolume, lo: Sequence[float],
             hi: Sequence[float]) -> None:
    if not all(-0.5 - 1e-3 <= lo[i] and hi[i] <= volume.shape_zyx[i] - 0.5
               + 1e-3 for i in range(3)):
        raise ValueError(
            f'{where}: lies outside the scan {volume.meta["path"]} (voxel '
            f'(z, y, x) {tuple(round(float(v), 1) for v in lo)} .. '
            f'{tuple(round(float(v), 1) for v in hi)} of '
            f'{tuple(volume.shape_zyx)})')


def _file_box_entry(volume: CTVolume, finding: BoxRow) -> LesionEntry:
    """A box given in the stored file's voxels, on the canonical grid."""
    if volume.meta.get('format') == 'dicom_series':
        raise ValueError(f'{finding.where}: voxel boxes need a NIfTI or '
                         f'MetaImage scan, not the DICOM series '
                         f'{volume.meta["path"]}: give world boxes')
    reader = read_header(volume.meta['path'])
    b = finding.file_box
    corners = np.asarray(list(itertools.product(*[
        (b[k] - 0.5, b[k + 3] + 0.5) for k in range(3)])))
    world = np.asarray(reader.GetOrigin()) + (
        corners * np.asarray(reader.GetSpacing())) @ np.asarray(
            reader.GetDirection()).reshape(3, 3).T
    zyx = volume.world_to_voxel(world)
    lo, hi = zyx.min(0), zyx.max(0)
    _outside(finding.where, volume, lo + 0.5, hi - 0.5)
    bbox = [float(v) for v in np.round(np.r_[lo[::-1], hi[::-1]], 4)]
    return LesionEntry(
        bbox=bbox,
        center_world=box_center_world(volume, bbox),
        diameter_mm=float(np.max((hi - lo) * volume.spacing_zyx)),
        label=0, ignore=finding.ignore)


def _measured_slice(volume: CTVolume, finding: BoxRow) -> int:
    """The scan's (canonical) slice of a row's ``slice_index``: the slice of
    the stored file through the row's centre."""
    if volume.meta.get('format') == 'dicom_series':
        raise ValueError(f"{finding.where}: field 'slice_index' needs a "
                         'NIfTI or MetaImage scan, not the DICOM series '
                         f'{volume.meta["path"]}: leave the column out (the '
                         'key slice is then the one at coordZ)')
    reader = read_header(volume.meta['path'])
    depth = reader.GetSize()[2]
    if not 0 <= finding.slice_index < depth:
        raise ValueError(
            f"{finding.where}: field 'slice_index' {finding.slice_index} is "
            f'not a slice of the scan (0 .. {depth - 1}, 0-based along the '
            "file's z axis)")
    origin = np.asarray(reader.GetOrigin())
    axes = np.asarray(reader.GetDirection()).reshape(3, 3) * np.asarray(
        reader.GetSpacing())
    index = np.linalg.solve(axes, np.asarray(finding.center_xyz) - origin)
    index[2] = finding.slice_index
    return int(math.floor(volume.world_to_voxel(origin + axes @ index)[0][0]
                          + 0.5))


def _recist_entry(volume: CTVolume, finding: BoxRow) -> LesionEntry:
    """A RECIST row's lesion: on its key slice (the measured one, else the
    one at its centre) the box of its axes' end points, else long x short
    axis (the long axis taken along x); through the slices an ellipsoid of
    the short axis' depth (a slice at least) around the measured slice,
    else around the centre."""
    c = volume.world_to_voxel(finding.center_xyz)[0]
    _outside(finding.where, volume, c, c)
    sz, sy, sx = volume.spacing_zyx
    long, short = finding.axes_mm
    key = (int(math.floor(c[0] + 0.5)) if finding.slice_index is None else
           _measured_slice(volume, finding))
    zc = c[0] if finding.slice_index is None else key
    depth = max(short / 2 / sz, 0.5)
    if abs(c[0] - key) > depth + 0.5:
        raise ValueError(
            f"{finding.where}: field 'slice_index' {finding.slice_index}: "
            f'its slice lies {abs(c[0] - key) * sz:.1f} mm from coordZ, '
            f'beyond half the short axis ({short / 2:g} mm)')
    if finding.end_points is not None:
        ends = np.asarray(finding.end_points).reshape(4, 2)
        zyx = volume.world_to_voxel(np.c_[ends, np.full(
            4, finding.center_xyz[2])])
        lo, hi = zyx.min(0)[::-1], zyx.max(0)[::-1]
        cx, cy = (lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2
        hx, hy = (hi[0] - lo[0]) / 2, (hi[1] - lo[1]) / 2
    else:
        cx, cy, hx, hy = c[2], c[1], long / 2 / sx, short / 2 / sy
    slice_boxes = {}
    for z in range(int(math.ceil(zc - depth)),
                   int(math.floor(zc + depth)) + 1):
        f = 1. if z == key else math.sqrt(max(0., 1 - ((z - zc) / depth)**2))
        if 0 <= z < volume.shape_zyx[0] and (f > 0 or z == key):
            slice_boxes[z] = [cx - f * hx, cy - f * hy, cx + f * hx,
                              cy + f * hy]
    bbox = [cx - hx, cy - hy, max(zc - depth, -0.5), cx + hx, cy + hy,
            min(zc + depth, volume.shape_zyx[0] - 0.5)]
    return LesionEntry(bbox=[float(v) for v in bbox],
                       center_world=box_center_world(volume, bbox),
                       diameter_mm=float(long), label=0,
                       ignore=finding.ignore, key_slice=key,
                       slice_boxes=slice_boxes)


def finding_entry(volume: CTVolume, finding: BoxRow) -> LesionEntry:
    """The annotation of a finding on its scan (with ``slice_boxes`` for
    the 2D export where the box is a sphere's).

    Raises:
        ValueError: a lesion without a positive diameter, or outside the
            scan, naming the file and the row.
    """
    if finding.file_box is not None:
        return _file_box_entry(volume, finding)
    if finding.axes_mm is not None:
        return _recist_entry(volume, finding)
    diameter = finding.diameter_mm
    if diameter <= 0 and not finding.ignore:
        raise ValueError(f"{finding.where}, field 'diameter_mm': a nodule "
                         f'needs a positive diameter, got {diameter}')
    box_d = diameter if diameter > 0 else UNKNOWN_DIAMETER_MM
    c = volume.world_to_voxel(finding.center_xyz)[0]
    _outside(finding.where, volume, c, c)
    bbox = box_from_world_sphere(volume, finding.center_xyz, box_d)
    return LesionEntry(
        bbox=bbox,
        center_world=box_center_world(volume, bbox),
        diameter_mm=float(diameter),
        label=0,
        ignore=finding.ignore,
        slice_boxes=sphere_slice_boxes(volume, finding.center_xyz, box_d))


class HeaderFacts(NamedTuple):
    """A scan file's stored orientation code before it was made canonical
    (e.g. ``'LPS'``) and its DICOM PatientID (None where it has none)."""
    orientation: str
    patient_id: Optional[str]


def header_facts(volume: CTVolume) -> HeaderFacts:
    """The stored orientation code (e.g. ``'LPS'``, ``'RAS'``) of a scan's
    file before it was made canonical, and its DICOM PatientID (None
    where it has none)."""
    reader = read_header(volume.meta.get('first_file') or volume.meta['path'])
    code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
        reader.GetDirection())
    return HeaderFacts(code, dicom_tag(reader, '0010|0020') or None)

