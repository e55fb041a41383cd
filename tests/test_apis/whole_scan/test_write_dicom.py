# Copyright (c) mmlesion contributors. All rights reserved.
"""DICOM results of infer_volume: TID 1500 SR and SEG
(mmlesion.apis.whole_scan.write_dicom)."""
import copy
import importlib.util
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmlesion.apis.whole_scan import dicom_sources, write_dicom
from mmlesion.apis.whole_scan.model import DEMO_MODEL_WARNING
from mmlesion.apis.whole_scan.run import run_volume_inference
from mmlesion.apis.whole_scan.settings import DetectionSettings, RunSettings
from mmlesion.apis.whole_scan.write_dicom import (NO_MASKS,
                                                  DicomResultsError,
                                                  prepare_dicom_results,
                                                  read_source_instances,
                                                  require_highdicom,
                                                  write_dicom_results)
from mmlesion.datasets.volumes import CTVolume, load_ct_volume
from mmlesion.testing import get_config, repo_root, shared_data_root
from mmlesion.testing.volume_files import (SeriesLayout, write_dicom_series,
                                           write_volume)
from tests.helpers.stub_seg_detector import StubSegDetector, stub_threshold

hd = pytest.importorskip('highdicom')
pydicom = pytest.importorskip('pydicom')

DEMO_CFG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
SERIES = '1.2.826.0.1.3680043.8.498.77'
SPACING = (0.9, 0.9, 2.5)  # x, y, z of the synthetic series
REAL_DICOM = 'ct_volumes/totalsegmentator/example_ct_dicom'


def _blocks():
    """0 HU, air (-1000 HU) at the left and right edges as around a body
    (the scan checks want air), two 200 HU blocks (the lesions) on some
    slices."""
    array = np.zeros((10, 40, 48), np.int16)
    array[:, :, :3] = array[:, :, -3:] = -1000
    array[3:7, 8:18, 10:24] = 200  # 4 slices of 10 x 14 px
    array[5:8, 26:32, 30:38] = 200  # 3 slices of 6 x 8 px
    return array


def _stub(hu_thr=100., largest_only=False):
    cfg = get_config(DEMO_CFG)
    return cfg, StubSegDetector(stub_threshold(cfg, hu_thr), largest_only)


def _series(folder, edit=None):
    write_dicom_series(str(folder), SERIES, _blocks(),
                       SeriesLayout(SPACING, origin_xyz=(-20., 10., -100.)))
    if edit is not None:
        for path in sorted(folder.glob('*.dcm')):
            ds = pydicom.dcmread(str(path))
            edit(ds)
            ds.save_as(str(path))
    return folder


def _settings(dicom='yes', max_pictures=20):
    return RunSettings(
        detection=DetectionSettings(show_progress=False), pixel_spacing=1.2,
        dicom=dicom, cfg_name=DEMO_CFG, max_pictures=max_pictures)


def _run(tmp_path, scan, name='out', dicom='yes', stub=(), max_pictures=20):
    cfg, model = _stub(*stub)
    ckpt = tmp_path / 'stub.pth'
    if not ckpt.exists():
        torch.save(dict(state_dict=model.state_dict()), ckpt)
    torch.set_num_threads(1)
    return run_volume_inference(
        cfg, str(ckpt), str(scan), out_dir=str(tmp_path / name),
        run_settings=_settings(dicom, max_pictures), model=model)


