# Copyright (c) mmlesion contributors. All rights reserved.
"""Which patient each scan of a conversion belongs to, so that the split
keeps a patient's scans on one side. The rules, in order, are
``data/README.md``'s (patients and split); :func:`group_patients` sets
``ScanCase.patient`` and prints the rule used.
"""
import logging
import os.path as osp
import re
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from mmengine.logging import print_log

from mmlesion.datasets.volumes.loading import (dicom_tag, list_dicom_series,
                                               read_header)

from .scan_cases import ScanCase

#: Separators of the parts of a scan name (:func:`patients_from_names`).
NAME_SEPARATORS = r'[/_.\-]'


@dataclass
class PatientRules:
    """What may name the patients (the converter's options).

    Attributes:
        patient_regex (str, optional): the first group (or the group
            ``patient``) of this regex on the scan id.
        patient_from_dicom (bool): every scan must have a DICOM PatientID.
        split_table (dict): the split file's ``volume_id -> (split,
            patient)``.
        split_file (str, optional): its path (for the errors).
        infer (bool): take the DICOM PatientID where there is one and look
            for the patient in the scan names (the ``folder`` preset; a
            public release's preset has one scan per patient).
    """
    patient_regex: Optional[str] = None
    patient_from_dicom: bool = False
    split_table: Optional[dict] = None
    split_file: Optional[str] = None
    infer: bool = True

    def __post_init__(self) -> None:
        if self.patient_regex is not None:
            try:
                re.compile(self.patient_regex)
            except re.error as err:
                raise ValueError(
                    f'--patient-regex {self.patient_regex!r} is not a regular'
                    f" expression ({err}); e.g. '^([^_]+)_' for the name up "
                    "to its first '_'") from None


def dicom_patient_id(image: str) -> Optional[str]:
    """The DICOM PatientID of a scan (a DICOM series folder or a ``.dcm``
    file), read from one file's header; None for other files or where it
    is empty."""
    first = image
    if osp.isdir(image):
        series = list_dicom_series(image)
        if not series:
            return None
        import SimpleITK as sitk
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(image,
                                                              series[0])
        if not files:
            return None
        first = files[0]
    elif not image.lower().endswith('.dcm'):
        return None
    return dicom_tag(read_header(first), '0010|0020') or None


def patients_from_names(volume_ids: Sequence[str]) -> Optional[
        Dict[str, str]]:
    """Patients found in scan names, or None where the names show none.

    The patient of a name is the name up to its last separator
    (:data:`NAME_SEPARATORS`), the rest its study label. The rule is used
    only where it groups scans (fewer patients than scans, more than one
    patient) and the study labels repeat across patients (fewer distinct
    labels than patients), so that numbered scans (``ct_001``,
    ``ct_002``) or two series of numbered scans (``kidney_001``,
    ``liver_001``) are not taken for patients.

    Args:
        volume_ids (sequence[str]): the scan ids.

    Returns:
        dict[str, str] | None: scan id -> patient.
    """
    prefix, label = {}, {}
    for vid in volume_ids:
        parts = re.split(f'({NAME_SEPARATORS})', vid)
        if len(parts) < 3 or not ''.join(parts[:-2]):
            return None  # a name without a separator: no rule for all
        prefix[vid], label[vid] = ''.join(parts[:-2]), parts[-1]
    patients = set(prefix.values())
    if not 1 < len(patients) < len(volume_ids):
        return None
    if len(set(label.values())) >= len(patients):
        return None
    return prefix


def _count(n: int, noun: str) -> str:
    return f'{n} {noun}{"s" * (n != 1)}'


def _regex_patient(regex: str, case: ScanCase) -> str:
    m = re.search(regex, case.volume_id)
    if m is None:
        raise ValueError(f'{case.image}: the patient regex {regex!r} does '
                         f'not match its id {case.volume_id!r}')
    return m.groupdict().get('patient') or m.group(1 if m.re.groups else 0)


def group_patients(cases: List[ScanCase], rules: PatientRules) -> str:
    """Set the patient of every case (see the module doc) and print, in
    one line, how many patients and by which rule.

    Args:
        cases (list[ScanCase]): the scans (``patient`` is set in place).
        rules (PatientRules): the options.

    Returns:
        str: the rule(s) used, e.g. ``'DICOM PatientID'``.

    Raises:
        ValueError: one line naming the file: a scan the regex does not
            match, one without a DICOM PatientID where it is required, one
            missing from the split file.
    """
    table = rules.split_table or {}
    used = Counter()
    for case in cases:
        if rules.split_file and case.volume_id not in table:
            raise ValueError(f'{rules.split_file}: scan {case.volume_id} '
                             f'({case.image}) is not listed')
        listed = table.get(case.volume_id, (None, None))[1]
        if listed:
            case.patient, rule = listed, 'patient_id of the split file'
        elif case.rows_patient:
            case.patient = case.rows_patient
            rule = 'patient_id of the box CSV'
        elif rules.patient_regex:
            case.patient = _regex_patient(rules.patient_regex, case)
            rule = f'--patient-regex {rules.patient_regex!r}'
        elif rules.patient_from_dicom or rules.infer:
            case.patient = dicom_patient_id(case.image)
            if case.patient is None and rules.patient_from_dicom:
                raise ValueError(f'{case.image}: no DICOM PatientID '
                                 '(0010,0020) for --patient-from-dicom')
            rule = 'DICOM PatientID' if case.patient else None
        else:
            rule = None
        if rule:
            used[rule] += 1
    unknown = sorted(set(table) - {c.volume_id for c in cases})
    if rules.split_file and unknown:
        print_log(f'{rules.split_file}: {_count(len(unknown), "scan")} it '
                  f'lists not found in the scan folder (e.g. {unknown[:3]}): '
                  'not converted; check their names or files',
                  logger='current', level=logging.WARNING)
    rest = [c for c in cases if c.patient is None]
    found = patients_from_names([c.volume_id for c in rest]) \
        if rules.infer and len(rest) > 1 else None
    for case in rest:
        case.patient = found[case.volume_id] if found else case.volume_id
    if rest and found:
        example = rest[0]
        used['the scan name up to its last separator (/ _ - .), the study '
             f'labels after it repeating across patients (e.g. '
             f'{example.volume_id} -> {example.patient})'] += len(rest)
    elif rest:
        used['one patient per scan'] += len(rest)
    n = len({c.patient for c in cases})
    how = '; '.join(f'{rule} ({_count(k, "scan")})'
                    for rule, k in used.items())
    print_log(f'patients: {_count(n, "patient")} in '
              f'{_count(len(cases), "scan")}, by {how}', logger='current')
    dicom = [c.patient for c in cases if c.patient and len(cases) > 2
             and used.get('DICOM PatientID') == len(cases)]
    if dicom and len(set(dicom)) == 1:
        print_log(f'patients: all {len(cases)} scans carry the DICOM '
                  f'PatientID {dicom[0]!r} (anonymised?): one patient; give '
                  '--patient-regex or a --split-file with a patient_id '
                  'column if they are not', logger='current',
                  level=logging.WARNING)
    if rest and not found and rules.infer and len(rest) > 1:
        print_log(
            f'patients: no patient found for {len(rest)} scans (no DICOM '
            'PatientID, no name prefix shared by a patient\'s scans): each '
            'is taken as its own patient, so two scans of one patient may '
            'land on two sides of the split; give --patient-regex (e.g. '
            "'^([^_]+)_') or a --split-file with a patient_id column",
            logger='current', level=logging.WARNING)
    return how
