# Copyright (c) mmlesion contributors. All rights reserved.
"""Scans grouped into patients (DICOM PatientID, a name prefix), the split
kept whole per patient and filled on small cohorts, the printed table, and
the patient in volumes.json and DL_info.csv."""
import json
import os

import pytest
import SimpleITK as sitk

from mmlesion.apps.own_data.patient_split import (SplitRequest,
                                                  split_patients)
from mmlesion.apps.own_data.patients import (PatientRules,
                                             group_patients,
                                             patients_from_names)
from mmlesion.apps.own_data.scan_cases import ScanCase
from mmlesion.datasets.deeplesion.dl_info import parse_dl_info
from mmlesion.testing.volume_files import keep_locale, write_dicom_series
from tests.helpers.masked_scans import write_masked_scans
from tests.helpers.tool_modules import load_tool


def _studies(root, patients, studies=2, prefix='p'):
    """``root/img`` and ``root/lab``: scan ``<prefix><k>_study<j>`` for each
    of ``patients`` patients and ``studies`` studies (the masked scans of
    :func:`write_masked_scans`, renamed)."""
    n = patients * studies
    write_masked_scans(root, n=n)
    for i in range(n):
        name = f'{prefix}{i // studies}_study{i % studies + 1}.nii.gz'
        for sub in ('img', 'lab'):
            os.rename(root / sub / f'p{i}.nii.gz', root / sub / name)
    return str(root / 'img'), str(root / 'lab')


def _convert(root, *options):
    scans, masks = _studies(root, 6)
    out = root / 'volumes.json'
    assert load_tool('dataset_converters/convert_dataset.py').main(
        [scans, masks, '--out', str(out), '--export-2d', str(root / '2d'),
         '--negatives-per-key', '0', *options]) == 0
    return json.load(open(out)), parse_dl_info(str(root / '2d' /
                                                   'DL_info.csv'))


def test_twelve_studies_of_six_patients(tmp_path, log_messages):
    """The page's first command (no patient option): the patients are found
    in the names, no patient on two sides, every split filled, the patient
    in volumes.json and in DL_info's Patient_index, and the table."""
    data, rows = _convert(tmp_path, '--test-fraction', '0.2')
    vols = data['volumes']
    assert [v['patient_id'] for v in vols] == [f'p{i // 2}'
                                               for i in range(12)]
    sides = {}
    for v in vols:
        sides.setdefault(v['patient_id'], set()).add(v['split'])
    assert all(len(s) == 1 for s in sides.values()), sides
    assert sorted({s for (s, ) in sides.values()}) == [1, 2, 3]
    assert any('p0_study1 -> p0' in m for m in log_messages)
    # DL_info: one Patient_index per patient, its scans studies 1 and 2
    series = json.load(open(tmp_path / '2d' / 'series_map.json'))
    patient_of = {v['id']: v['patient_id'] for v in vols}
    index = {}
    for s in series:
        number, study, _ = map(int, s['series'].split('_'))
        index.setdefault(patient_of[s['volume_id']], set()).add(number)
        assert study == int(s['volume_id'][-1])
    assert all(len(n) == 1 for n in index.values()) and len(index) == 6
    split_of = {v['id']: v['split'] for v in vols}
    by_series = {s['series']: s['volume_id'] for s in series}
    for r in rows:
        assert r.split == split_of[by_series[r.series_name]]
    # the table: patients, scans and lesions per split (2 lesions a scan)
    table = next(m for m in log_messages if 'per split' in m)
    for code, name in ((1, 'train'), (2, 'val'), (3, 'test')):
        mine = [v for v in vols if v['split'] == code]
        line = f'{name:<6}{len({v["patient_id"] for v in mine}):>10}' \
            f'{len(mine):>8}{2 * len(mine):>9}'
        assert line in table.splitlines(), table


