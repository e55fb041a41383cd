# Copyright (c) mmlesion contributors. All rights reserved.
"""What the dataset converter's steps share: the split by patient, mask
cases and the replica marker of the outputs."""
import csv
import hashlib
import io
import logging
import multiprocessing
import os
import os.path as osp
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
from mmengine.logging import print_log

from mmlesion.datasets.replica_marker import (REPLICA_FILE,
                                              find_data_replica_marker,
                                              find_replica_marker,
                                              read_replica_marker,
                                              replica_sidecar)
from mmlesion.datasets.volumes import (CTVolume, VolumeOptions,
                                       box_center_world, load_ct_volume)
from mmlesion.datasets.volumes.annotation_file import SPLIT_NAMES
from mmlesion.datasets.volumes.scan_switches import ScanChecks
from mmlesion.utils.input_files import check_csv_delimiter, read_csv_text
from mmlesion.utils.tool_defaults import tool_defaults
from mmlesion.utils.writing.atomic import atomic_write_text

from .mask_boxes import check_label_map, mask_to_boxes_3d

#: Default share of scans in the val split: LENS (Sec. VI-A) "randomly used
#: 80% of each dataset for training and 20% for validation" (LUNA, LiTS,
#: NIH-LN). No test split by default (LENS tests on DeepLesion). The
#: converter's ``--help`` shows them (``tool_defaults.json``).
DEFAULT_VAL_FRACTION = tool_defaults(__file__)['DEFAULT_VAL_FRACTION']
DEFAULT_TEST_FRACTION = tool_defaults(__file__)['DEFAULT_TEST_FRACTION']


