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
from typing import Optional

from mmengine.logging import print_log

from mmlesion.evaluation.functional.luna16 import read_seriesuids_csv
from ..volumes import box_center_world, box_from_world_sphere, load_ct_volume
from .common import (DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION,
                     ConvertedVolume, relative_file, run_conversion)
from .check_only import check_luna16_annotations, plan_conversion
from .deeplesion_export import DeepLesionExporter, sphere_slice_boxes
from .luna16_files import (  # noqa: F401  (re-exported)
    LunaFinding, find_luna16_scans, read_findings_by_series)

#: Diameter the official script uses for excluded findings of unknown size.
UNKNOWN_DIAMETER_MM = 10.0


def _finding_entry(volume, finding: LunaFinding, ignore: bool,
                   csv_path: str) -> dict:
    diameter = finding.diameter_mm
    where = (f'{csv_path}: finding {finding.index + 1} (series '
             f'{finding.seriesuid}, coordX/Y/Z {finding.coord_xyz})')
    if diameter <= 0 and not ignore:
        raise ValueError(f"{where}, field 'diameter_mm': a nodule needs a "
                         f'positive diameter, got {diameter}')
    box_d = diameter if diameter > 0 else UNKNOWN_DIAMETER_MM
    c = volume.world_to_voxel(finding.coord_xyz)[0]
    if not all(-0.5 <= c[i] <= volume.shape_zyx[i] - 0.5 for i in range(3)):
        raise ValueError(
            f'{where}: lies outside the scan {volume.meta["path"]} (voxel '
            f'(z, y, x) {tuple(round(v, 1) for v in c)} of '
            f'{volume.shape_zyx})')
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
                   val_fraction: float = DEFAULT_VAL_FRACTION,
                   test_fraction: float = DEFAULT_TEST_FRACTION,
                   overwrite: bool = False,
                   show_progress: bool = True,
                   check_only: bool = False,
                   export_dir: Optional[str] = None) -> dict:
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
        val_fraction (float): share of scans in the val split (default
            0.2, as LENS's 80 / 20 split).
        test_fraction (float): share of scans in the test split.
        overwrite (bool): replace existing outputs.
        show_progress (bool): progress bar.
        check_only (bool): only validate the annotation files (against
            ``seriesuids``, without the scans:
            :func:`~.check_only.check_luna16_annotations`) and return the
            plan (:func:`~.check_only.plan_conversion`); nothing is read
            from the scans or written.
        export_dir (str, optional): the planned 2D export (``check_only``).

    Returns:
        dict: counts (see :func:`run_conversion`), or the plan.
    """
    if check_only:
        found = check_luna16_annotations(annotations, excluded, seriesuids,
                                         scan_root)
        return plan_conversion(found.pop('volume_ids'), out_file, 'luna16',
                               ['nodule'], export_dir, val_fraction,
                               test_fraction, overwrite, **found)
    nodules = read_findings_by_series(annotations)
    ignored = read_findings_by_series(excluded, True) if excluded else {}
    scans = find_luna16_scans(scan_root)
    if seriesuids:
        uids = read_seriesuids_csv(seriesuids)
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
        show_progress=show_progress,
        sources=[scan_root, annotations, excluded, seriesuids])
