# Copyright (c) mmlesion contributors. All rights reserved.
"""A DICOM server without DICOMweb as the source of whole-scan inference
and the place its results go back to, over DIMSE
(mmlesion.apps.whole_scan.dimse_source; ``tools/infer_volume.py
--dimse``), against the DICOM port of a real Orthanc
(tests/helpers/orthanc.py; skipped where it or pynetdicom is not
installed), holding the series of test_dicomweb.py (fewer of them)."""
import csv

import pytest

from mmlesion.apps.whole_scan.dimse_source import DimseSettings
from tests.helpers.orthanc import (AET, CALLING_AET, NO_GET_AET,
                                   OrthancServer, orthanc_missing)
from tests.helpers.tool_modules import load_tool
from tests.test_apps.whole_scan.test_dicomweb import (  # noqa: F401
    DEMO_CFG, ROOT, _instances_by_series, _load_server, stub_detector)

pytest.importorskip('pynetdicom')
pytest.importorskip('highdicom')
NUM_CT = 4  # two January studies of two CT series each


@pytest.fixture(scope='module')
def orthanc(tmp_path_factory):
    missing = orthanc_missing()
    if missing:
        pytest.skip(missing)
    tmp = tmp_path_factory.mktemp('orthanc_dimse')
    with OrthancServer(tmp / 'server') as server:
        _load_server(server, tmp / 'files', num_ct=NUM_CT)
        yield server


def _argv(address, ckpt, out, *extra, called=AET, calling=CALLING_AET):
    return [DEMO_CFG, str(ckpt), '--dimse', address, '--called-aet', called,
            '--calling-aet', calling, '--query',
            'StudyDate=20240101-20240131', '--query',
            'BodyPartExamined=CHEST', '--out-dir', str(out),
            '--pixel-spacing', '8', '--score-thr', '0.5', '--max-pictures',
            '0', '--no-overlap', *extra]


def _rows(out):
    return list(csv.DictReader(open(out / 'server.csv')))


def test_dimse_query_to_results_stored_back_once(orthanc, stub_detector,
                                                 tmp_path, capsys):
    """C-FIND finds the January studies' series; the CT series are
    retrieved by C-GET, detected, and their SR and SEG stored by C-STORE
    into their studies; the localizer, the Secondary Capture and the MR
    series are skipped with the reasons of the DICOMweb path; the February
    study is not touched. The same command again stores nothing twice."""
    before = _instances_by_series(orthanc)
    out = tmp_path / 'out'
    tool = load_tool('infer_volume.py')
    code = tool.main(_argv(orthanc.dimse, stub_detector, out))
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    rows = _rows(out)
    done = [r for r in rows if r['status'] == 'done']
    assert sorted(r['series_uid'] for r in done) == [
        f'{ROOT}.1.1', f'{ROOT}.1.2', f'{ROOT}.2.1', f'{ROOT}.2.2']
    assert {r['series_uid']: r['reason'] for r in rows
            if r['status'] == 'skipped'} == {
        f'{ROOT}.1.7': 'a localizer (ImageType LOCALIZER)',
        f'{ROOT}.1.8': 'Secondary Capture Image Storage, not CT Image '
        'Storage',
        f'{ROOT}.1.9': 'modality MR, not CT'}
    assert all(int(r['findings']) > 0 and r['sr'] == 'stored'
               and r['seg'] == 'stored' for r in done), done
    # every instance of a series retrieved, nothing of the others
    for row in done:
        assert len(list((out / 'series' / row['series_uid']).iterdir())) \
            == before[row['series_uid']]
    assert sorted(p.name for p in (out / 'series').iterdir()) == sorted(
        r['series_uid'] for r in done)
    after = _instances_by_series(orthanc)
    new = {uid: n for uid, n in after.items() if uid not in before}
    assert len(new) == 2 * NUM_CT and set(new.values()) == {1}
    # the SR and SEG of both CT series of a study went into that study
    study_of = {}
    for sid in orthanc.get('/series'):
        info = orthanc.get(f'/series/{sid}')
        study_of[info['MainDicomTags']['SeriesInstanceUID']] = info[
            'ParentStudy']
    for row in done:
        source = study_of[row['series_uid']]
        assert sum(study_of[uid] == source for uid in new) == 4
    assert after[f'{ROOT}.3.1'] == before[f'{ROOT}.3.1']
    assert 'Testpatient' not in captured.out + captured.err + (
        out / 'server.csv').read_text()

    code = tool.main(_argv(orthanc.dimse, stub_detector, out))
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert _instances_by_series(orthanc) == after
    assert {(r['sr'], r['seg']) for r in _rows(out)
            if r['status'] == 'done'} == {('on the server already',
                                          'on the server already')}


@pytest.mark.parametrize('items, expected', [
    (['PatientID=MMLTEST01'], {'2.1', '2.2'}),
    (['StudyDate=20240201-20240229'], {'3.1', '3.2'}),
    (['StudyDate=20240101-20240131', 'Modality=MR'], {'1.9'}),
    (['BodyPartExamined=CHEST', 'StudyInstanceUID=' + ROOT + '.1'],
     {'1.1', '1.2', '1.7', '1.8', '1.9'}),
    # Orthanc's DICOMweb plugin matches nothing for percent-encoded values
    # (a * or a space): these are matched on the QIDO-RS answer
    (['PatientID=MMLTEST0*', 'SeriesDescription=CT series 1'],
     {'1.2', '2.2', '3.2'}),
    (['SeriesDescription=CT?series 1', 'PatientID=MMLTEST02'], {'3.2'}),
])
def test_dimse_query_finds_what_dicomweb_finds(orthanc, items, expected):
    """Each query key (patient, date range, modality, body part, series
    description, wildcards) finds the expected series over DIMSE (C-FIND:
    studies, then their series), the same as over DICOMweb (QIDO-RS) on
    the same server."""
    from mmlesion.apps.whole_scan.dicomweb_source import DicomWebSettings
    from mmlesion.apps.whole_scan.server_source import parse_query
    from tests.helpers.orthanc import PASSWORD, USER
    query = parse_query(items)
    for settings in (DimseSettings(orthanc.dimse, AET, CALLING_AET),
                     DicomWebSettings(orthanc.dicomweb, user=USER,
                                      password=PASSWORD)):
        refs = settings.connect().search_series(query)
        found = [r.series_uid[len(ROOT) + 1:] for r in refs
                 if r.series_uid.startswith(ROOT)]  # not a stored SR, SEG
        assert sorted(found) == sorted(expected), type(settings).__name__


