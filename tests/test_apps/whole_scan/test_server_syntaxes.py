# Copyright (c) mmlesion contributors. All rights reserved.
"""Every transfer syntax an archive stores, retrieved from a real Orthanc
as stored (WADO-RS ``transfer-syntax=*``; C-GET proposing the compressed
contexts) and read to the HU of an uncompressed copy (the reference
reading of tests/helpers/dicom_reference.py); the real CT series as it
ships (JPEG 2000 Lossless) run through ``infer_volume --dicomweb``;
lossy-compressed CT read with a warning. Skipped without Orthanc
(tests/helpers/orthanc.py), except the tests that need no server."""
import csv
import os

import numpy as np
import pytest

from mmlesion.apps.whole_scan import dimse_source
from mmlesion.apps.whole_scan.dicomweb_source import DicomWebSettings
from mmlesion.apps.whole_scan.dimse_source import DimseError, DimseSettings
from mmlesion.apps.whole_scan.server_source import SeriesRef, retrieve_series
from mmlesion.datasets.volumes import load_ct_volume
from mmlesion.testing import shared_data_root
from tests.helpers import dicom_reference as ref
from tests.helpers.orthanc import (AET, CALLING_AET, PASSWORD, USER,
                                   OrthancServer, orthanc_missing)
from tests.helpers.tool_modules import load_tool
from tests.test_apps.whole_scan.test_dicomweb import (  # noqa: F401
    DEMO_CFG, REAL_DICOM, stub_detector)

pydicom = pytest.importorskip('pydicom')
import pydicom.encaps  # noqa: E402
pytest.importorskip('pynetdicom')
pytest.importorskip('highdicom')
from pydicom import uid as syntaxes  # noqa: E402

#: The syntaxes of the generated series (series UID ``SERIES.<index>``).
SYNTAXES = (syntaxes.JPEG2000Lossless, syntaxes.JPEGLSLossless,
            syntaxes.JPEGLosslessSV1, syntaxes.RLELossless,
            syntaxes.DeflatedExplicitVRLittleEndian,
            syntaxes.ExplicitVRBigEndian)
SERIES = ref.UID_ROOT + '85'
STUDY = ref.UID_ROOT + '1'
#: The real series as it ships (JPEG 2000 Lossless), its first slices.
REAL_SERIES, REAL_SLICES = SERIES + '.9', 4
#: Uncompressed, its files saying they were lossy-compressed once.
LOSSY_SERIES = SERIES + '.8'
N = 3


def _real_folder():
    root = shared_data_root()
    folder = None if root is None else root / REAL_DICOM
    if folder is None or not folder.is_dir():
        pytest.skip(f'{REAL_DICOM} not available')
    return folder


def _real_as_shipped(folder, out):
    """The first slices of the real series, its pixel data as it ships
    (JPEG 2000 Lossless), given the UIDs its anonymisation emptied (the
    SOP Class UID from its file meta)."""
    out.mkdir(parents=True)
    files = sorted(folder.iterdir())[:REAL_SLICES]
    paths = []
    for k, path in enumerate(files):
        ds = pydicom.dcmread(str(path))
        assert ds.file_meta.TransferSyntaxUID == syntaxes.JPEG2000Lossless
        ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, REAL_SERIES
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = f'{REAL_SERIES}.{k + 1}'
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.FrameOfReferenceUID = REAL_SERIES + '.0'
        ds.PatientID, ds.StudyDate = 'SYNTAX85', '20240105'
        paths.append(out / path.name)
        ds.save_as(str(paths[-1]), enforce_file_format=True)
    return paths


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """Orthanc holding the series of every syntax, the real series as it
    ships and the lossy-flagged one; the reference frames of each."""
    missing = orthanc_missing()
    if missing:
        pytest.skip(missing)
    tmp = tmp_path_factory.mktemp('syntaxes')
    real = _real_folder()
    stored = ref.real_stored_slices(str(real), N, 64)
    planes = ref.stack_planes(N)
    plain = ref.write_series(str(tmp / 'plain'), stored, planes)
    files = []
    for v, syntax in enumerate(SYNTAXES):
        files += ref.write_series(str(tmp / str(v)), stored, planes,
                                  series_uid=f'{SERIES}.{v}', syntax=syntax)
    files += ref.write_series(str(tmp / 'lossy'), stored, planes,
                              series_uid=LOSSY_SERIES, extra=dict(
                                  PatientBirthDate='', PatientSex='',
                                  LossyImageCompression='01',
                                  LossyImageCompressionRatio='12.5',
                                  LossyImageCompressionMethod='ISO_10918_1'))
    files += _real_as_shipped(real, tmp / 'real')
    with OrthancServer(tmp / 'server') as orthanc:
        orthanc.upload(files)
        yield orthanc, ref.reference_frames(plain), tmp