def test_patients_by_dicom_patient_id(tmp_path, log_messages):
    """DICOM series named without a pattern: the PatientID groups them."""
    cases = []
    for name, patient in (('x', 'A'), ('y', 'B'), ('z', 'A'), ('w', 'B')):
        folder = tmp_path / name
        write_dicom_series(str(folder), f'1.2.3.{len(cases) + 1}')
        for path in folder.iterdir():  # stamp the PatientID on each file
            with keep_locale():
                img = sitk.ReadImage(str(path))
                img.SetMetaData('0010|0020', patient)
                writer = sitk.ImageFileWriter()
                writer.KeepOriginalImageUIDOn()
                writer.SetFileName(str(path))
                writer.Execute(img)
        cases.append(ScanCase(name, str(folder)))
    cases.append(ScanCase('v', str(tmp_path / 'v.nii.gz')))  # no DICOM
    write_masked_scans(tmp_path / 'n', n=1)
    cases[-1].image = str(tmp_path / 'n' / 'img' / 'p0.nii.gz')
    rule = group_patients(cases, PatientRules())
    assert [c.patient for c in cases] == ['A', 'B', 'A', 'B', 'v']
    assert 'DICOM PatientID (4 scans)' in rule
    assert 'one patient per scan (1 scan)' in rule
    with pytest.raises(ValueError, match=r'p0\.nii\.gz: no DICOM PatientID'):
        group_patients(cases, PatientRules(patient_from_dicom=True))


def test_patients_from_names():
    ids = [f'p{k:02d}_study{j}' for k in range(4) for j in (1, 2)]
    assert patients_from_names(ids) == {i: i[:3] for i in ids}
    # a folder per patient, the study in it; a patient with one scan
    ids = ['a/ct1', 'a/ct2', 'b/ct1', 'c/ct1', 'c/ct2']
    assert patients_from_names(ids) == {i: i[0] for i in ids}
    # numbered scans, or two numbered series: no patients in the names
    assert patients_from_names([f'ct_{i:03d}' for i in range(6)]) is None
    assert patients_from_names(
        [f'{o}_{i:03d}' for o in ('kidney', 'liver') for i in range(4)]
    ) is None
    assert patients_from_names(['scan1', 'scan2']) is None


def test_no_patient_found_warns(tmp_path, log_messages):
    write_masked_scans(tmp_path, n=3)
    cases = [ScanCase(f'p{i}', str(tmp_path / 'img' / f'p{i}.nii.gz'))
             for i in range(3)]
    group_patients(cases, PatientRules())
    assert [c.patient for c in cases] == ['p0', 'p1', 'p2']
    assert any('may land on two sides' in m and '--patient-regex' in m
               for m in log_messages)


def test_small_cohorts_fill_the_requested_splits(log_messages):
    three = ['id0', 'id1', 'id2']  # the hash puts all three in train
    assert set(split_patients(three, SplitRequest(0.0, 0.0, 'dir')
                              ).values()) == {1}
    split = split_patients(three, SplitRequest(0.0, 0.34, 'dir'))
    assert split == {'id0': 3, 'id1': 1, 'id2': 1}  # id0's hash: nearest
    assert any("patient 'id0' moved there from train" in m
               for m in log_messages)
    split = split_patients(three, SplitRequest(0.2, 0.34, 'dir'))
    assert sorted(split.values()) == [1, 2, 3]
    # deterministic, whatever the order of the patients
    assert split_patients(three[::-1], SplitRequest(0.2, 0.34, 'dir')) == \
        split
    # six patients: the default val share gets one
    six = [f'p{i}' for i in range(6)]
    assert 2 in split_patients(six, SplitRequest(0.2, 0.0, 'dir')).values()
    # too few patients for the fractions given: one line
    with pytest.raises(ValueError) as err:
        split_patients(['a', 'b'], SplitRequest(0.3, 0.34, 'dir'))
    msg = str(err.value)
    assert '\n' not in msg and msg.startswith('dir: 2 patients cannot fill')
    assert '--val-fraction 0.3' in msg or '--test-fraction 0.34' in msg
    # one patient, the default val share: train, and a warning
    assert split_patients(['a'], SplitRequest(0.2, 0.0, 'dir')) == {'a': 1}
    assert any('no val split' in m for m in log_messages)
    # the user's split is never moved
    fixed = dict.fromkeys(three, 1)
    assert split_patients(three, SplitRequest(0.2, 0.34, 'dir',
                                              fixed=fixed)) == fixed


def test_three_patients_get_a_test_scan(tmp_path):
    """The cohort of three whose --test-fraction 0.34 came out empty."""
    scans, masks = _studies(tmp_path, 3, prefix='id')
    out = tmp_path / 'v.json'
    assert load_tool('dataset_converters/convert_dataset.py').main(
        [scans, masks, '--out', str(out), '--test-fraction', '0.34',
         '--val-fraction', '0']) == 0
    splits = [v['split'] for v in json.load(open(out))['volumes']]
    assert splits == [3, 3, 1, 1, 1, 1]  # id0's two studies in test
