# Copyright (c) mmlesion contributors. All rights reserved.
"""One scan to convert (:class:`ScanCase`) and its lesions from a box CSV
(a header, then one row per finding, its id column naming the scan:
:func:`scan_id`); ``data/README.md`` (``--boxes``) gives the columns of the
``world``, ``recist`` and ``voxel`` formats (:data:`BOX_COLUMNS`). A file
separated by semicolons or tabs is refused naming them
(:func:`~mmlesion.utils.input_files.check_csv_delimiter`).
"""
import itertools
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from mmlesion.evaluation.functional.luna16.io import _read_table
from mmlesion.utils.input_files import check_csv_delimiter, read_csv_text
from mmlesion.utils.tool_defaults import tool_defaults
from ..volumes import CTVolume, box_center_world, box_from_world_sphere
from ..volumes.loading import VOLUME_SUFFIXES, dicom_tag, read_header
from .deeplesion_export import sphere_slice_boxes

#: Diameter the official LUNA16 script uses for excluded findings of unknown
#: size (-1).
UNKNOWN_DIAMETER_MM = 10.0
#: Columns of the box CSVs after the id column, by ``box_format``
#: (``tool_defaults.json``: the converter's ``--help`` shows the formats).
BOX_COLUMNS = {fmt: tuple(columns) for fmt, columns in
               tool_defaults(__file__)['BOX_COLUMNS'].items()}


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
    """
    where: str
    ignore: bool = False
    center_xyz: Optional[Tuple[float, float, float]] = None
    diameter_mm: float = -1.0
    file_box: Optional[Tuple[float, ...]] = None


@dataclass
class ScanCase:
    """One scan to convert.

    Attributes:
        volume_id (str): its id in the annotation file.
        image (str): the CT (file or DICOM series folder).
        mask (str, optional): its label map (same grid).
        findings (list[BoxRow]): its rows of the box CSVs.
        patient (str, optional): its patient (default: the volume id).
    """
    volume_id: str
    image: str
    mask: Optional[str] = None
    findings: List[BoxRow] = field(default_factory=list)
    patient: Optional[str] = None


def scan_id(rel_path: str) -> str:
    """The id of a scan from its path under the scan folder: the path
    without its volume suffix, ``/``-separated (``a/b.nii.gz`` -> ``a/b``).
    """
    rel = rel_path.replace('\\', '/')
    for suffix in sorted(VOLUME_SUFFIXES, key=len, reverse=True):
        if rel.lower().endswith(suffix):
            return rel[:-len(suffix)]
    return rel


def read_box_table(path: str, box_format: str, ignore: bool = False
                   ) -> Dict[str, List[BoxRow]]:
    """The findings of a box CSV by scan id (file order kept).

    Args:
        path (str): the CSV (columns: :data:`BOX_COLUMNS`).
        box_format (str): ``world``, ``recist`` or ``voxel``.
        ignore (bool): the rows are excluded findings (repeats allowed).

    Returns:
        dict[str, list[BoxRow]]: scan id -> its findings.

    Raises:
        ValueError: one line naming the file, the line and the field.
    """
    columns = BOX_COLUMNS[box_format]
    what = f'{box_format} boxes'
    if osp.exists(path):  # (a missing file is named by the reader)
        check_csv_delimiter(path, read_csv_text(path, f'{what} CSV'), what)
    ids, values = _read_table(path, columns, what, ignore)
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
            if box_format == 'recist' and not 0 < v[4] <= v[3]:
                raise ValueError(
                    f"{finding.where}: field 'short_axis_mm' must be in (0, "
                    f'long_axis_mm], got {v[4]} (long {v[3]})')
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


def _file_box_entry(volume: CTVolume, finding: BoxRow) -> dict:
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
    return dict(
        bbox=bbox,
        center_world=box_center_world(volume, bbox),
        diameter_mm=float(np.max((hi - lo) * volume.spacing_zyx)),
        label=0, ignore=finding.ignore)


def finding_entry(volume: CTVolume, finding: BoxRow) -> dict:
    """The annotation of a finding on its scan (with ``slice_boxes`` for
    the 2D export where the box is a sphere's).

    Raises:
        ValueError: a lesion without a positive diameter, or outside the
            scan, naming the file and the row.
    """
    if finding.file_box is not None:
        return _file_box_entry(volume, finding)
    diameter = finding.diameter_mm
    if diameter <= 0 and not finding.ignore:
        raise ValueError(f"{finding.where}, field 'diameter_mm': a nodule "
                         f'needs a positive diameter, got {diameter}')
    box_d = diameter if diameter > 0 else UNKNOWN_DIAMETER_MM
    c = volume.world_to_voxel(finding.center_xyz)[0]
    _outside(finding.where, volume, c, c)
    bbox = box_from_world_sphere(volume, finding.center_xyz, box_d)
    return dict(
        bbox=bbox,
        center_world=box_center_world(volume, bbox),
        diameter_mm=float(diameter),
        label=0,
        ignore=finding.ignore,
        slice_boxes=sphere_slice_boxes(volume, finding.center_xyz, box_d))


def header_facts(volume: CTVolume) -> Tuple[str, Optional[str]]:
    """The stored orientation code (e.g. ``'LPS'``, ``'RAS'``) of a scan's
    file before it was made canonical, and its DICOM PatientID (None
    where it has none)."""
    reader = read_header(volume.meta.get('first_file') or volume.meta['path'])
    code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
        reader.GetDirection())
    return code, dicom_tag(reader, '0010|0020') or None