def _transport(orthanc, protocol):
    if protocol == 'dicomweb':
        return DicomWebSettings(orthanc.dicomweb, user=USER,
                                password=PASSWORD).connect()
    return DimseSettings(orthanc.dimse, AET, CALLING_AET).connect()


@pytest.mark.parametrize('protocol', ['dicomweb', 'dimse'])
def test_every_syntax_retrieved_and_read_exactly(server, protocol, tmp_path):
    """Each series comes back whole and reads to the HU of its
    uncompressed copy; over DICOMweb in the syntax the server stores (no
    transcoding asked for: Orthanc 1.10 cannot transcode JPEG 2000)."""
    orthanc, frames, tmp = server
    transport = _transport(orthanc, protocol)
    for v, syntax in enumerate(SYNTAXES):
        folder = retrieve_series(transport,
                                 SeriesRef(STUDY, f'{SERIES}.{v}', 'CT'),
                                 tmp_path / 'series')
        got = {pydicom.dcmread(str(p)).file_meta.TransferSyntaxUID
               for p in folder.iterdir()}
        if protocol == 'dicomweb':
            assert got == {syntax}, syntax.name
        ref.assert_matches_reference(load_ct_volume(str(folder)), frames)
    folder = retrieve_series(transport, SeriesRef(STUDY, REAL_SERIES, 'CT'),
                             tmp_path / 'series')
    assert {pydicom.dcmread(str(p)).file_meta.TransferSyntaxUID
            for p in folder.iterdir()} == {syntaxes.JPEG2000Lossless}
    original = load_ct_volume(str(tmp / 'real'))
    retrieved = load_ct_volume(str(folder))
    assert retrieved.array.shape == (REAL_SLICES, 512, 512)
    np.testing.assert_array_equal(retrieved.array, original.array)


def test_cget_refused_for_a_transfer_syntax_says_so(server, tmp_path,
                                                   monkeypatch):
    """A C-GET the server cannot send in a syntax we proposed (here: the
    compressed contexts withheld, Orthanc cannot transcode JPEG 2000)
    names the transfer syntax, not the C-GET permission; nothing kept."""
    orthanc, _, _ = server
    monkeypatch.setattr(dimse_source, 'compressed_syntaxes', lambda: ())
    transport = _transport(orthanc, 'dimse')
    with pytest.raises(DimseError) as err:
        retrieve_series(transport, SeriesRef(STUDY, f'{SERIES}.0', 'CT'),
                        tmp_path / 'series')
    assert str(err.value) == (
        f'--dimse {orthanc.dimse} ({AET}): C-GET series {SERIES}.0: the '
        'server could not send 1 instance(s) in a transfer syntax we accept '
        '(uncompressed, or one of the 0 compressed ones pydicom decodes '
        'here): it stores them in another one and cannot transcode it (its '
        "log names it): install pydicom's plugins (pip install -r "
        'requirements/runtime.txt); nothing kept')
    assert list((tmp_path / 'series').iterdir()) == []


