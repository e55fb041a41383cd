# Copyright (c) mmlesion contributors. All rights reserved.
"""``--check-only`` of the dataset converters: whether the inputs are right
and what a conversion would write, reading no voxel and writing nothing
(the presets other than LUNA16 find their cases as the conversion does).
"""
import os.path as osp
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, TypedDict

from mmlesion.evaluation.functional.luna16 import read_seriesuids_csv
from mmlesion.utils.writing.field_record import FieldRecord

from .common import SPLIT_NAMES
from .deeplesion_export import EXPORT_OUTPUTS
from .presets import find_luna16_scans
from .scan_cases import read_box_table


@dataclass(frozen=True)
class ConversionTarget:
    """What a conversion writes.

    Args:
        out_file (str): the annotation JSON.
        dataset (str): ``metainfo.dataset``.
        classes (Sequence[str]): ``metainfo.classes``.
        export_dir (str, optional): the ``--export-2d`` folder.
        overwrite (bool): whether existing outputs would be replaced.
    """
    out_file: str
    dataset: str
    classes: Sequence[str]
    export_dir: Optional[str] = None
    overwrite: bool = False


class ConversionPlan(TypedDict):
    """What a conversion would write (:func:`plan_conversion`; the JSON
    ``--check-only`` prints): ``splits`` by name, ``would_write`` the
    paths, ``existing`` those that exist, ``would_refuse`` whether the
    conversion would stop; the LUNA16 preset adds the counts of its
    :class:`LUNA16AnnotationCheck`."""
    check_only: bool
    dataset: str
    classes: List[str]
    volumes: int
    splits: Dict[str, int]
    would_write: List[str]
    existing: List[str]
    would_refuse: bool


def plan_conversion(volume_ids: Iterable[str],
                    splits: Iterable[int],
                    target: ConversionTarget,
                    **counts) -> ConversionPlan:
    """What converting ``volume_ids`` would write (nothing is written).

    Args:
        volume_ids (Iterable[str]): the volumes a conversion would write.
        splits (Iterable[int]): their splits (1 / 2 / 3, as the
            conversion assigns them).
        target (ConversionTarget): the files, dataset, classes, overwrite.
        **counts: more entries of the summary (e.g. ``nodules``).

    Returns:
        ConversionPlan: ``check_only`` True, ``counts`` added.
    """
    ids = list(volume_ids)
    splits = Counter(SPLIT_NAMES[s] for s in splits)
    outputs = [target.out_file]
    if target.export_dir:
        outputs += [osp.join(target.export_dir, name)
                    for name in EXPORT_OUTPUTS]
    existing = [p for p in outputs if osp.exists(p)]
    return ConversionPlan(
        check_only=True,
        dataset=target.dataset,
        classes=list(target.classes),
        volumes=len(ids),
        splits={name: splits.get(name, 0) for name in SPLIT_NAMES.values()},
        would_write=outputs,
        existing=existing,
        would_refuse=bool(existing) and not target.overwrite,
        **counts)


@dataclass
class LUNA16AnnotationCheck(FieldRecord):
    """What :func:`check_luna16_annotations` found.

    Args:
        volume_ids (list[str]): those of ``seriesuids.csv``, else the scans
            found, else the annotated series.
        nodules (int): annotated nodules.
        excluded_findings (int): excluded findings.
        series_with_nodules (int): volumes with a nodule.
        series_without_nodules (int): volumes without one.
        scans_checked (bool): the scan folder held scans.
        missing_scans (list[str]): listed series without a ``<uid>.mhd``.
    """
    volume_ids: List[str]
    nodules: int
    excluded_findings: int
    series_with_nodules: int
    series_without_nodules: int
    scans_checked: bool
    missing_scans: List[str]


def check_luna16_annotations(annotations: str,
                             excluded: Optional[str] = None,
                             seriesuids: Optional[str] = None,
                             scan_root: Optional[str] = None
                             ) -> LUNA16AnnotationCheck:
    """Validate the LUNA16 annotation files without the scans.

    Args:
        annotations (str): ``annotations.csv``.
        excluded (str, optional): ``annotations_excluded.csv``.
        seriesuids (str, optional): ``seriesuids.csv``; every annotated or
            excluded series must be listed in it.
        scan_root (str, optional): the scan folder; where it holds scans,
            the listed series without a ``<uid>.mhd`` are reported.

    Returns:
        LUNA16AnnotationCheck: the volumes, counts and missing scans.

    Raises:
        ValueError: a bad row (named by the reader), or an annotated series
            missing from ``seriesuids.csv`` (file, row, field and uid).
    """
    nodules = read_box_table(annotations, 'world')
    ignored = read_box_table(excluded, 'world', True) if excluded else {}
    listed: Optional[List[str]] = None
    if seriesuids:
        listed = read_seriesuids_csv(seriesuids)
        for uid, items in list(nodules.items()) + list(ignored.items()):
            if uid not in set(listed):
                raise ValueError(
                    f"{items[0].where}: field 'seriesuid' is not in "
                    f'{seriesuids} ({len(listed)} series)')
    # a folder without any .mhd (e.g. only the CSVs) counts as "no scans"
    scans = (find_luna16_scans(scan_root)
             if scan_root and osp.isdir(scan_root) else {})
    scans_checked = bool(scans)
    if listed is not None:
        volume_ids = listed
    elif scans_checked:
        volume_ids = list(scans)
    else:
        volume_ids = list(dict.fromkeys(list(nodules) + list(ignored)))
    missing = [u for u in volume_ids if scans_checked and u not in scans]
    with_nodules = sum(1 for u in volume_ids if u in nodules)
    return LUNA16AnnotationCheck(
        volume_ids, sum(len(v) for v in nodules.values()),
        sum(len(v) for v in ignored.values()), with_nodules,
        len(volume_ids) - with_nodules, scans_checked, missing)


def format_plan(plan: dict) -> str:
    """The plan of :func:`plan_conversion` as lines for the console.

    Args:
        plan (dict): the plan.

    Returns:
        str: volumes per split, classes, counts, the files and a warning
        line when the conversion would refuse existing outputs.
    """
    splits = ', '.join(f'{k} {v}' for k, v in plan['splits'].items())
    lines = [
        f"check only ({plan['dataset']}): inputs are valid; nothing was "
        'written',
        f"  {plan['volumes']} volumes ({splits}), classes {plan['classes']}"
    ]
    skip = {'check_only', 'dataset', 'classes', 'volumes', 'splits',
            'would_write', 'existing', 'would_refuse'}
    counts = {k: v for k, v in plan.items() if k not in skip}
    missing = counts.pop('missing_scans', None)
    if counts:
        lines.append('  ' + ', '.join(f'{k} {v}' for k, v in counts.items()))
    if missing:
        lines.append(f'  {len(missing)} listed scans have no <uid>.mhd, '
                     f'e.g. {missing[:3]}')
    lines.append('  would write: ' + ', '.join(plan['would_write']))
    if plan['existing']:
        lines.append('  exist already: ' + ', '.join(plan['existing']) + (
            ' (the conversion would stop: pass --overwrite)'
            if plan['would_refuse'] else ' (would be replaced)'))
    return '\n'.join(lines)