@pytest.fixture(scope='module')
def written(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('dicom')
    scan = _series(tmp / 'series')
    result = _run(tmp, scan)
    return tmp, scan, result


def _image_to_voxels(volume, ds, graphic_data):
    """SCOORD (column, row) on an instance -> (z, y, x) voxels of the scan
    read by load_ct_volume (through world coordinates)."""
    transform = hd.spatial.ImageToReferenceTransformer(
        image_position=[float(v) for v in ds.ImagePositionPatient],
        image_orientation=[float(v) for v in ds.ImageOrientationPatient],
        pixel_spacing=[float(v) for v in ds.PixelSpacing])
    return volume.world_to_voxel(transform(np.asarray(graphic_data)))


def test_sr_regions_map_to_the_voxels_of_findings_json(written):
    tmp, scan, result = written
    record = json.loads((tmp / 'out' / 'findings.json').read_text())
    assert record['dicom']['written'] and record['dicom']['sr']
    findings = {f['id']: f for f in record['findings']}
    assert len(findings) == 2  # the two blocks
    sr = hd.sr.srread(str(tmp / 'out' / 'findings_sr.dcm'))
    assert sr.SOPClassUID == '1.2.840.10008.5.1.4.1.1.88.34'  # Comp. 3D SR
    sources = {str(pydicom.dcmread(str(p)).SOPInstanceUID): pydicom.dcmread(
        str(p)) for p in scan.glob('*.dcm')}
    volume = load_ct_volume(str(scan))
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(findings)
    for group in groups:
        fid = int(str(group.tracking_identifier).split()[-1])
        rec = findings[fid]['recist']
        region = group.roi
        ref = region.ContentSequence[0].ReferencedSOPSequence[0]
        ds = sources[ref.ReferencedSOPInstanceUID]  # a source instance
        assert ref.ReferencedSOPClassUID == ds.SOPClassUID
        zyx = _image_to_voxels(volume, ds, region.value)
        # the region lies on the key slice, on the outline of findings.json
        assert np.allclose(zyx[:, 0], rec['key_slice_original'], atol=1e-3)
        outline = np.array(rec['outline_voxel'])
        assert np.allclose(zyx[:-1, [2, 1]], outline, atol=2e-3)
        assert np.allclose(zyx[-1], zyx[0])  # closed
        values = {m.name.meaning: m.value for m in group.get_measurements()}
        assert values['Long axis'] == pytest.approx(rec['long_axis_mm'])
        assert values['Short axis'] == pytest.approx(rec['short_axis_mm'])
        assert values['Certainty of Finding'] == pytest.approx(
            findings[fid]['score'])
        x1, y1, z1, x2, y2, z2 = findings[fid]['bbox_world']
        assert values['Height'] == pytest.approx(z2 - z1, abs=1e-3)
        # the lesion type as the finding site
        (site, ) = group.finding_sites
        assert site.value.meaning.lower() == findings[fid]['lesion_type']
    # the first block: 14 x 10 px of 0.9 mm; its outline covers the block
    big = findings[1]['recist']
    assert findings[1]['lesion_type'] == 'liver'
    assert findings[2]['lesion_type'] == 'lung'
    assert big['mask_source'] == 'model'
    assert big['long_axis_mm'] == pytest.approx(np.hypot(14, 10) * .9,
                                                abs=1.5)
    # the model is the observer device: config and checkpoint checksum
    dump = [str(e.value) for e in sr.iterall()]
    assert 'faster-rcnn_r18_fpn_36e_deeplesion-demo.py' in dump
    assert record['dicom']['sr_sop_instance_uid'] == sr.SOPInstanceUID
    import hashlib
    digest = hashlib.sha256((tmp / 'stub.pth').read_bytes()).hexdigest()
    assert digest in dump
    # demo weights: the SR says so where a viewer lists it and in its
    # content, as the report does
    assert record['model_warning'] == DEMO_MODEL_WARNING
    assert sr.SeriesDescription == ('mmlesion findings - DEMO WEIGHTS, NOT '
                                    'CLINICAL')
    assert f'WARNING: model {DEMO_MODEL_WARNING}' in dump


def test_seg_holds_the_masks_on_the_source_instances(written):
    tmp, scan, result = written
    seg = hd.seg.segread(str(tmp / 'out' / 'findings_seg.dcm'))
    record = json.loads((tmp / 'out' / 'findings.json').read_text())
    assert record['dicom']['seg_findings'] == [1, 2]
    assert 'seg_reason' not in record['dicom']
    assert seg.number_of_segments == 2
    assert 'DEMO WEIGHTS' in seg.SeriesDescription
    for segment in seg.SegmentSequence:
        (algorithm, ) = segment.SegmentationAlgorithmIdentificationSequence
        assert DEMO_MODEL_WARNING in str(algorithm.AlgorithmParameters)
    sources = {str(pydicom.dcmread(str(p)).SOPInstanceUID): p
               for p in scan.glob('*.dcm')}
    refs = {item.ReferencedSOPInstanceUID
            for series in seg.ReferencedSeriesSequence
            for item in series.ReferencedInstanceSequence}
    assert refs and refs <= set(sources)
    # the masks, mapped back to the scan's voxels, are the two blocks
    volume = load_ct_volume(str(scan))
    truth = _blocks() > 0
    got = np.zeros(truth.shape, bool)
    for uid in refs:
        ds = pydicom.dcmread(str(sources[uid]))
        z = int(round(volume.world_to_voxel(
            [float(v) for v in ds.ImagePositionPatient])[0, 0]))
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=[uid], segment_numbers=[1, 2],
            combine_segments=True)[0]
        got[z] |= pixels > 0
    dice = 2 * (got & truth).sum() / (got.sum() + truth.sum())
    assert dice > .85, dice


