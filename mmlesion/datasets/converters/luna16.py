# Copyright (c) mmlesion contributors. All rights reserved.
"""LUNA16 (Setio et al., MedIA 2017): scans + official CSVs -> boxes.

Input, as released (https://luna16.grand-challenge.org/Data/)::

    LUNA16/
        subset0/ ... subset9/        <seriesuid>.mhd + <seriesuid>.raw
        annotations.csv              seriesuid,coordX,coordY,coordZ,diameter_mm
        annotations_excluded.csv     same columns; diameter -1 = unknown
        seriesuids.csv               one seriesuid per line, no header

World coordinates (mm) are SimpleITK physical points of the .mhd, so a
nodule's box is centred on ``world_to_voxel(coord)`` with an extent of
``diameter / spacing`` voxels per axis (the bounding cube of the sphere).
Findings of ``annotations_excluded.csv`` become ``ignore: true`` entries;
an unknown diameter (-1) keeps ``diameter_mm: -1`` but gets the 10 mm box
the official evaluation script uses for the hit test.
"""
import csv
import glob
import math
import os.path as osp
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from mmengine.logging import print_log

from ..volumes import box_center_world, box_from_world_sphere, load_ct_volume
from .common import ConvertedVolume, relative_file, run_conversion
from .deeplesion_export import DeepLesionExporter, sphere_slice_boxes

#: Header of annotations.csv / annotations_excluded.csv / candidates.
LUNA16_COLUMNS = ('seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm')

#: Diameter the official script uses for excluded findings of unknown size.
UNKNOWN_DIAMETER_MM = 10.0


@dataclass(frozen=True)
class LunaFinding:
    """One row of ``annotations.csv`` or ``annotations_excluded.csv``."""
    row: int
    seriesuid: str
    coord_xyz: tuple
    diameter_mm: float


def read_luna16_csv(path: str,
                    columns: Sequence[str] = LUNA16_COLUMNS,
                    allow_unknown_diameter: bool = True
                    ) -> List[LunaFinding]:
    """Read ``annotations.csv`` / ``annotations_excluded.csv``.

    Args:
        path (str): the CSV.
        columns (sequence[str]): the expected header (the last column is
            read as the diameter, e.g. ``probability`` for candidates).
        allow_unknown_diameter (bool): accept negative diameters (-1 =
            unknown, as in the excluded list).

    Returns:
        list[LunaFinding]: in file order; ``row`` = line number (header 1).

    Raises:
        ValueError: naming the file, row and field of a bad value.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'LUNA16 CSV not found: {path}')
    out = []
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header != list(columns):
            raise ValueError(f'{path}: row 1 (header): expected columns '
                             f'{list(columns)}, got {header}')
        for values in reader:
            row = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(columns):
                raise ValueError(f'{path}: row {row}: expected '
                                 f'{len(columns)} fields, got {len(values)}')
            uid = values[0].strip()
            if not uid:
                raise ValueError(f"{path}: row {row}, field '{columns[0]}': "
                                 f'empty')
            nums = []
            for name, text in zip(columns[1:], values[1:]):
                try:
                    v = float(text)
                except ValueError:
                    v = float('nan')
                if not math.isfinite(v):
                    raise ValueError(f"{path}: row {row}, field '{name}': "
                                     f'expected a number, got {text!r}')
                nums.append(v)
            if nums[3] <= 0 and not (allow_unknown_diameter and nums[3] < 0):
                raise ValueError(f"{path}: row {row}, field '{columns[4]}': "
                                 f'expected a positive diameter, got '
                                 f'{values[4]!r}')
            out.append(LunaFinding(row, uid, tuple(nums[:3]), nums[3]))
    return out


def read_seriesuids(path: str) -> List[str]:
    """Read ``seriesuids.csv`` (one UID per line, no header).

    Raises:
        ValueError: naming the file and row of a line that is not one UID
            or of a duplicated UID.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'LUNA16 seriesuids file not found: {path}')
    uids: Dict[str, int] = OrderedDict()
    with open(path, newline='', encoding='utf-8-sig') as f:
        for row, line in enumerate(f, start=1):
            uid = line.strip()
            if not uid:
                continue
            if ',' in uid or ' ' in uid:
                raise ValueError(f'{path}: row {row}: expected one series '
                                 f'UID per line, got {uid!r}')
            if uid in uids:
                raise ValueError(f'{path}: row {row}: series {uid} already '
                                 f'on row {uids[uid]}')
            uids[uid] = row
    return list(uids)