@dataclass
class ConvertedVolume:
    """One converted scan: its volume, id, file and lesions.

    ``lesions`` are annotation dicts (``bbox``, ``center_world``,
    ``diameter_mm``, ``label``, ``ignore``) plus optional ``slice_boxes``
    for the 2D export (dropped from the annotation file).
    """
    volume: CTVolume
    volume_id: str
    file: str
    lesions: List[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def map_scans(func: Callable, jobs: list, workers: int,
              ordered: bool = True) -> Iterator:
    """``map(func, jobs)``, by a pool of ``workers`` forked processes where
    there are several of them and of the jobs (ended with the iteration)."""
    if workers < 2 or len(jobs) < 2:
        yield from map(func, jobs)
        return
    with multiprocessing.get_context('fork').Pool(min(workers,
                                                      len(jobs))) as pool:
        yield from (pool.imap if ordered else pool.imap_unordered)(func, jobs)


def hash_unit(key: str) -> float:
    """The md5 of ``key`` as a number in [0, 1)."""
    return int(hashlib.md5(str(key).encode()).hexdigest()[:12], 16) / 16**12


def assign_split(volume_id: str,
                 val_fraction: float = 0.0,
                 test_fraction: float = 0.0) -> int:
    """Deterministic ``Train_Val_Test`` split (1/2/3) of a volume id.

    The md5 of the id, as a number in [0, 1), is compared with the
    fractions, so the split of a scan never depends on which other scans
    are converted or in which order.
    """
    if val_fraction < 0 or test_fraction < 0 or \
            val_fraction + test_fraction > 1:
        raise ValueError(
            f'--val-fraction {val_fraction:g} and --test-fraction '
            f'{test_fraction:g}: each must be >= 0 and the two must add up '
            'to at most 1 (the rest is the training split)')
    u = hash_unit(volume_id)
    if u < test_fraction:
        return 3
    if u < test_fraction + val_fraction:
        return 2
    return 1


#: ``split`` values of a user's split file.
SPLIT_CODES = {'train': 1, 'val': 2, 'test': 3, '1': 1, '2': 2, '3': 3}


def read_split_file(path: str) -> Dict[str, Tuple[Optional[int],
                                                  Optional[str]]]:
    """A user's split: ``volume_id -> (split, patient_id)``.

    The CSV has a header with ``volume_id`` and ``split`` (``train``,
    ``val``, ``test`` or 1 / 2 / 3; empty: that of the patient's other
    scans, else by the patient's hash) and optionally ``patient_id``
    (empty: the volume id).

    Raises:
        ValueError: one line naming the file, the line and the field, or
            one patient on two sides (:func:`check_patient_splits`).
    """
    text = read_csv_text(path, 'split')
    check_csv_delimiter(path, text, 'split')
    rows = list(csv.reader(io.StringIO(text, newline='')))
    header = [h.strip() for h in rows[0]] if rows else []
    if 'volume_id' not in header or 'split' not in header:
        raise ValueError(f'{path} line 1: the header {header} needs the '
                         "columns 'volume_id' and 'split'")
    col = {name: header.index(name) for name in header}
    out: Dict[str, Tuple[Optional[int], Optional[str]]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(f.strip() for f in row):
            continue
        if len(row) != len(header):
            raise ValueError(f'{path} line {line}: {len(row)} fields, the '
                             f'header has {len(header)}')
        vid, split = row[col['volume_id']].strip(), row[col['split']].strip()
        if split and split.lower() not in SPLIT_CODES:
            raise ValueError(f"{path} line {line}: field 'split': {split!r} "
                             'is not train, val or test')
        if vid in out:
            raise ValueError(f"{path} line {line}: field 'volume_id': "
                             f'{vid!r} is listed twice')
        patient = row[col['patient_id']].strip() \
            if 'patient_id' in col else ''
        out[vid] = (SPLIT_CODES[split.lower()] if split else None,
                    patient or None)
    check_patient_splits(
        [(p, v, s) for v, (s, p) in out.items() if p and s], path)
    given = {p: s for s, p in out.values() if p and s}  # a patient's split
    return {v: (s or given.get(p), p) for v, (s, p) in out.items()}


def check_patient_splits(rows: Iterable[Tuple[str, str, int]],
                         where: str) -> None:
    """Refuse one patient on two sides of the split.

    Args:
        rows (iterable[tuple]): ``(patient, volume_id, split)``.
        where (str): the file named in the error.

    Raises:
        ValueError: naming the file, the patient and two of its scans.
    """
    first: Dict[str, Tuple[str, int]] = {}
    for patient, vid, split in rows:
        other, other_split = first.setdefault(patient, (vid, split))
        if other_split != split:
            raise ValueError(
                f'{where}: patient {patient!r} has scans in two splits '
                f'({other} in {SPLIT_NAMES[other_split]}, {vid} in '
                f'{SPLIT_NAMES[split]}): one patient must stay on one side')


def relative_file(path: str, out_file: str) -> str:
    """``path`` relative to the annotation file's folder where possible."""
    base = osp.dirname(osp.abspath(out_file))
    try:
        rel = osp.relpath(osp.abspath(path), base)
    except ValueError:  # another drive
        return osp.abspath(path)
    return rel


def _derived_marker_text(found: Dict[str, str], made_by: str) -> str:
    """The marker of an output made from the replica ``found``: its
    marker's lines, then where the output comes from and what made it."""
    with open(found['marker'], encoding='utf-8') as f:
        lines = [ln.replace('layout: ', 'source_layout: ', 1)
                 if ln.startswith('layout: ') else ln
                 for ln in f.read().splitlines()
                 if not ln.startswith(('derived_from: ', 'made_by: '))]
    return '\n'.join(lines + [f'derived_from: {osp.abspath(found["root"])}',
                              f'made_by: {made_by}']) + '\n'


def mark_replica_outputs(sources: Iterable[Optional[str]],
                         files: Iterable[Optional[str]] = (),
                         folders: Iterable[Optional[str]] = (),
                         made_by: str = 'a dataset converter') -> List[str]:
    """Carry the release-replica marker of a conversion's inputs to its
    outputs, so that what is made from synthetic data is still known as
    such downstream (:mod:`mmlesion.datasets.data_layout`).

    When an input lies in a replica (:func:`~mmlesion.datasets.
    replica_marker.find_data_replica_marker`), every written
    folder gets ``REPLICA.txt`` and every written file its sidecar marker
    ``<file>.REPLICA.txt``, except outputs already inside a replica; the
    marker repeats the replica's and adds ``derived_from`` and ``made_by``.
    When every input is real data, markers that an earlier conversion of a
    replica left at these outputs are removed.

    Args:
        sources (iterable[str]): the inputs (folders or files; None and
            missing paths are skipped).
        files (iterable[str]): the files written (annotation files).
        folders (iterable[str]): the folders written (e.g. 2D exports).
        made_by (str): the tool, recorded in the marker.

    Returns:
        list[str]: the markers written (or, for real data, removed).
    """
    found = next((m for m in map(find_data_replica_marker, sources)
                  if m is not None), None)  # the first input's in a replica
    targets = [(osp.join(d, REPLICA_FILE), d) for d in folders if d] + [
        (replica_sidecar(f), osp.dirname(osp.abspath(f))) for f in files if f]
    done = []
    for marker, where in targets:
        old = read_replica_marker(marker)
        ours = old is not None and 'derived_from' in old
        if found is None:
            if ours:  # made from a replica before, now from real data
                os.remove(marker)
                done.append(marker)
            continue
        if not osp.isdir(where) or (not ours and find_replica_marker(where)):
            continue  # not written, or inside a replica already
        atomic_write_text(marker, _derived_marker_text(found, made_by))
        done.append(marker)
    if done:
        print_log(f'{made_by}: replica marker '
                  f"{'written' if found else 'removed'}: {done}",
                  logger='current')
    return done


def _say_mixed_lesions(mask_path: str, volume_id: str,
                       comps: List[dict], instances: bool) -> None:
    """One warning line where the lesions a label map gives are not those
    its values suggest: a connected component holding several values
    (touching lesions of an instance map taken as one), or, with
    ``instances``, one value in several separate pieces (a class map taken
    as one lesion per value)."""
    def where(comp: dict) -> str:
        x1, y1, z1, x2, y2, z2 = comp['bbox']
        return (f'at voxel ({(x1 + x2) / 2:.0f}, {(y1 + y2) / 2:.0f}, '
                f'{(z1 + z2) / 2:.0f})')

    if instances:
        found = [f"value {c['label_values'][0]} ({c['pieces']} pieces "
                 f'{where(c)})' for c in comps if c['pieces'] > 1]
        what = ('a label value in several separate pieces, each value kept '
                'as one lesion (--instances); if a value marks a kind of '
                'tissue rather than one lesion, convert without --instances '
                '(one lesion per connected component)')
    else:
        found = ['values ' + ', '.join(map(str, c['label_values'])) + ' '
                 + where(c) for c in comps if len(c['label_values']) > 1]
        what = ('touching lesions of several label values, each component '
                'kept as one lesion; if each value is one lesion (an '
                'instance map), convert with --instances')
    if found:
        print_log(f'{mask_path} (scan {volume_id}): {what}: '
                  + '; '.join(found), logger='current',
                  level=logging.WARNING)


@dataclass(frozen=True)
class MaskLesions:
    """Which parts of a label map are lesions (:func:`convert_mask_case`).

    Args:
        labels (iterable[int], optional): label values that make up the
            lesions; None: every non-zero voxel.
        connectivity (int): see :func:`mask_to_boxes_3d`.
        min_voxels (int): smaller components are dropped.
        class_label (int): ``label`` of the lesions.
        instances (bool): an instance map: each value of ``labels`` (or
            each non-zero value) is one lesion, not each component.
    """
    labels: Optional[Iterable[int]] = None
    connectivity: int = 3
    min_voxels: int = 1
    class_label: int = 0
    instances: bool = False


def convert_mask_case(image_path: str,
                      mask_path: str,
                      out_file: str,
                      volume_id: str,
                      lesions_of: MaskLesions = MaskLesions(),
                      scan_checks: Optional[ScanChecks] = None
                      ) -> ConvertedVolume:
    """A scan and its label map -> one lesion per component of ``labels``.

    Both files are read with :func:`load_ct_volume` and must share their
    geometry.

    Args:
        image_path (str): the CT (NIfTI, .mhd, DICOM folder).
        mask_path (str): the label map.
        out_file (str): the annotation file (for the relative path).
        volume_id (str): id of the scan.
        lesions_of (MaskLesions): the labels, components and class.
        scan_checks (ScanChecks, optional): the input checks relaxed
            (:func:`load_ct_volume`'s ``scan_checks``).

    Returns:
        ConvertedVolume: with ``slice_boxes`` for the 2D export.

    Raises:
        ValueError: a label map of another geometry than its scan, or a
            float one with values between the labels
            (:func:`~.mask_boxes.check_label_map`).
    """
    labels, connectivity, min_voxels, class_label, instances = (
        lesions_of.labels, lesions_of.connectivity, lesions_of.min_voxels,
        lesions_of.class_label, lesions_of.instances)
    volume = load_ct_volume(image_path, scan_checks=scan_checks)
    seg = load_ct_volume(mask_path, scan_checks=replace(
        ScanChecks.of(scan_checks), force_ct=True),
        options=VolumeOptions(dtype=None))
    check_label_map(mask_path, seg.array)
    same = (
        seg.shape_zyx == volume.shape_zyx
        and np.allclose(seg.spacing_zyx, volume.spacing_zyx, rtol=1e-4)
        and np.allclose(seg.origin_xyz, volume.origin_xyz, atol=1e-2)
        and np.allclose(seg.direction, volume.direction, atol=1e-4))
    if not same:
        raise ValueError(
            f'{mask_path}: geometry (shape {seg.shape_zyx}, spacing '
            f'{seg.spacing_zyx}, origin {seg.origin_xyz}) differs from its '
            f'scan {image_path} (shape {volume.shape_zyx}, spacing '
            f'{volume.spacing_zyx}, origin {volume.origin_xyz})')
    lesions = []
    mask = seg.array != 0 if labels is None else np.isin(
        seg.array, list(labels))
    if not mask.any():
        print_log(f'{mask_path}: empty mask (no voxel of the labels '
                  f"{'non-zero' if labels is None else list(labels)}); its "
                  'scan is kept without lesions', logger='current',
                  level=logging.WARNING)
    mask = np.where(mask & (seg.array > 0 if instances else True),
                    seg.array, 0)
    comps = mask_to_boxes_3d(mask, volume.spacing_zyx, connectivity,
                             min_voxels, instances)
    _say_mixed_lesions(mask_path, volume_id, comps, instances)
    for comp in comps:
        lesions.append(
            dict(
                bbox=comp['bbox'],
                center_world=box_center_world(volume, comp['bbox']),
                diameter_mm=comp['diameter_mm'],
                label=class_label,
                ignore=False,
                num_voxels=comp['num_voxels'],
                slice_boxes=comp['slice_boxes']))
    return ConvertedVolume(volume, volume_id,
                           relative_file(image_path, out_file), lesions,
                           dict(mask_file=relative_file(mask_path,
                                                        out_file)))