def test_an_sr_without_seg_says_why(written, tmp_path):
    """A model without masks: the SR alone, and findings.json's null
    ``seg`` comes with its reason."""
    tmp, scan, result = written
    no_masks = copy.copy(result)
    no_masks.lesion_maps = None
    sources = read_source_instances(load_ct_volume(str(scan)))
    status = write_dicom_results(no_masks, load_ct_volume(str(scan)),
                                 sources, tmp_path, dict(config=DEMO_CFG))
    record = status.to_dict()
    assert record['written'] and record['seg'] is None
    assert record['seg_reason'] == NO_MASKS
    assert list(record)[:5] == ['written', 'sr', 'sr_sop_instance_uid',
                                'seg', 'seg_reason']
    assert not (tmp_path / 'findings_seg.dcm').exists()


def _dciodvfy_errors(path):
    proc = subprocess.run(['dciodvfy', str(path)], capture_output=True,
                          text=True, timeout=60)
    return [line for line in (proc.stdout + proc.stderr).splitlines()
            if line.startswith('Error')]


@pytest.mark.skipif(shutil.which('dciodvfy') is None,
                    reason='dciodvfy (dicom3tools) not installed')
def test_dciodvfy_finds_no_error(written):
    tmp, _, _ = written
    for name in ('findings_sr.dcm', 'findings_seg.dcm'):
        assert not _dciodvfy_errors(tmp / 'out' / name), name


def test_blank_instance_uids_come_from_the_file_meta(tmp_path, monkeypatch):
    def blank(ds):
        ds.SOPInstanceUID = ''
        ds.SOPClassUID = ''

    scan = _series(tmp_path / 'series', blank)
    volume = load_ct_volume(str(scan))
    logged = []
    monkeypatch.setattr(dicom_sources, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    sources = read_source_instances(volume)
    # the warning counts files (10), not attribute x file (20)
    assert len(logged) == 1
    assert 'SOPClassUID, SOPInstanceUID blank in 10 of 10 files' in logged[0]
    for ds in sources:
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert ds.SOPClassUID == '1.2.840.10008.5.1.4.1.1.2'  # CT Image
    result = _run(tmp_path, scan, max_pictures=0)
    sr = hd.sr.srread(str(tmp_path / 'out' / 'findings_sr.dcm'))
    uids = {ds.SOPInstanceUID for ds in sources}
    for group in sr.content.get_planar_roi_measurement_groups():
        uid = group.roi.ContentSequence[0].ReferencedSOPSequence[
            0].ReferencedSOPInstanceUID
        assert uid in uids
    assert result.dicom.written


def test_blank_study_uid_is_refused(tmp_path):
    def blank(ds):
        ds.StudyInstanceUID = ''

    scan = _series(tmp_path / 'series', blank)
    volume = load_ct_volume(str(scan))
    with pytest.raises(DicomResultsError, match='StudyInstanceUID in 10 of '
                       '10 files'):
        prepare_dicom_results(volume, 'yes', tmp_path / 'o')
    # auto: the other results, no DICOM, the reason recorded
    result = _run(tmp_path, scan, dicom='auto', max_pictures=0)
    assert not result.dicom.written
    assert 'StudyInstanceUID' in result.dicom.reason
    assert (tmp_path / 'out' / 'findings.json').is_file()
    assert not list((tmp_path / 'out').glob('*.dcm'))


def test_instances_that_are_not_the_scan_are_refused(tmp_path):
    scan = _series(tmp_path / 'series')
    volume = load_ct_volume(str(scan))
    other = CTVolume(volume.array[:5], volume.spacing_zyx,
                     volume.origin_xyz, meta=dict(volume.meta))
    with pytest.raises(DicomResultsError, match='not one slice'):
        read_source_instances(other)


def test_non_dicom_input_says_dicom_results_need_dicom(tmp_path, capsys):
    nii = write_volume(str(tmp_path / 'scan.nii.gz'), _blocks())
    volume = load_ct_volume(nii)
    with pytest.raises(DicomResultsError, match='need a DICOM series'):
        prepare_dicom_results(volume, 'yes', tmp_path / 'o')
    plan = prepare_dicom_results(volume, 'auto', tmp_path / 'o')
    assert plan.sources is None
    assert 'need a DICOM series' in plan.status.reason
    assert prepare_dicom_results(
        volume, 'no', tmp_path / 'o').status.reason == 'not requested'
    with pytest.raises(ValueError, match='dicom must be'):
        prepare_dicom_results(volume, 'always', tmp_path / 'o')
    # the CLI: --dicom yes on a NIfTI fails before detecting, plainly
    spec = importlib.util.spec_from_file_location(
        'infer_volume', repo_root() / 'tools' / 'infer_volume.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(repo_root() / 'configs' / DEMO_CFG), 'none.pth',
                      nii, '--out-dir', str(tmp_path / 'cli'), '--dicom',
                      'yes']) == 1
    assert 'need a DICOM series folder' in capsys.readouterr().err