def test_real_series_as_shipped_detected_and_stored(server, stub_detector,
                                                    tmp_path, capsys):
    """``infer_volume --dicomweb`` on the real JPEG 2000 series as it
    ships: retrieved, detected, its SR and SEG stored; then on the
    lossy-flagged one (``--no-store``): read with a warning that its HU
    are approximate."""
    orthanc, _, _ = server
    out = tmp_path / 'out'
    code = load_tool('infer_volume.py').main([
        DEMO_CFG, str(stub_detector), '--dicomweb', orthanc.dicomweb,
        '--dicomweb-user', USER, '--query', 'PatientID=SYNTAX85',
        '--out-dir', str(out), '--pixel-spacing', '4', '--score-thr', '0.5',
        '--max-pictures', '0', '--no-overlap'])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    rows = {r['series_uid']: r for r in csv.DictReader(
        open(out / 'server.csv'))}
    assert set(rows) == {REAL_SERIES}
    row = rows[REAL_SERIES]
    assert (row['status'], row['sr'], row['seg']) == ('done', 'stored',
                                                      'stored'), row
    assert int(row['findings']) > 0

    code = load_tool('infer_volume.py').main([
        DEMO_CFG, str(stub_detector), '--dicomweb', orthanc.dicomweb,
        '--dicomweb-user', USER, '--query',
        f'SeriesInstanceUID={LOSSY_SERIES}', '--out-dir', str(out), '--pixel-spacing', '4', '--score-thr', '0.5',
        '--max-pictures', '0', '--no-overlap', '--no-store'])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    folder = out / 'series' / LOSSY_SERIES
    assert (f'{folder}: {N} of its {N} DICOM files lossy-compressed '
            '(LossyImageCompression 01; method ISO_10918_1; ratio 12.5): its '
            'HU are approximate, and so are the findings') in \
        captured.out + captured.err


def test_lossy_compressed_ct_read_with_a_warning(tmp_path):
    """No server: LossyImageCompression 01 in every file, or in some, or a
    lossy JPEG syntax: one warning naming how many files; a lossless
    series: none."""
    from mmlesion.apis.whole_scan.read import lossy_compression
    stored = np.random.default_rng(0).integers(0, 2000, (N, 32, 32))
    planes = ref.stack_planes(N)
    lossless = ref.write_series(str(tmp_path / 'a'), stored, planes)
    assert lossy_compression(load_ct_volume(os.path.dirname(
        lossless[0]))) is None
    folder = tmp_path / 'b'
    folder.mkdir()
    for k in range(N):
        ref.write_slice(str(folder / f'IM{k}'), stored[k], planes[k],
                        ref.UID_ROOT + '2', k + 1, extra=dict(
                            LossyImageCompression='01' if k else '00'))
    volume = load_ct_volume(str(folder))
    assert lossy_compression(volume) == (
        f'{N - 1} of its {N} DICOM files lossy-compressed '
        '(LossyImageCompression 01): its HU are approximate, and so are '
        'the findings')
    # JPEG Extended is lossy whatever the files say (headers only read)
    for path in lossless:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = syntaxes.JPEGExtended12Bit
        ds.PixelData = pydicom.encaps.encapsulate([ds.PixelData])
        ds.save_as(path)
    volume.meta.update(first_file=lossless[0], series_uid=ref.UID_ROOT + '2')
    assert lossy_compression(volume) == (
        f'{N} of its {N} DICOM files lossy-compressed (LossyImageCompression '
        '01; transfer syntax JPEG Extended (Process 2 and 4)): its HU are '
        'approximate, and so are the findings')


def test_pydicom_decodes_every_syntax_an_archive_sends():
    """The decoders requirements/runtime.txt brings: each syntax a C-GET
    proposes and the ones the tests above store are decodable here."""
    from pydicom.pixels import get_decoder
    wanted = set(SYNTAXES) | {syntaxes.JPEGLossless, syntaxes.HTJ2KLossless,
                              syntaxes.JPEGBaseline8Bit,
                              syntaxes.JPEGLSNearLossless}
    missing = [u.name for u in wanted if not get_decoder(u).is_available]
    assert not missing, missing
    assert wanted - {syntaxes.DeflatedExplicitVRLittleEndian,
                     syntaxes.ExplicitVRBigEndian} <= set(
        dimse_source.compressed_syntaxes())
