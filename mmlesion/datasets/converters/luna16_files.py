# Copyright (c) mmlesion contributors. All rights reserved.
"""The LUNA16 release's files: the findings of its CSVs and its scans.

Read by the conversion (:mod:`.luna16`) and by ``--check-only``
(:mod:`.check_only`, which :mod:`.luna16` imports): a module of its own so
that those two do not import each other.
"""
import glob
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, NamedTuple

from mmlesion.evaluation.functional.luna16 import read_findings_csv


class LunaFinding(NamedTuple):
    """One finding of a LUNA16 CSV (``index`` = its place among the rows)."""
    index: int
    seriesuid: str
    coord_xyz: tuple
    diameter_mm: float


def read_findings_by_series(path: str, allow_duplicates: bool = False
                            ) -> Dict[str, List[LunaFinding]]:
    """Findings of ``annotations.csv`` / ``annotations_excluded.csv`` by
    series (file order kept), read with the evaluator's reader
    (:func:`mmlesion.evaluation.functional.luna16.read_findings_csv`;
    ``allow_duplicates`` for the excluded findings, which repeat rows)."""
    table = read_findings_csv(path, allow_duplicates)
    out: Dict[str, List[LunaFinding]] = OrderedDict()
    for i, (uid, xyz, d) in enumerate(
            zip(table.seriesuids, table.xyz, table.diameter_mm)):
        out.setdefault(uid, []).append(
            LunaFinding(i, uid, tuple(float(v) for v in xyz), float(d)))
    return out


#: The release's folder of lung masks (not scans).
LUNG_MASK_FOLDER = 'seg-lungs-LUNA16'


def find_luna16_scans(scan_root: str) -> Dict[str, str]:
    """``seriesuid -> .mhd path`` for every .mhd under ``scan_root``.

    The release's lung masks (``seg-lungs-LUNA16/<seriesuid>.mhd``, the
    same names as the scans) are not scans: any folder of that name is
    skipped, so the release can be converted as it unpacks.

    Raises:
        ValueError: if one series UID is found twice.
    """
    scans: Dict[str, str] = {}
    for path in sorted(
            glob.glob(osp.join(scan_root, '**', '*.mhd'), recursive=True)):
        parts = osp.relpath(path, scan_root).split(os.sep)
        if LUNG_MASK_FOLDER in parts[:-1]:
            continue
        uid = osp.basename(path)[:-4]
        if uid in scans:
            raise ValueError(f'series {uid} found twice: {scans[uid]} and '
                             f'{path}')
        scans[uid] = path
    return scans
