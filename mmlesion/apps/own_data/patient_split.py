# Copyright (c) mmlesion contributors. All rights reserved.
"""The converter's train / val / test split of patients, its table and the
file listing every scan's side (:func:`write_split_table`).

Each patient goes where the md5 of its id falls (:func:`~.common.
assign_split`), so its split does not depend on the other patients; a
requested split the hash leaves empty on a small cohort is filled by
:func:`split_patients`. Patients whose split the user's split file gives
are never moved.
"""
import csv
import io
import logging
import os.path as osp
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

from mmlesion.utils.writing.atomic import atomic_write_text

from .common import (DEFAULT_TEST_FRACTION, DEFAULT_VAL_FRACTION,
                     SPLIT_NAMES, assign_split, hash_unit)


@dataclass
class SplitRequest:
    """The shares asked for and where the patients come from.

    Attributes:
        val_fraction (float): share of patients in val.
        test_fraction (float): share of patients in test.
        where (str): the input named in the messages (the scan folder).
        fixed (dict): ``patient -> split`` the user's split file gives.
    """
    val_fraction: float
    test_fraction: float
    where: str
    fixed: Optional[Dict[str, int]] = None


def _distance(u: float, lo: float, hi: float) -> float:
    return 0.0 if lo <= u < hi else min(abs(u - lo), abs(u - hi))


def split_patients(patients: Sequence[str],
                   request: SplitRequest) -> Dict[str, int]:
    """The split (1 train, 2 val, 3 test) of each patient.

    Each patient goes where its hash falls. A split with a share (train:
    what val and test leave) that got no patient is then given one, in
    the order train, the splits whose fraction was given, those at their
    default share (:data:`~.common.DEFAULT_VAL_FRACTION`): the patient
    whose hash lies nearest to its share, from a split that keeps one (or
    from a split later in that order). A split that
    cannot get one stops the conversion (train, or a share other than the
    default), or stays empty with a warning (a default share).

    Args:
        patients (sequence[str]): the patient ids (repeats allowed).
        request (SplitRequest): fractions and fixed splits.

    Returns:
        dict[str, int]: patient -> split.

    Raises:
        ValueError: bad fractions, or fewer patients than the given
            fractions need (one line: the scan folder, the split left
            empty, what to change).
    """
    v, t = request.val_fraction, request.test_fraction
    given = {2: v != DEFAULT_VAL_FRACTION, 3: t != DEFAULT_TEST_FRACTION}
    fixed = request.fixed or {}
    order = list(dict.fromkeys(patients))
    split = {p: fixed.get(p) or assign_split(p, v, t) for p in order}
    free = [p for p in order if not fixed.get(p)]
    shares = {3: (0.0, t), 2: (t, t + v), 1: (t + v, 1.0)}
    option = {2: f'--val-fraction {v:g}', 3: f'--test-fraction {t:g}',
              1: f'--val-fraction {v:g} and --test-fraction {t:g}'}
    wanted = sorted((s for s in shares if shares[s][1] - shares[s][0] >
                     1e-9), key=lambda s: (s != 1, not given.get(s), s))
    for rank, s in enumerate(wanted):
        counts = Counter(split.values())
        if counts[s]:
            continue
        donors = [p for p in free if split[p] != s and (
            split[p] not in wanted or counts[split[p]] > 1
            or wanted.index(split[p]) > rank)]
        name = SPLIT_NAMES[s]
        if not donors:
            if not free:  # every patient's split is the user's
                print_log(f'{request.where}: the split file leaves the '
                          f'{name} split empty ({option[s]} applies to '
                          'unlisted scans only)', logger='current',
                          level=logging.WARNING)
                continue
            if s == 1 or given[s]:
                names = ', '.join(SPLIT_NAMES[r] for r in sorted(wanted))
                raise ValueError(
                    f'{request.where}: {len(order)} patient'
                    f'{"s" * (len(order) != 1)} cannot fill {names} (one '
                    f'patient each at least): the {name} split of '
                    f'{option[s]} would be empty; convert more patients or '
                    'set that fraction to 0')
            print_log(f'{request.where}: no {name} split: {len(order)} '
                      f'patient{"s" * (len(order) != 1)} (the default '
                      f'{option[s]} needs one more); without a {name} '
                      'split there is no validation during training (give '
                      f'{option[s].split()[0]} 0 to say so)',
                      logger='current', level=logging.WARNING)
            continue
        lo, hi = shares[s]
        moved = min(donors, key=lambda p: (_distance(hash_unit(p), lo, hi),
                                           p))
        print_log(f'{request.where}: the hash of the patient ids left the '
                  f'{name} split empty ({option[s]}); patient {moved!r} '
                  f'moved there from {SPLIT_NAMES[split[moved]]}',
                  logger='current')
        split[moved] = s
    return split


def split_counts(rows: Iterable[Tuple[str, int, int]]
                 ) -> Dict[str, Dict[str, int]]:
    """Patients, scans and lesions per split.

    Args:
        rows (iterable[tuple]): ``(patient, split, lesions)`` per scan.

    Returns:
        dict: ``{'train': {'patients': .., 'scans': .., 'lesions': ..},
        'val': .., 'test': ..}``.
    """
    out = {name: dict(patients=set(), scans=0, lesions=0)
           for name in SPLIT_NAMES.values()}
    for patient, split, lesions in rows:
        cell = out[SPLIT_NAMES[split]]
        cell['patients'].add(patient)
        cell['scans'] += 1
        cell['lesions'] += lesions
    for cell in out.values():
        cell['patients'] = len(cell['patients'])
    return out


def format_split_table(counts: Dict[str, Dict[str, int]]) -> str:
    """The counts of :func:`split_counts` as a text table."""
    lines: List[str] = [f'{"split":<6}{"patients":>10}{"scans":>8}'
                        f'{"lesions":>9}']
    for name, cell in counts.items():
        lines.append(f'{name:<6}{cell["patients"]:>10}{cell["scans"]:>8}'
                     f'{cell["lesions"]:>9}')
    return '\n'.join(lines)


def split_table_path(out_file: str) -> str:
    """Where the converter lists every scan's side: ``<stem>.split.csv``
    beside the annotation file."""
    return osp.splitext(out_file)[0] + '.split.csv'


def write_split_table(out_file: str,
                      rows: Iterable[Tuple[str, str, int]]) -> str:
    """Write every scan's patient and split beside the annotation file in
    the split-file format (``volume_id,split,patient_id``: ``--split-file``
    takes it back) and say the held-out patients in one line.

    Args:
        out_file (str): the annotation file.
        rows (iterable[tuple]): ``(volume_id, patient, split)`` per scan.

    Returns:
        str: the line (the held-out patients of val and test, and the
        file).
    """
    rows = sorted(rows, key=lambda r: (r[2], r[1], r[0]))
    path = split_table_path(out_file)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(['volume_id', 'split', 'patient_id'])
    writer.writerows([vid, SPLIT_NAMES[split], patient]
                     for vid, patient, split in rows)
    atomic_write_text(path, buf.getvalue())
    held = []
    for code in (3, 2):
        patients = sorted({p for _, p, s in rows if s == code})
        if patients:
            shown = ', '.join(patients[:20]) + (
                f' and {len(patients) - 20} more' if len(patients) > 20
                else '')
            held.append(f'{SPLIT_NAMES[code]}: {shown}')
    return ('held-out patients: ' + ('; '.join(held) or 'none')
            + f' (every scan\'s split and patient: {path})')
