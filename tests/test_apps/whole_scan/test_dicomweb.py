# Copyright (c) mmlesion contributors. All rights reserved.
"""A DICOMweb server as the source of whole-scan inference and the place
its results go back to (mmlesion.apps.whole_scan.dicomweb_source,
dicomweb_batch, store_back; ``tools/infer_volume.py --dicomweb``), against
a real Orthanc with its DICOMweb plugin (tests/helpers/orthanc.py; skipped
where it is not installed)."""
import csv
import json
import types

import numpy as np
import pytest
import torch

from mmlesion.apis.detector_loader import LoadedDetector
from mmlesion.apis.whole_scan import run as run_module
from mmlesion.apps.whole_scan.dicomweb_source import DicomWebSettings
from mmlesion.apps.whole_scan.server_source import QueryFilter, parse_query
from mmlesion.datasets.volumes import load_ct_volume
from mmlesion.testing import repo_root, shared_data_root
from tests.helpers.orthanc import (PASSWORD, USER, OrthancServer,
                                   orthanc_missing, write_ct_series)
from tests.helpers.tool_modules import load_tool

pytest.importorskip('highdicom')
pydicom = pytest.importorskip('pydicom')

DEMO_CFG = str(repo_root() / 'configs' / 'demo' /
               'faster-rcnn_r18_fpn_36e_deeplesion-demo.py')
REAL_DICOM = 'ct_volumes/totalsegmentator/example_ct_dicom'
ROOT = '1.2.826.0.1.3680043.8.498.9100'  # our test UIDs
NUM_CT = 20  # CT series, two per study
SLICES, SIZE = 4, 64


def _real_ct():
    """The real CT, every slice cut to 64 x 64 (8 x 8 px block means:
    the whole field of view, air around the body)."""
    root = shared_data_root()
    folder = None if root is None else root / REAL_DICOM
    if folder is None or not folder.is_dir():
        pytest.skip(f'{REAL_DICOM} not available')
    volume = load_ct_volume(str(folder))
    z, y, x = volume.array.shape
    f = y // SIZE
    small = volume.array[:, :f * SIZE, :f * SIZE].reshape(
        z, SIZE, f, SIZE, f).mean(axis=(2, 4))
    spacing_xyz = (volume.spacing_zyx[2] * f, volume.spacing_zyx[1] * f,
                   volume.spacing_zyx[0])
    return np.round(small).astype(np.int16), spacing_xyz


def _load_server(server, tmp, num_ct=NUM_CT):
    """``num_ct`` CT series (two a patient, a study each, January 2024), a
    localizer, a Secondary Capture (Modality CT) and an MR series in
    the first study, and one CT study in February (outside the query)."""
    array, spacing = _real_ct()
    files = []
    for i in range(num_ct + 2):  # the last two: the February study
        p = i // 2
        study = f'{ROOT}.{p + 1}'
        tags = dict(PatientID=f'MMLTEST{p:02d}',
                    PatientName=f'Testpatient^Number{p:02d}',
                    StudyDate=f'202401{p + 10:02d}' if i < num_ct else
                    '20240214', BodyPartExamined='CHEST',
                    SeriesDescription=f'CT series {i % 2}',
                    SeriesNumber=i % 2 + 1)
        start = i % (array.shape[0] - SLICES)
        files += write_ct_series(
            tmp / f'ct{i}', array[start:start + SLICES], spacing,
            (-250., -437., -800. + start * spacing[2]),
            dict(study=study, series=f'{study}.{i % 2 + 1}'), tags)
    study, tags = f'{ROOT}.1', dict(PatientID='MMLTEST00',
                                    PatientName='Testpatient^Number00',
                                    StudyDate='20240110',
                                    BodyPartExamined='CHEST')
    files += write_ct_series(
        tmp / 'localizer', array[:1], spacing, (-250., -437., -800.),
        dict(study=study, series=f'{study}.7'),
        dict(tags, ImageType=['ORIGINAL', 'PRIMARY', 'LOCALIZER']))
    files += write_ct_series(
        tmp / 'sc', array[:1], spacing, (-250., -437., -800.),
        dict(study=study, series=f'{study}.8'),
        dict(tags, SOPClassUID='1.2.840.10008.5.1.4.1.1.7'))
    files += write_ct_series(
        tmp / 'mr', array[:2], spacing, (-250., -437., -800.),
        dict(study=study, series=f'{study}.9'),
        dict(tags, Modality='MR',
             SOPClassUID='1.2.840.10008.5.1.4.1.1.4'))
    server.upload(files)