def test_existing_dicom_results_are_kept(written, tmp_path):
    tmp, scan, _ = written
    volume = load_ct_volume(str(scan))
    with pytest.raises(FileExistsError, match='findings_sr.dcm'):
        prepare_dicom_results(volume, 'auto', tmp / 'out')
    assert prepare_dicom_results(volume, 'auto', tmp / 'out',
                                 overwrite=True).sources


def test_missing_highdicom_says_how_to_install(monkeypatch, tmp_path):
    scan = _series(tmp_path / 'series')
    volume = load_ct_volume(str(scan))
    monkeypatch.setitem(sys.modules, 'highdicom', None)
    with pytest.raises(ImportError, match='pip install'):
        require_highdicom()
    # by default the run goes on without DICOM results, saying why
    plan = prepare_dicom_results(volume, 'auto', tmp_path / 'o')
    assert plan.sources is None
    assert 'need highdicom' in plan.status.reason
    with pytest.raises(ImportError, match='requirements/dicom.txt'):
        prepare_dicom_results(volume, 'yes', tmp_path / 'o')


def test_real_anonymised_series_is_refused_naming_the_attributes():
    root = shared_data_root()
    folder = None if root is None else root / REAL_DICOM
    if folder is None or not folder.is_dir():
        pytest.skip(f'{REAL_DICOM} not available')
    volume = load_ct_volume(str(folder))
    with pytest.raises(DicomResultsError) as err:
        prepare_dicom_results(volume, 'yes', '/nonexistent/out')
    text = str(err.value)
    assert 'StudyInstanceUID in 20 of 20 files' in text
    assert 'SeriesInstanceUID in 20 of 20 files' in text
    # the instance UIDs were recoverable from the file meta, so they are
    # not named
    assert 'SOPInstanceUID' not in text


@pytest.mark.skipif(shutil.which('dciodvfy') is None,
                    reason='dciodvfy (dicom3tools) not installed')
def test_real_series_with_its_study_uids_restored(tmp_path):
    """The real (JPEG 2000) series as an archive would hold it: Study and
    Series UIDs present, the instance UIDs only in the file meta. The SR
    and SEG reference the file-meta UIDs and pass dciodvfy."""
    root = shared_data_root()
    folder = None if root is None else root / REAL_DICOM
    if folder is None or not folder.is_dir():
        pytest.skip(f'{REAL_DICOM} not available')
    scan = tmp_path / 'series'
    scan.mkdir()
    for path in sorted(folder.iterdir()):
        ds = pydicom.dcmread(str(path))
        ds.StudyInstanceUID = '1.2.826.0.1.3680043.8.498.5'
        ds.SeriesInstanceUID = '1.2.826.0.1.3680043.8.498.6'
        ds.save_as(str(scan / (path.name + '.dcm')))
    # the largest bright (> 300 HU: bone) component of each slice
    result = _run(tmp_path, scan, stub=(300., True), max_pictures=0)
    assert result.findings
    assert result.dicom.written and result.dicom.seg
    meta_uids = {pydicom.dcmread(str(p)).file_meta.MediaStorageSOPInstanceUID
                 for p in scan.iterdir()}
    sr = hd.sr.srread(str(tmp_path / 'out' / 'findings_sr.dcm'))
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(result.findings)
    for group in groups:
        assert group.roi.ContentSequence[0].ReferencedSOPSequence[
            0].ReferencedSOPInstanceUID in meta_uids
    for name in ('findings_sr.dcm', 'findings_seg.dcm'):
        assert not _dciodvfy_errors(tmp_path / 'out' / name), name


