# Copyright (c) mmlesion contributors. All rights reserved.
"""Results stored back only where their source series still is, and a
series' row that never drops from done while it runs again
(mmlesion.apps.whole_scan.store_back, dicomweb_batch; ``tools/
infer_volume.py --dicomweb`` / ``--dimse``), against a real Orthanc
(tests/helpers/orthanc.py; skipped where it is not installed)."""
import csv

import numpy as np
import pytest

from mmlesion.apps.whole_scan import batch, dicomweb_batch
from tests.helpers import dicom_reference as ref
from tests.helpers.orthanc import (AET, CALLING_AET, USER, OrthancServer,
                                   orthanc_missing)
from tests.helpers.tool_modules import load_tool
from tests.test_apps.whole_scan.test_dicomweb import (  # noqa: F401
    DEMO_CFG, stub_detector)

pytest.importorskip('pynetdicom')
pytest.importorskip('highdicom')
STUDY = ref.UID_ROOT + '1'
N = 3


def _upload_series(orthanc, tmp_path, series_uid):
    noise = np.random.default_rng(0).integers(-40, 40, (N, 32, 32))
    stored = np.zeros((N, 32, 32), np.int64)  # air, -1024 HU
    stored[:, 4:28, 4:28] = 1024 + noise[:, 4:28, 4:28]  # soft tissue
    stored[:, 10:20, 10:20] += 400  # a bright block: a finding
    orthanc.upload(ref.write_series(
        str(tmp_path / series_uid), stored, ref.stack_planes(N),
        series_uid=series_uid, extra=dict(PatientBirthDate='',
                                          PatientSex='')))


@pytest.fixture
def orthanc(tmp_path):
    missing = orthanc_missing()
    if missing:
        pytest.skip(missing)
    with OrthancServer(tmp_path / 'server') as server:
        yield server


def _argv(orthanc, protocol, ckpt, out, series_uid):
    server = (['--dicomweb', orthanc.dicomweb, '--dicomweb-user', USER]
              if protocol == 'dicomweb' else
              ['--dimse', orthanc.dimse, '--called-aet', AET,
               '--calling-aet', CALLING_AET])
    return [DEMO_CFG, str(ckpt), *server, '--query',
            f'SeriesInstanceUID={series_uid}', '--out-dir', str(out),
            '--pixel-spacing', '1', '--score-thr', '0.5', '--max-pictures',
            '0', '--no-overlap']


def _studies(orthanc):
    return {orthanc.get(f'/studies/{sid}')['MainDicomTags'][
        'StudyInstanceUID'] for sid in orthanc.get('/studies')}


@pytest.mark.parametrize('protocol', ['dicomweb', 'dimse'])
def test_nothing_stored_beside_a_series_deleted_while_it_ran(
        orthanc, stub_detector, tmp_path, monkeypatch, capsys, protocol):
    """The source series (and so its study) deleted from the archive while
    the scan was detected: the server is asked before the store, the
    series fails in one line, and the study is not made again holding
    only our SR and SEG."""
    uid = ref.UID_ROOT + '85.1'
    _upload_series(orthanc, tmp_path, uid)
    detect = batch.detect_scan

    def detected_then_deleted(*args, **kwargs):
        result = detect(*args, **kwargs)
        orthanc.delete_series(uid)
        return result

    monkeypatch.setattr(batch, 'detect_scan', detected_then_deleted)
    out = tmp_path / 'out'
    code = load_tool('infer_volume.py').main(
        _argv(orthanc, protocol, stub_detector, out, uid))
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    reason = (f'the server no longer holds series {uid} (study {STUDY}): '
              'its SR and SEG are not stored (they would make a study '
              'holding only them); its results stay in --out-dir')
    rows = list(csv.DictReader(open(out / 'server.csv')))
    assert [(r['series_uid'], r['status'], r['reason']) for r in rows] == [
        (uid, 'failed', reason)]
    assert f'series {uid}: {reason}' in captured.out + captured.err
    assert (out / uid / 'findings_sr.dcm').is_file()  # there was an SR
    assert STUDY not in _studies(orthanc) and orthanc.get('/instances') == []


