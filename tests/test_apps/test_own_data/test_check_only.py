# Copyright (c) mmlesion contributors. All rights reserved.
"""``--check-only`` of the converters, and the class name of the labels."""
import csv
import json

import numpy as np
import pytest

from mmlesion.apps.own_data.check_only import (ConversionTarget,
                                              plan_conversion)
from mmlesion.apps.own_data.common import assign_split
from mmlesion.apps.own_data.presets import PRESETS
from tests.helpers.tool_modules import load_tool
from mmlesion.testing.volume_files import write_volume

UID_A = '1.3.6.1.4.1.14519.5.2.1.6279.6001.111'
UID_B = '1.3.6.1.4.1.14519.5.2.1.6279.6001.222'
HEADER = ('seriesuid', 'coordX', 'coordY', 'coordZ', 'diameter_mm')


def run_tool(name, argv, capsys):
    status = load_tool(f'dataset_converters/{name}.py').main(argv)
    out, err = capsys.readouterr()
    summary = (json.loads(out.split('summary json: ')[1])
               if 'summary json: ' in out else None)
    return status, summary, out, err


def _csv(path, rows, header=HEADER):
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return str(path)


@pytest.fixture
def luna_csvs(tmp_path):
    """The LUNA16 CSVs alone: no scan anywhere."""
    return dict(
        annotations=_csv(tmp_path / 'annotations.csv',
                         [[UID_A, -80., -50., -270., 8.]]),
        excluded=_csv(tmp_path / 'annotations_excluded.csv',
                      [[UID_A, -70., -60., -290., -1],
                       [UID_B, -90., -60., -285., 3.5]]),
        seriesuids=_csv(tmp_path / 'seriesuids.csv', [[UID_A], [UID_B]],
                        header=()))


def _luna_argv(csvs, scan_root, out, *extra):
    return [
        str(scan_root), '--annotations', csvs['annotations'], '--excluded',
        csvs['excluded'], '--seriesuids', csvs['seriesuids'], '--out',
        str(out), '--check-only', *extra
    ]


def test_luna16_check_only_without_scans(luna_csvs, tmp_path, capsys):
    out = tmp_path / 'out' / 'luna16.json'
    export = tmp_path / 'luna16_2d'
    status, plan, printed, err = run_tool(
        'luna16',
        _luna_argv(luna_csvs, tmp_path / 'no_scans', out, '--export-2d',
                   str(export)), capsys)
    assert status == 0, err
    assert plan['check_only'] and plan['dataset'] == 'luna16'
    assert (plan['volumes'], plan['nodules'], plan['excluded_findings'],
            plan['series_with_nodules'],
            plan['series_without_nodules']) == (2, 1, 2, 1, 1)
    assert sum(plan['splits'].values()) == 2
    assert plan['scans_checked'] is False and plan['missing_scans'] == []
    assert plan['would_write'][0] == str(out)
    assert str(export / 'DL_info.csv') in plan['would_write']
    assert 'nothing was written' in printed
    # nothing written, no folder made
    assert not out.parent.exists() and not export.exists()


def test_luna16_check_only_finds_unlisted_series_and_missing_scans(
        luna_csvs, tmp_path, capsys):
    # a scan folder with scan A only: B is reported missing
    write_volume(str(tmp_path / 'scans' / 'subset0' / f'{UID_A}.mhd'),
                 np.full((4, 8, 8), -900, np.int16))
    status, plan, printed, _ = run_tool(
        'luna16', _luna_argv(luna_csvs, tmp_path / 'scans',
                             tmp_path / 'a.json'), capsys)
    assert status == 0
    assert plan['scans_checked'] and plan['missing_scans'] == [UID_B]
    assert '1 listed scans have no <uid>.mhd' in printed
    # an annotated series that seriesuids.csv does not list: named
    _csv(luna_csvs['seriesuids'], [[UID_A]], header=())
    status, _, _, err = run_tool(
        'luna16', _luna_argv(luna_csvs, tmp_path / 'scans',
                             tmp_path / 'a.json'), capsys)
    assert status == 1
    assert luna_csvs['excluded'] in err and 'finding 2' in err
    assert "'seriesuid'" in err and UID_B in err


def test_check_only_reports_existing_outputs(luna_csvs, tmp_path, capsys):
    out = tmp_path / 'luna16.json'
    out.write_text('{"mine": true}')
    status, plan, printed, _ = run_tool(
        'luna16', _luna_argv(luna_csvs, tmp_path, out), capsys)
    assert status == 1 and plan['would_refuse']
    assert 'would stop: pass --overwrite' in printed
    status, plan, printed, _ = run_tool(
        'luna16', _luna_argv(luna_csvs, tmp_path, out, '--overwrite'), capsys)
    assert status == 0 and 'would be replaced' in printed
    assert out.read_text() == '{"mine": true}'


def test_plan_splits_follow_the_conversion():
    ids = [f'scan-{i}' for i in range(50)]
    plan = plan_conversion(ids, [assign_split(i, 0.2, 0.1) for i in ids],
                           ConversionTarget('x.json', 'lits',
                                            ['liver tumour']))
    assert plan['volumes'] == 50 and sum(plan['splits'].values()) == 50
    assert all(plan['splits'][k] > 0 for k in ('train', 'val', 'test'))
    assert plan['existing'] == [] and not plan['would_refuse']


def lesion_class_name(preset, labels):
    return PRESETS[preset].class_names(labels, 'lesion')[0]


def test_lesion_class_name_follows_the_labels():
    assert lesion_class_name('lits', [2]) == 'liver tumour'
    assert lesion_class_name('lits', [2, 1]) == 'liver + liver tumour'
    assert lesion_class_name('lits', [1]) == 'liver'
    assert lesion_class_name('lits', None) == 'liver + liver tumour'
    assert lesion_class_name('kits19', [2]) == 'kidney tumour'
    assert lesion_class_name('nih_ln', None) == 'lymph node'
    assert lesion_class_name('folder', [3]) == 'lesion'
    with pytest.raises(ValueError, match=r"'labels': \[3\]"):
        lesion_class_name('lits', [2, 3])


def _lits_case(root, n):
    shape = (8, 24, 24)
    img = np.full(shape, -100, np.int16)
    img[:, 0] = -1000  # air: a CT in HU
    seg = np.zeros(shape, np.uint8)
    seg[2:7, 4:20, 4:20] = 1
    seg[3:5, 8:12, 8:12] = 2
    write_volume(str(root / f'volume-{n}.nii'), img)
    write_volume(str(root / f'segmentation-{n}.nii'), seg)


def test_lits_check_only_and_class_name(tmp_path, capsys):
    root = tmp_path / 'LiTS'
    _lits_case(root, 0)
    out = tmp_path / 'lits.json'
    status, plan, _, err = run_tool(
        'lits', [str(root), '--out', str(out), '--check-only'], capsys)
    assert status == 0, err
    assert plan['classes'] == ['liver tumour'] and plan['volumes'] == 1
    assert not out.exists()
    status, _, _, err = run_tool(
        'lits', [str(root), '--out', str(out), '--labels', '2', '3',
                 '--check-only'], capsys)
    assert status == 1 and "'labels': [3]" in err
    # the converted file names the class of the labels it used
    status, summary, _, err = run_tool(
        'lits', [str(root), '--out', str(out), '--labels', '1', '2'], capsys)
    assert status == 0, err
    meta = json.loads(out.read_text())['metainfo']
    assert meta['classes'] == ['liver + liver tumour']
    assert meta['lesion_labels'] == [1, 2] and summary['lesions'] == 1