def test_no_finding_no_report(tmp_path):
    """highdicom's TID 1500 needs a measurement group: without findings no
    SR, and findings.json says so."""
    scan = _series(tmp_path / 'series')
    result = _run(tmp_path, scan, stub=(300., ), max_pictures=0)
    assert not result.findings
    record = json.loads((tmp_path / 'out' / 'findings.json').read_text())
    assert not record['dicom']['written']
    assert 'no findings' in record['dicom']['reason']
    assert not list((tmp_path / 'out').glob('*.dcm'))


def test_a_batch_writes_each_series_its_sr_and_seg(written, tmp_path):
    """Two DICOM series in one batch (the files written in the writer
    thread): each folder gets the findings, the SR and the SEG of a run on
    that series alone."""
    from mmlesion.apps.whole_scan.batch import (BatchOptions,
                                                run_batch_inference)
    tmp, scan, single = written
    series = [shutil.copytree(scan, tmp_path / name)
              for name in ('series_a', 'series_b')]
    cfg, model = _stub()
    torch.set_num_threads(1)
    rows = run_batch_inference(cfg, None, [str(s) for s in series],
                               str(tmp_path / 'out'), _settings(),
                               options=BatchOptions(model=model))
    assert [r.status for r in rows] == ['done', 'done']
    expected = json.loads((tmp / 'out' / 'findings.json').read_text())
    for name in ('series_a', 'series_b'):
        out = tmp_path / 'out' / name
        record = json.loads((out / 'findings.json').read_text())
        assert record['findings'] == expected['findings']
        assert record['dicom']['written']
        sr = hd.sr.srread(str(out / 'findings_sr.dcm'))
        groups = sr.content.get_planar_roi_measurement_groups()
        assert len(groups) == len(record['findings']) == 2
        seg = hd.seg.segread(str(out / 'findings_seg.dcm'))
        assert len(seg.SegmentSequence) == 2


def test_the_series_is_named_by_its_description_and_number(tmp_path):
    """A DICOM series by its Series Description and Number beside its UID:
    in findings.json, the report's first lines and the console."""
    from mmlesion.apis.whole_scan.write import format_summary

    def named(ds):
        ds.SeriesDescription = 'CHEST 1.0 B31f'
        ds.SeriesNumber = 3

    scan = _series(tmp_path / 'series', named)
    assert write_dicom.series_names(str(scan), SERIES) == \
        write_dicom.SeriesNames('CHEST 1.0 B31f', 3)
    nii = write_volume(str(tmp_path / 'scan.nii.gz'), _blocks())
    assert write_dicom.series_names(nii, 'scan') == write_dicom.SeriesNames()
    result = _run(tmp_path, scan, dicom='no', max_pictures=0)
    record = json.loads((tmp_path / 'out' / 'findings.json').read_text())
    assert list(record)[2:6] == ['scan', 'series_uid', 'series_description',
                                 'series_number']
    assert (record['series_description'], record['series_number']) == (
        'CHEST 1.0 B31f', 3)
    text = f'CHEST 1.0 B31f (series number 3; UID {SERIES})'
    assert f'<b>series</b> {text}<br>' in (
        tmp_path / 'out' / 'report.html').read_text()
    assert f'series: {text}' in format_summary(result).splitlines()


def test_a_series_without_its_type_2_patient_attributes_gets_its_sr(
        tmp_path):
    """PatientBirthDate, PatientSex and the like (type 2: present, maybe
    empty) left out of the source files, as some exports do: the SR and
    SEG carry them empty instead of the run failing inside highdicom."""
    def strip(ds):
        for key in ('PatientBirthDate', 'PatientSex', 'ReferringPhysicianName',
                    'AccessionNumber', 'StudyID', 'StudyDate', 'StudyTime'):
            if key in ds:
                delattr(ds, key)

    scan = _series(tmp_path / 'series', strip)
    result = _run(tmp_path, scan)
    assert result.dicom.written, result.dicom
    sr = pydicom.dcmread(str(tmp_path / 'out' / 'findings_sr.dcm'))
    assert sr.PatientBirthDate == '' and sr.PatientSex == ''
    assert sr.PatientID == pydicom.dcmread(
        str(sorted(scan.glob('*.dcm'))[0])).PatientID