@pytest.fixture(scope='module')
def orthanc(tmp_path_factory):
    missing = orthanc_missing()
    if missing:
        pytest.skip(missing)
    tmp = tmp_path_factory.mktemp('orthanc')
    with OrthancServer(tmp / 'server') as server:
        _load_server(server, tmp / 'files')
        yield server


def _instances_by_series(server):
    """{series UID: instance count} of every series on the server."""
    counts = {}
    for sid in server.get('/series'):
        info = server.get(f'/series/{sid}')
        counts[info['MainDicomTags']['SeriesInstanceUID']] = len(
            info['Instances'])
    return counts


@pytest.fixture
def stub_detector(monkeypatch, tmp_path):
    """The tool's model: the stand-in detector of test_write_dicom (bright
    components of the middle slice, with masks), and its checkpoint."""
    from tests.test_apis.whole_scan.test_write_dicom import _stub
    cfg, model = _stub(150., True)
    ckpt = tmp_path / 'stub.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    monkeypatch.setattr(
        run_module, 'init_lesion_detector',
        lambda *a, **k: LoadedDetector(model=model, cfg=cfg))
    monkeypatch.setenv('MMLESION_DICOMWEB_PASSWORD', PASSWORD)
    torch.set_num_threads(1)
    return ckpt


def _argv(server, ckpt, out, *extra):
    return [DEMO_CFG, str(ckpt), '--dicomweb', server.dicomweb,
            '--dicomweb-user', USER, '--query', 'StudyDate=20240101-20240131',
            '--query', 'BodyPartExamined=CHEST',
            '--out-dir', str(out), '--pixel-spacing', '8',
            '--score-thr', '0.5', '--max-pictures', '0',
            '--no-overlap', *extra]


def test_query_to_results_stored_back_once(orthanc, stub_detector, tmp_path,
                                           capsys):
    """One command: the January query's 20 CT series are retrieved,
    detected, and their SR and SEG stored into their studies; the
    localizer, the Secondary Capture and the MR series are skipped, each
    with its reason; the February study is not touched. The same command
    again stores nothing twice (instances counted on the server), and no
    patient name is printed or written into the tables."""
    before = _instances_by_series(orthanc)
    out = tmp_path / 'out'
    tool = load_tool('infer_volume.py')
    code = tool.main(_argv(orthanc, stub_detector, out))
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    rows = list(csv.DictReader(open(out / 'server.csv')))
    done = [r for r in rows if r['status'] == 'done']
    skipped = {r['series_uid']: r['reason'] for r in rows
               if r['status'] == 'skipped'}
    assert len(done) == NUM_CT and len(rows) == NUM_CT + 3
    assert skipped == {
        f'{ROOT}.1.7': 'a localizer (ImageType LOCALIZER)',
        f'{ROOT}.1.8': 'Secondary Capture Image Storage, not CT Image '
        'Storage',
        f'{ROOT}.1.9': 'modality MR, not CT'}
    for uid, reason in skipped.items():
        assert f'series {uid}' in captured.out + captured.err
        assert reason in captured.out + captured.err
    assert not (out / 'series' / f'{ROOT}.1.7').exists()
    assert all(int(r['findings']) > 0 and r['sr'] == 'stored'
               and r['seg'] == 'stored' for r in done), done
    after = _instances_by_series(orthanc)
    new = {uid: n for uid, n in after.items() if uid not in before}
    assert len(new) == 2 * NUM_CT and set(new.values()) == {1}
    # each SR / SEG went into the study of its source series, and
    # references that series
    for row in done:
        folder = out / row['series_uid']
        record = json.loads((folder / 'findings.json').read_text())
        for name in ('findings_sr.dcm', 'findings_seg.dcm'):
            ds = pydicom.dcmread(str(folder / name))
            assert ds.StudyInstanceUID == row['study_uid']
            assert ds.SeriesInstanceUID in new
            evidence = (ds.get('CurrentRequestedProcedureEvidenceSequence')
                        or ds.ReferencedSeriesSequence)
            if 'ReferencedSeriesSequence' in evidence[0]:
                evidence = evidence[0].ReferencedSeriesSequence
            assert evidence[0].SeriesInstanceUID == row['series_uid']
        assert record['dicom']['sr_sop_instance_uid'] == pydicom.dcmread(
            str(folder / 'findings_sr.dcm')).SOPInstanceUID
    # the February study: untouched, not retrieved
    assert not (out / 'series' / f'{ROOT}.11.1').exists()
    assert after[f'{ROOT}.11.1'] == before[f'{ROOT}.11.1']
    text = captured.out + captured.err + (out / 'server.csv').read_text() \
        + (out / 'scans.csv').read_text()
    assert 'Testpatient' not in text

    # the same command again: nothing run, nothing stored twice
    code = tool.main(_argv(orthanc, stub_detector, out))
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert _instances_by_series(orthanc) == after
    rows = list(csv.DictReader(open(out / 'server.csv')))
    assert {r['sr'] for r in rows if r['status'] == 'done'} == {
        'on the server already'}

    # a re-run of everything (--overwrite): the same results get the same
    # UIDs, which the server holds already
    one = done[0]['series_uid']
    code = tool.main(_argv(orthanc, stub_detector, out, '--overwrite',
                           '--query', f'SeriesInstanceUID={one}'))
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert _instances_by_series(orthanc) == after
    rows = list(csv.DictReader(open(out / 'server.csv')))
    assert [(r['series_uid'], r['sr'], r['seg']) for r in rows] == [
        (one, 'on the server already', 'on the server already')]