def test_dimse_failures_are_one_line(orthanc, stub_detector, tmp_path,
                                     capsys):
    """Unreachable, association rejected (wrong called AE title), a
    calling AE title the server does not list, a C-GET the server refuses:
    one line each naming the server and what to check; nothing retrieved."""
    tool = load_tool('infer_volume.py')
    host = orthanc.dimse

    def error(address, **aets):
        code = tool.main(_argv(address, stub_detector, tmp_path / 'x',
                               **aets))
        lines = [line for line in capsys.readouterr().err.splitlines()
                 if line.startswith('error:')]
        assert code == 1 and len(lines) == 1, lines
        return lines[0]

    assert error('127.0.0.1:9') == (
        f'error: --dimse 127.0.0.1:9 ({AET}): cannot connect (series query): '
        'is the DICOM server running, and 127.0.0.1:9 its DICOM port (not '
        'its web port)?')
    assert error(host, called='NOTORTHANC') == (
        f'error: --dimse {host} (NOTORTHANC): association rejected (series '
        'query: Called AE title not recognised): check --called-aet (the '
        'AE title of the server) and that the server lists --calling-aet '
        f'{CALLING_AET} with this host among its modalities')
    assert error(host, calling='STRANGER') == (
        f'error: --dimse {host} ({AET}): the server aborted the association '
        '(C-FIND study query): does it allow C-FIND from --calling-aet '
        'STRANGER (on Orthanc: DicomModalities)?')
    assert not (tmp_path / 'x' / 'series').exists()

    # C-FIND allowed, C-GET not: the series fails with its line, the run
    # goes on and ends with status 1, and no series folder is left
    out = tmp_path / 'noget'
    code = tool.main(_argv(host, stub_detector, out, '--query',
                           f'SeriesInstanceUID={ROOT}.2.1',
                           calling=NO_GET_AET))
    captured = capsys.readouterr()
    assert code == 1
    reason = (f'--dimse {host} ({AET}): the server aborted the association '
              f'(C-GET series {ROOT}.2.1): does it allow C-GET from '
              f'--calling-aet {NO_GET_AET} (on Orthanc: DicomModalities)?')
    assert [(r['series_uid'], r['status'], r['reason'])
            for r in _rows(out)] == [(f'{ROOT}.2.1', 'failed', reason)]
    assert reason in captured.out + captured.err
    assert list((out / 'series').iterdir()) == []


def test_dimse_retrieval_broken_midway_leaves_no_folder(orthanc, tmp_path,
                                                       monkeypatch):
    """A disk that fills up after the first instance of a C-GET: the
    error comes out as it is (the batch names it), the rest of the series
    is refused, and no series folder is left (the series is whole or
    absent)."""
    import errno

    from pydicom.dataset import Dataset

    from mmlesion.apps.whole_scan.server_source import (SeriesRef,
                                                        retrieve_series)
    save_as, calls = Dataset.save_as, []

    def full(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return save_as(self, *args, **kwargs)

    monkeypatch.setattr(Dataset, 'save_as', full)
    transport = DimseSettings(orthanc.dimse, AET, CALLING_AET).connect()
    with pytest.raises(OSError, match='No space left'):
        retrieve_series(transport, SeriesRef(f'{ROOT}.2', f'{ROOT}.2.1',
                                             'CT'), tmp_path / 'series')
    assert len(calls) == 2  # the others refused, not written
    assert list((tmp_path / 'series').iterdir()) == []


def test_dimse_options_refused(capsys):
    with pytest.raises(ValueError, match='write HOST:PORT'):
        DimseSettings('pacs', 'ORTHANC')
    with pytest.raises(ValueError, match='write HOST:PORT'):
        DimseSettings('pacs:0', 'ORTHANC')
    with pytest.raises(ValueError, match='--called-aet .* 1 to 16'):
        DimseSettings('pacs:104', 'A' * 17)
    with pytest.raises(ValueError, match='--calling-aet .* 1 to 16'):
        DimseSettings('pacs:104', 'ORTHANC', 'BAD\\AET')
    settings = DimseSettings('[::1]:11112', 'ORTHANC')
    assert (settings.host, settings.port) == ('::1', 11112)
    tool = load_tool('infer_volume.py')
    for argv, message in (
            (['--dimse', 'h:104'], '--dimse needs --called-aet'),
            (['--dimse', 'h:104', '--called-aet', 'A', '--dicomweb',
              'http://h/dicom-web'], 'not allowed with argument'),
            (['scan.nii.gz', '--called-aet', 'A'],
             '--called-aet goes with --dimse'),
            (['scan.nii.gz', '--dimse', 'h:104', '--called-aet', 'A'],
             '--dimse takes its scans from the server')):
        with pytest.raises(SystemExit):
            tool.parse_args(['c.py', 'k.pth', *argv, '--out-dir', 'o'])
        assert message in capsys.readouterr().err
