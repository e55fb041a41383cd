# Copyright (c) mmlesion contributors. All rights reserved.
"""Round 5 of malformed converter inputs: each stops in one line naming
the file or option and what to do, or is said in one line."""
import numpy as np
import pytest

from mmlesion.apps.own_data import ConvertSettings, convert_dataset
from mmlesion.apps.own_data.deeplesion_export import DeepLesionExporter
from mmlesion.apps.own_data.patients import PatientRules, group_patients
from mmlesion.apps.own_data.scan_cases import ScanCase
from mmlesion.testing.volume_files import write_volume

HEADER = 'seriesuid,coordX,coordY,coordZ,diameter_mm\n'


def _scans(tmp_path):
    img = np.full((6, 12, 12), -100, np.int16)
    img[:, 0] = -1000  # air: a CT in HU
    for name in ('a', 'b'):
        write_volume(str(tmp_path / 'img' / f'{name}.nii.gz'), img)
    return str(tmp_path / 'img')


def _error(tmp_path, **kw) -> str:
    with pytest.raises(ValueError) as err:
        convert_dataset(ConvertSettings(
            _scans(tmp_path), str(tmp_path / 'v.json'), show_progress=False,
            val_fraction=0, **kw))
    assert '\n' not in str(err.value)
    assert not (tmp_path / 'v.json').exists()
    return str(err.value)


@pytest.mark.parametrize('rows,said', [
    ('', 'no finding, only a header'),
    ('x,0,0,0,5\ny,0,0,0,5\n', "none of its 2 scan ids (e.g. ['x', 'y']) "
     "is a scan converted (e.g. ['a', 'b'])")])
def test_box_csv_that_gives_no_scan_a_lesion(tmp_path, rows, said):
    boxes = tmp_path / 'boxes.csv'
    boxes.write_text(HEADER + rows)
    msg = _error(tmp_path, boxes=str(boxes))
    assert msg.startswith(f'{boxes}: {said}: every scan would be converted '
                          'without lesions')


def test_box_outside_the_scan_named_in_plain_numbers(tmp_path):
    boxes = tmp_path / 'boxes.csv'
    boxes.write_text(HEADER + 'a,900,0,0,5\n')
    msg = _error(tmp_path, boxes=str(boxes))
    assert 'lies outside the scan' in msg and 'np.float64' not in msg


def test_patient_regex_that_is_no_regex():
    with pytest.raises(ValueError, match=r"--patient-regex '\(\[' is not a "
                       'regular expression'):
        PatientRules(patient_regex='([')


def test_split_file_naming_scans_not_found_is_said(log_messages):
    cases = [ScanCase('a', 'a.nii.gz'), ScanCase('b', 'b.nii.gz')]
    table = {'a': ('train', None), 'b': ('val', None),
             'gone': ('test', None)}
    group_patients(cases, PatientRules(split_table=table,
                                       split_file='split.csv'))
    assert any(m.startswith("split.csv: 1 scan it lists not found in the "
                            "scan folder (e.g. ['gone'])")
               for m in log_messages)


@pytest.mark.parametrize('window', [(400, -100), (0, 0), (float('nan'), 1)])
def test_export_window_reversed_or_not_finite(tmp_path, window):
    with pytest.raises(ValueError, match=r'--window .*: the DICOM window of '
                       'the 2D export must be two finite HU, the lower first'):
        DeepLesionExporter(str(tmp_path), dicom_window=window)


@pytest.mark.parametrize('val, test', [(0.7, 0.6), (-0.1, 0.2)])
def test_split_fractions_that_do_not_fit_name_the_rule(val, test):
    from mmlesion.apps.own_data.common import assign_split
    with pytest.raises(ValueError, match=r'--val-fraction .* and '
                       r'--test-fraction .*: each must be >= 0 and the two '
                       r'must add up to at most 1'):
        assign_split('a', val, test)