def test_unreachable_server_and_refused_credentials(orthanc, stub_detector,
                                                    tmp_path, capsys,
                                                    monkeypatch):
    """One line each, naming the URL and what to check, status 1, nothing
    retrieved."""
    tool = load_tool('infer_volume.py')
    monkeypatch.setenv('MMLESION_DICOMWEB_PASSWORD', 'wrong')
    code = tool.main(_argv(orthanc, stub_detector, tmp_path / 'a'))
    err = capsys.readouterr().err
    assert code == 1
    assert (f'error: --dicomweb {orthanc.dicomweb}: the server refused the '
            'credentials (HTTP 401, QIDO-RS series query): check '
            '--dicomweb-user and MMLESION_DICOMWEB_PASSWORD') in err
    dead = types.SimpleNamespace(dicomweb='http://127.0.0.1:9/dicom-web')
    code = tool.main(_argv(dead, stub_detector, tmp_path / 'b'))
    err = capsys.readouterr().err
    assert code == 1
    assert ('error: --dicomweb http://127.0.0.1:9/dicom-web: cannot connect '
            '(QIDO-RS series query): is the server running and the URL '
            'right (host, port, path)?') in err
    assert not (tmp_path / 'a' / 'series').exists()


def test_settings_refuse_bad_options():
    with pytest.raises(ValueError, match="'PatientName' is not a query key"):
        parse_query(['PatientName=X'])
    with pytest.raises(ValueError, match='Modality given twice'):
        DicomWebSettings('http://h/dicom-web', (QueryFilter('Modality', 'CT'),
                                                QueryFilter('Modality', 'MR')))
    with pytest.raises(ValueError, match='Modality given twice'):
        parse_query(['Modality=CT', 'Modality=MR'])
    with pytest.raises(ValueError, match='Modality=: give a value'):
        parse_query(['Modality= '])
    with pytest.raises(ValueError, match='not an http'):
        DicomWebSettings('pacs:8042')
    with pytest.raises(ValueError, match='MMLESION_DICOMWEB_PASSWORD'):
        DicomWebSettings('http://h/dicom-web', user='u')
    with pytest.raises(ValueError, match='write KEY=VALUE'):
        parse_query(['StudyDate'])
    assert parse_query(['StudyDate=20240101-20240131', 'Modality=CT']) == (
        QueryFilter('StudyDate', '20240101-20240131'),
        QueryFilter('Modality', 'CT'))


def test_the_configured_timeout_is_the_one_waited_and_said(tmp_path,
                                                           capsys):
    """A server that accepts the connection and never answers: the query
    gives up after the settings' timeout (not dicomweb-client's own 20 s)
    and the line says that number; the tool's --server-timeout sets it."""
    import socket
    import time

    from mmlesion.apps.whole_scan.dicomweb_source import DicomWebError
    from mmlesion.apps.whole_scan.server_source import find_series
    with socket.socket() as silent:
        silent.bind(('127.0.0.1', 0))
        silent.listen()
        url = f'http://127.0.0.1:{silent.getsockname()[1]}/dicom-web'
        started = time.monotonic()
        with pytest.raises(DicomWebError) as err:
            find_series(DicomWebSettings(url, timeout_s=0.5).connect(), ())
        assert time.monotonic() - started < 5
        assert str(err.value) == (f'--dicomweb {url}: no answer within '
                                  '0.5 s (QIDO-RS series query)')
        tool = load_tool('infer_volume.py')
        code = tool.main([DEMO_CFG, str(tmp_path / 'k.pth'), '--dicomweb',
                          url, '--out-dir', str(tmp_path / 'out'),
                          '--server-timeout', '0.25'])
    assert code == 1
    assert (f'error: --dicomweb {url}: no answer within 0.25 s (QIDO-RS '
            'series query)') in capsys.readouterr().err
    assert tool.parse_args(['c.py', 'k.pth', '--dicomweb', url, '--out-dir',
                            'o']).server_timeout == 60