def test_a_done_series_stays_done_while_it_runs_again(
        orthanc, stub_detector, tmp_path, monkeypatch, capsys):
    """The same command again (as a retry runs its shard's series again):
    every server.csv written along the way has the series done (a count of
    the done series never drops), and ends saying its SR was on the
    server already."""
    uid = ref.UID_ROOT + '85.2'
    _upload_series(orthanc, tmp_path, uid)
    out = tmp_path / 'out'
    argv = _argv(orthanc, 'dicomweb', stub_detector, out, uid)
    tool = load_tool('infer_volume.py')
    assert tool.main(argv) == 0, capsys.readouterr()
    rows = list(csv.DictReader(open(out / 'server.csv')))
    assert [(r['status'], r['sr']) for r in rows] == [('done', 'stored')]
    written = []
    write = dicomweb_batch.write_server_summary

    def spy(rows, path):
        written.append([(r.status, r.sr) for r in rows])
        write(rows, path)

    monkeypatch.setattr(dicomweb_batch, 'write_server_summary', spy)
    assert tool.main(argv) == 0, capsys.readouterr()
    assert len(written) >= 2
    assert all(statuses[0][0] == 'done' for statuses in written), written
    assert written[-1] == [('done', 'on the server already')]


def test_each_scan_stored_as_soon_as_it_is_written(
        orthanc, stub_detector, tmp_path, monkeypatch, capsys):
    """Two series: the first one's SR and SEG are on the server, and its
    row done in server.csv, before the second one is detected (not when
    the whole batch ends)."""
    uids = [ref.UID_ROOT + f'85.{k}' for k in (3, 4)]
    for uid in uids:
        _upload_series(orthanc, tmp_path, uid)
    out = tmp_path / 'out'
    seen = []
    detect = batch.detect_scan

    def spy(*args, **kwargs):
        modalities = [orthanc.get(f'/series/{sid}')['MainDicomTags'].get(
            'Modality') for sid in orthanc.get('/series')]
        table = list(csv.DictReader(open(out / 'server.csv')))
        seen.append((sorted(m for m in modalities if m != 'CT'),
                     [r['status'] for r in table]))
        return detect(*args, **kwargs)

    monkeypatch.setattr(batch, 'detect_scan', spy)
    argv = _argv(orthanc, 'dicomweb', stub_detector, out, uids[0])
    argv[argv.index(f'SeriesInstanceUID={uids[0]}')] = 'PatientID=REF1'
    assert load_tool('infer_volume.py').main(argv) == 0, capsys.readouterr()
    assert seen == [([], ['', '']), (['SEG', 'SR'], ['done', ''])]


def test_a_store_begun_is_recorded_before_it_is_sent(tmp_path):
    """No server: the store's record is written before the store is sent,
    so a job killed during or right after the store leaves it; the run's
    round then counts that SR as its own (a retry finds it on the
    server), not a record older than the run."""
    import json
    import os
    import time

    import pydicom
    from pydicom.dataset import FileMetaDataset

    from mmlesion.apps.whole_scan.server_shards import SeriesWork
    from mmlesion.apps.whole_scan.server_source import (DicomServerError,
                                                        FoundSeries, SeriesRef)
    from mmlesion.apps.whole_scan.store_back import (store_scan_results,
                                                     store_started_file)
    shard = tmp_path / 'shard_000'
    result = shard / '1.2.3'
    result.mkdir(parents=True)
    ds = pydicom.Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = '1.2', '1.2.9'
    ds.SOPInstanceUID = '1.2.9.1'
    ds.SOPClassUID = pydicom.uid.ComprehensiveSRStorage
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(str(result / 'findings_sr.dcm'), enforce_file_format=True)
    (result / 'findings.json').write_text(json.dumps(
        dict(dicom=dict(written=True, sr='findings_sr.dcm'))))

    class Killed:
        def holds_instance(self, *args):
            return False

        def holds_series(self, *args):
            return True

        def store(self, ds, what):
            raise DicomServerError('killed while storing')

    found = FoundSeries(to_run=[SeriesRef('1.2', '1.2.3')], skipped=[])
    work = SeriesWork(object(), found)
    with pytest.raises(DicomServerError):
        store_scan_results(Killed(), SeriesRef('1.2', '1.2.3'), result)
    started = store_started_file(result, 'sr')
    assert started.read_text() == '1.2.9.1\n'
    work.round_ended([shard])
    assert ('1.2.3', 'sr') in work._stored
    # a record older than this run (an earlier command's) is not its own
    old = time.time() - 3600
    os.utime(started, (old, old))
    work = SeriesWork(object(), found)
    work.round_ended([shard])
    assert ('1.2.3', 'sr') not in work._stored