def group_by_series(findings: List[LunaFinding]
                    ) -> Dict[str, List[LunaFinding]]:
    """Findings grouped by ``seriesuid`` (file order kept)."""
    out: Dict[str, List[LunaFinding]] = OrderedDict()
    for f in findings:
        out.setdefault(f.seriesuid, []).append(f)
    return out


def find_luna16_scans(scan_root: str) -> Dict[str, str]:
    """``seriesuid -> .mhd path`` for every .mhd under ``scan_root``.

    Raises:
        ValueError: if one series UID is found twice.
    """
    scans: Dict[str, str] = {}
    for path in sorted(
            glob.glob(osp.join(scan_root, '**', '*.mhd'), recursive=True)):
        uid = osp.basename(path)[:-4]
        if uid in scans:
            raise ValueError(f'series {uid} found twice: {scans[uid]} and '
                             f'{path}')
        scans[uid] = path
    return scans


def _finding_entry(volume, finding: LunaFinding, ignore: bool,
                   csv_path: str) -> dict:
    diameter = finding.diameter_mm
    box_d = diameter if diameter > 0 else UNKNOWN_DIAMETER_MM
    c = volume.world_to_voxel(finding.coord_xyz)[0]
    if not all(-0.5 <= c[i] <= volume.shape_zyx[i] - 0.5 for i in range(3)):
        raise ValueError(
            f'{csv_path}: row {finding.row}, fields coordX/coordY/coordZ: '
            f'{finding.coord_xyz} lies outside scan {finding.seriesuid} '
            f'({volume.meta["path"]}, voxel (z, y, x) '
            f'{tuple(round(v, 1) for v in c)} of {volume.shape_zyx})')
    bbox = box_from_world_sphere(volume, finding.coord_xyz, box_d)
    return dict(
        bbox=bbox,
        center_world=box_center_world(volume, bbox),
        diameter_mm=float(diameter),
        label=0,
        ignore=ignore,
        slice_boxes=sphere_slice_boxes(volume, finding.coord_xyz, box_d))


def convert_luna16(scan_root: str,
                   annotations: str,
                   out_file: str,
                   excluded: Optional[str] = None,
                   seriesuids: Optional[str] = None,
                   exporter: Optional[DeepLesionExporter] = None,
                   val_fraction: float = 0.0,
                   test_fraction: float = 0.0,
                   overwrite: bool = False,
                   show_progress: bool = True) -> dict:
    """Convert LUNA16 to the common annotation file (and 2D export).

    Args:
        scan_root (str): folder searched recursively for ``<uid>.mhd``.
        annotations (str): ``annotations.csv``.
        out_file (str): output JSON (scan paths relative to its folder).
        excluded (str, optional): ``annotations_excluded.csv``.
        seriesuids (str, optional): ``seriesuids.csv``: only these scans
            (every one must be under ``scan_root``); default: every scan
            found.
        exporter (DeepLesionExporter, optional): also write the 2D export.
        val_fraction (float): share of scans in the val split (2D export).
        test_fraction (float): share of scans in the test split.
        overwrite (bool): replace existing outputs.
        show_progress (bool): progress bar.

    Returns:
        dict: counts (see :func:`run_conversion`).
    """
    nodules = group_by_series(read_luna16_csv(annotations))
    ignored = group_by_series(read_luna16_csv(excluded)) if excluded else {}
    scans = find_luna16_scans(scan_root)
    if seriesuids:
        uids = read_seriesuids(seriesuids)
        missing = [u for u in uids if u not in scans]
        if missing:
            raise FileNotFoundError(
                f'{seriesuids}: {len(missing)} of {len(uids)} series have '
                f'no <uid>.mhd under {scan_root}, e.g. {missing[:3]}')
    else:
        uids = list(scans)
    if not uids:
        raise FileNotFoundError(f'no .mhd scans under {scan_root}')
    absent = [u for u in nodules if u not in scans]
    if absent:
        print_log(
            f'LUNA16: {len(absent)} annotated series of {annotations} are '
            f'not under {scan_root} (not converted)',
            logger='current')

    def convert(uid: str) -> ConvertedVolume:
        volume = load_ct_volume(scans[uid], series_uid=uid)
        lesions = [
            _finding_entry(volume, f, False, annotations)
            for f in nodules.get(uid, [])
        ] + [
            _finding_entry(volume, f, True, excluded)
            for f in ignored.get(uid, [])
        ]
        return ConvertedVolume(volume, uid,
                               relative_file(scans[uid], out_file), lesions)

    return run_conversion(
        uids,
        convert,
        out_file,
        'luna16', ['nodule'],
        exporter=exporter,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        overwrite=overwrite,
        show_progress=show_progress)