class _BrokenRetrieval:
    """A client whose WADO-RS breaks after the first instance (a server
    that goes away mid-series)."""

    def __init__(self, folder):
        self.files = write_ct_series(
            folder, np.zeros((2, 4, 4)), (1., 1., 1.), (0., 0., 0.),
            dict(study=f'{ROOT}.1', series=f'{ROOT}.1.1'), {})

    def iter_series(self, study_uid, series_uid, media_types=None):
        import requests
        yield pydicom.dcmread(str(self.files[0]))
        raise requests.ConnectionError('connection reset')


def test_a_broken_retrieval_leaves_no_series_folder(tmp_path):
    """Whole or absent: the retrieved instance stays in a temporary folder
    that is removed, and the error is one line naming the series."""
    from mmlesion.apps.whole_scan.dicomweb_source import (DicomWebError,
                                                          DicomWebTransport)
    from mmlesion.apps.whole_scan.server_source import (SeriesRef,
                                                        retrieve_series)
    settings = DicomWebSettings('http://127.0.0.1:9/dicom-web')
    ref = SeriesRef(f'{ROOT}.1', f'{ROOT}.1.1', 'CT')
    transport = DicomWebTransport(settings,
                                  _BrokenRetrieval(tmp_path / 'files'))
    with pytest.raises(DicomWebError, match=f'cannot connect \\(WADO-RS '
                       f'series {ROOT}.1.1\\)'):
        retrieve_series(transport, ref, tmp_path / 'series')
    assert list((tmp_path / 'series').iterdir()) == []


class _NoStoredSyntax(_BrokenRetrieval):
    """A client whose server refuses ``transfer-syntax=*`` (HTTP 406) and
    sends its default syntax."""

    def iter_series(self, study_uid, series_uid, media_types=None):
        import requests
        if media_types is not None:
            response = requests.Response()
            response.status_code, response.reason = 406, 'Not Acceptable'
            raise requests.HTTPError('406', response=response)
        yield from (pydicom.dcmread(str(f)) for f in self.files)


def test_a_server_refusing_the_stored_syntax_is_asked_for_its_default(
        tmp_path, caplog, monkeypatch):
    """HTTP 406 for transfer-syntax=*: the series is asked for again in
    the server's default syntax, with a warning; retrieved whole."""
    import logging

    from mmengine.logging import MMLogger

    from mmlesion.apps.whole_scan.dicomweb_source import DicomWebTransport
    from mmlesion.apps.whole_scan.server_source import (SeriesRef,
                                                        retrieve_series)
    monkeypatch.setattr(MMLogger, 'get_current_instance',
                        lambda: logging.getLogger('test_dicomweb'))
    transport = DicomWebTransport(
        DicomWebSettings('http://127.0.0.1:9/dicom-web'),
        _NoStoredSyntax(tmp_path / 'files'))
    folder = retrieve_series(transport, SeriesRef(f'{ROOT}.1', f'{ROOT}.1.1',
                                                  'CT'), tmp_path / 'series')
    assert len(list(folder.iterdir())) == 2
    assert (f'--dicomweb http://127.0.0.1:9/dicom-web: WADO-RS series '
            f'{ROOT}.1.1: HTTP 406 for transfer-syntax=* (the syntax it '
            'stores); asking for its default syntax, which it must '
            'transcode to') in caplog.text


@pytest.mark.parametrize('value, text, hit', [
    ('CT?series 1', 'CT series 1', True), ('CT*', 'CT series 1', True),
    ('CT [a]', 'CT [a]', True),  # brackets are characters, not a glob class
    ('CT [a]', 'CT a', False), ('ct*', 'CT series 1', False),  # case
    ('CT*1', 'CT series 1 ', True),  # trailing padding
])
def test_filters_matched_on_the_answer_follow_the_standard(value, text,
                                                           hit):
    """A filter a URL must encode is matched on the QIDO-RS answer by
    PS3.4 C.2.2.2's rule: * and ? wildcards, every other character itself."""
    from mmlesion.apps.whole_scan.dicomweb_source import _matcher
    from mmlesion.apps.whole_scan.server_source import QueryFilter
    item = {'0008103E': {'vr': 'LO', 'Value': [text]}}
    assert bool(_matcher(QueryFilter('SeriesDescription', value))(item)) \
        is hit
