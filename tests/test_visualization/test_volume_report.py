# Copyright (c) mmlesion contributors. All rights reserved.
"""``report.html``'s first screen: values rounded for a reader, no folder
outside the results (``findings.json`` keeps the full record)."""
import re

from mmlesion.apis.whole_scan.results import DicomStatus, OperatingPoint
from mmlesion.apis.whole_scan.write import write_volume_results
from mmlesion.visualization.volume_report import (kept_text, series_text,
                                                  shown_name, shown_number)
from tests.helpers.scan_pictures import crowded_scan_result


def test_numbers_and_paths_as_a_reader_reads_them():
    values = (0.7142857142857143, 36, 0.7031250000000001, 1234.56, 2.0)
    assert [shown_number(v) for v in values] == [
        '0.714', '36', '0.703', '1235', '2']
    assert shown_name('/data/train/DL_info.csv (val) + /d/x.csv (val)') == \
        'DL_info.csv (val) + x.csv (val)'
    assert shown_name('/data/patient 1/series/', one_path=True) == 'series'
    assert shown_name('chest.nii.gz') == 'chest.nii.gz'
    assert kept_text(dict(source='score-thr', threshold=.05), 9, 9) == (
        '9 of 9 findings: every finding scoring 0.05 or more (the '
        '--score-thr given). All 9 are in candidates.csv.')
    assert kept_text(dict(source='validation', threshold=.41234, fp_rate=4.,
                          fp_unit='scan', sensitivity=.75,
                          split='/d/volumes.json, split val'), 12, 40) == (
        '12 of 40 findings, at most 4 false positives per scan on '
        'validation (sensitivity 0.75; volumes.json, split val): every '
        'finding scoring 0.412 or more. All 40 are in candidates.csv.')
    # a series by its description and number, its UID beside
    assert series_text(dict(series_uid='1.2.3')) == '1.2.3'
    assert series_text(dict(series_uid='1.2.3', series_description='CT Body '
                            '3.0', series_number=2)) == (
        'CT Body 3.0 (series number 2; UID 1.2.3)')
    assert series_text(dict(series_uid='1.2', series_number=5)) == (
        '(series number 5; UID 1.2)')


def test_first_screen_is_rounded_and_names_no_outside_folder(tmp_path):
    """An operating point chosen on training data elsewhere, a scan given
    by its absolute path, a timing of many digits: the page shows them
    rounded and by file name."""
    result = crowded_scan_result()
    data = tmp_path / 'training' / 'DeepLesion'
    result.scan = str(tmp_path / 'my scans' / 'chest.nii.gz')
    result.detect_seconds = 1.2345678901234567
    result.slices_per_second = 19.440000000000001
    result.operating_point = OperatingPoint(
        'validation', 0.41234567891234567, 4.0, 'image', 0.7142857142857143,
        f'{data}/DL_info.csv (val)', 12, 'FPs per 2D validation image')
    out = tmp_path / 'out'
    write_volume_results(result, out, max_pictures=1)
    page = (out / 'report.html').read_text()
    text = re.sub(r'<img [^>]*>', '', page)  # the pictures' base64
    assert str(tmp_path) not in text
    assert not re.findall(r'\d\.\d{4,}', text), re.findall(
        r'\d\.\d{4,}', text)
    head = text[text.index('<h1>'):text.index('<h2>')]
    assert '<title>chest.nii.gz</title>' in text
    assert '<b>scan</b> chest.nii.gz' in head
    n = len(result.findings)
    assert (f'<b>kept</b> {n} of {n} findings, at most 4 false positives per '
            '2D validation image (one key slice: on a whole scan that is per '
            'slice, not per scan) on validation (sensitivity 0.714; '
            'DL_info.csv (val); epoch 12): every finding scoring 0.412 or '
            'more.') in ' '.join(head.split())
    assert 'in 1.23 s (19.4 slices/s)' in ' '.join(head.split())
    assert '<b>voxels</b> 24 x 128 x 128 (z, y, x) at 2 x 0.8 x 0.8 mm' in \
        ' '.join(head.split())


def _head(out) -> str:
    page = (out / 'report.html').read_text()
    text = re.sub(r'<img [^>]*>', '', page)
    return ' '.join(text[text.index('<h1>'):text.index('<h2>')].split())


def test_the_report_says_whether_dicom_sr_and_seg_were_written(tmp_path):
    """SR and SEG, the SR without a SEG and why, none and why (the reason's
    paths by their last part); the console says the same."""
    from mmlesion.apis.whole_scan.write import format_summary
    from mmlesion.apis.whole_scan.write_dicom import NO_MASKS
    result = crowded_scan_result()
    cases = [
        (DicomStatus(True, sr='findings_sr.dcm', seg='findings_seg.dcm',
                     seg_findings=[1, 3]),
         'SR findings_sr.dcm written; SEG findings_seg.dcm with the masks of '
         '2 findings',
         None),
        (DicomStatus(True, sr='findings_sr.dcm', seg_reason=NO_MASKS),
         f'SR findings_sr.dcm written; no SEG: {NO_MASKS}',
         f'no DICOM SEG: {NO_MASKS}'),
        (DicomStatus(False, reason=f'{tmp_path}/chest.nii.gz: DICOM results '
                     '(SR, SEG) need a DICOM series folder as input'),
         'SR and SEG not written: chest.nii.gz: DICOM results (SR, SEG) need '
         'a DICOM series folder as input', 'no DICOM results: '),
    ]
    for i, (status, text, console) in enumerate(cases):
        result.dicom = status
        write_volume_results(result, tmp_path / str(i), max_pictures=0)
        assert f'<b>DICOM</b> {text}' in _head(tmp_path / str(i))
        summary = format_summary(result)
        assert console is None or console in summary
        assert 'no DICOM' not in summary or console is not None
    assert DicomStatus(True, sr='a.dcm', seg_reason='why').to_dict()[
        'seg_reason'] == 'why'


def test_the_stacking_is_said_in_plain_words():
    from mmlesion.visualization.volume_report import stacking_text
    assert stacking_text(dict(iou_thr=.5, max_gap=0, min_slices=1)) == \
        'IoU > 0.5 on consecutive slices'
    assert stacking_text(dict(
        iou_thr=.5, max_gap=1, min_slices=2, contain_thr=.7, join_gap=2,
        merge_iou=.1)) == (
            'IoU > 0.5 on consecutive slices; bridging up to 1 missed '
            'slice(s); or a box 70 % inside the last one; fragments up to 2 '
            'slice(s) apart joined; overlapping findings merged (3D IoU > '
            '0.1); findings on fewer than 2 slices dropped')
