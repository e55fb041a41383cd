# Copyright (c) mmlesion contributors. All rights reserved.
"""A scan's result and its findings as types, and as ``findings.json``
writes them (mmlesion.apis.whole_scan.results)."""
import json
import warnings

import numpy as np
import pytest

from mmlesion.apis import Box2D as ApiBox2D
from mmlesion.apis import Finding as ApiFinding
from mmlesion.apis import RecistMeasurement as ApiRecistMeasurement
from mmlesion.apis import ScanGeometry as ApiScanGeometry
from mmlesion.apis.whole_scan.measure import measure_findings
from mmlesion.apis.whole_scan.results import (FINDINGS_SCHEMA_VERSION, Box2D,
                                              DicomStatus, Finding,
                                              RecistMeasurement,
                                              ScanGeometry, ScanResult)
from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                               VolumeInferenceSettings)
from mmlesion.apis.whole_scan.stack import stack_findings
from mmlesion.datasets.volumes import CTVolume
from tests.helpers.scan_pictures import BARE_PROVENANCE
from tests.helpers.volume_demo import finding_of_boxes

#: ``findings.json``'s keys of a finding, in their order.
FINDING_KEYS = ['id', 'score', 'center_world', 'bbox_world', 'bbox_voxel',
                'bbox_voxel_resampled', 'largest_box_side_mm', 'diameter_mm',
                'slice_range', 'key_slice', 'slice_range_original',
                'boxes_2d', 'recist']
#: ``findings.json``'s keys of a finding's ``recist``, in their order.
RECIST_KEYS = ['long_axis_mm', 'short_axis_mm', 'area_mm2', 'mask_source',
               'key_slice', 'key_slice_original', 'long_axis_voxel',
               'short_axis_voxel', 'outline_voxel', 'long_axis_resampled',
               'short_axis_resampled']
#: A finding's ``recist`` as ``findings.json`` writes it.
RECIST = dict(long_axis_mm=12.5, short_axis_mm=8.25, area_mm2=80.5,
              mask_source='grabcut', key_slice=3, key_slice_original=1,
              long_axis_voxel=[[1., 2.], [4., 6.]],
              short_axis_voxel=[[2., 5.], [3., 3.]],
              outline_voxel=[[1., 2.], [5., 2.], [5., 6.]],
              long_axis_resampled=[[1.5, 2.], [4.5, 6.]],
              short_axis_resampled=[[2.5, 5.], [3.5, 3.]])
#: A scan's geometry as ``findings.json`` writes it.
GEOMETRY = dict(shape_zyx=[4, 8, 8], spacing_zyx=[2., 1., 1.],
                origin_xyz=[0., 0., 0.],
                direction=[1., 0., 0., 0., 1., 0., 0., 0., 1.])


def _finding(**extra) -> Finding:
    finding = finding_of_boxes(2, [dict(slice=3, bbox=[1., 2., 5., 6.],
                                        score=.7)])
    finding.largest_box_side_mm = 4.5
    for key, value in extra.items():
        setattr(finding, key, value)
    return finding


def _result(**extra) -> ScanResult:
    geometry = ScanGeometry(**GEOMETRY)
    return ScanResult(
        scan='a.nii.gz', series_uid='a', original=geometry,
        resampled_geometry=geometry,
        settings=VolumeInferenceSettings(3, 2., 1., (-1024., 1050.),
                                         [dict(type='LoadVolumeSlices')]),
        detection=DetectionSettings(batch_size=8, workers=1),
        device='cpu', num_slices=4, num_boxes_2d=1, detect_seconds=.5,
        slices_per_second=8., findings=[_finding()], **extra)


def test_a_relaxed_scan_check_is_recorded_in_the_settings():
    """Default checks add nothing to findings.json; a relaxed one is
    named there."""
    from dataclasses import replace

    from mmlesion.datasets.volumes.scan_switches import ScanChecks
    strict = ScanChecks(False, False, False)
    result = _result()
    result.settings = replace(result.settings, scan_checks=strict)
    assert 'scan_checks' not in result.to_dict()['settings']
    result.settings = replace(result.settings,
                              scan_checks=replace(strict, force_ct=True))
    assert result.to_dict()['settings']['scan_checks'] == dict(
        force_ct=True, resample_nonuniform=False, allow_outside_data=False)


def test_diameter_mm_is_deprecated_for_largest_box_side_mm():
    finding = _finding()
    with pytest.warns(DeprecationWarning, match='largest_box_side_mm'):
        assert finding.diameter_mm == 4.5
    with warnings.catch_warnings():  # the file keeps the old name, silently
        warnings.simplefilter('error')
        record = finding.to_dict()
        assert finding.largest_box_side_mm == 4.5
    assert record['diameter_mm'] == record['largest_box_side_mm'] == 4.5
    assert ApiFinding is Finding


def test_a_finding_writes_its_keys_in_the_order_of_the_file():
    assert list(_finding().to_dict()) == FINDING_KEYS
    full = _finding(score_parts=dict(s_lens=.6, s_fpr=.8),
                    lesion_type='lung',
                    key_slice_png='key_slices/finding_002.png').to_dict()
    assert list(full) == (FINDING_KEYS[:2] + ['s_lens', 's_fpr']
                          + FINDING_KEYS[2:] + ['lesion_type',
                                                'key_slice_png'])
    assert json.loads(json.dumps(full))['recist'] is None


def test_a_result_writes_the_schema_version_and_what_it_recorded():
    bare = _result().to_dict()  # infer_volume alone: no run record
    assert list(bare)[:2] == ['schema_version', 'scan']
    assert bare['schema_version'] == FINDINGS_SCHEMA_VERSION == 1
    assert 'model_warning' not in bare and 'provenance' not in bare
    assert 'dicom' not in bare and 'resampled' not in bare
    assert bare['settings'] == dict(
        num_slices=3, interval_mm=2., pixel_spacing=1.,
        window=(-1024., 1050.), pixel_spacing_source='config', sources={},
        batch_size=8,
        workers=1, worker_type='thread', resample_backend='torch',
        score_thr=.05, iou_thr=.5, max_gap=0, min_slices=1, contain_thr=None,
        join_gap=None, merge_iou=None, merge_inside=None, fpr=None)
    run = _result(model_warning=None, provenance=BARE_PROVENANCE,
                  model_settings=dict(experts=[1]), rescored_by='fpr.py',
                  dicom=DicomStatus(False)).to_dict()
    assert list(run)[:3] == ['model_warning', 'schema_version', 'scan']
    assert list(run)[-3:] == ['findings', 'provenance', 'dicom']
    assert run['settings']['experts'] == [1]
    assert run['settings']['fpr'] == 'fpr.py'
    assert list(run['settings'])[-2:] == ['fpr', 'experts']


@pytest.mark.parametrize('cls, record', [
    (Box2D, dict(slice=3, bbox=[1., 2., 5., 6.], score=.7)),
    (RecistMeasurement, RECIST), (ScanGeometry, GEOMETRY)])
def test_a_record_round_trips_through_its_dict(cls, record):
    obj = cls.from_dict(record)
    assert isinstance(obj, cls)
    out = obj.to_dict()
    assert list(out) == list(record) and out == record
    assert json.dumps(out) == json.dumps(record)
    assert cls.from_dict(out) == obj
    with pytest.raises(TypeError):
        cls.from_dict(dict(record, extra=1))
    assert (ApiBox2D, ApiRecistMeasurement, ApiScanGeometry) == (
        Box2D, RecistMeasurement, ScanGeometry)


def test_a_finding_holds_records_and_writes_their_dicts():
    box = dict(slice=3, bbox=[1., 2., 5., 6.], score=.7)
    finding = _finding(recist=RecistMeasurement(**RECIST))
    assert finding.boxes_2d == [Box2D(**box)]
    assert finding.boxes_2d[0].area == 16.
    record = finding.to_dict()
    assert record['boxes_2d'] == [box] and record['recist'] == RECIST
    assert list(record['recist']) == RECIST_KEYS
    # the records are the findings.json dicts, read back
    again = Finding(**dict(vars(finding),
                           recist=RecistMeasurement.from_dict(RECIST)))
    assert again == finding and again.to_dict() == record


def test_a_result_holds_geometries_and_writes_their_dicts():
    result = _result()
    assert result.original == ScanGeometry(**GEOMETRY)
    record = result.to_dict()
    assert record['original'] == record['resampled_geometry'] == GEOMETRY
    assert list(record['original']) == list(GEOMETRY)
    again = ScanResult(**dict(
        vars(result), original=ScanGeometry.from_dict(GEOMETRY),
        resampled_geometry=ScanGeometry.from_dict(dict(GEOMETRY))))
    assert again.to_dict() == record


def test_the_geometry_of_a_volume():
    direction = np.array([[0., 1., 0.], [1., 0., 0.], [0., 0., 1.]])
    volume = CTVolume(np.zeros((3, 5, 4), np.float32), (2.5, .7, .8),
                      (-10., 20., 30.), direction)
    geometry = ScanGeometry.from_volume(volume)
    assert geometry == ScanGeometry(
        shape_zyx=[3, 5, 4], spacing_zyx=[2.5, .7, .8],
        origin_xyz=[-10., 20., 30.],
        direction=[0., 1., 0., 1., 0., 0., 0., 0., 1.])
    assert all(type(v) is int for v in geometry.shape_zyx)
    assert all(type(v) is float for v in geometry.spacing_zyx
               + geometry.origin_xyz + geometry.direction)


def test_stacked_and_measured_findings_hold_records():
    """:func:`stack_findings` gives :class:`Box2D` s and
    :func:`measure_findings` a :class:`RecistMeasurement` (from the
    model's lesion map)."""
    volume = CTVolume(np.full((4, 40, 40), 60., np.float32), (2., 1., 1.),
                      (0., 0., 0.))
    box = np.array([[10., 12., 24., 22.]])
    boxes = [np.zeros((0, 4)), box, box + [[-1, -1, 1, 1]], np.zeros((0, 4))]
    scores = [np.zeros(0), np.array([.9]), np.array([.8]), np.zeros(0)]
    stacked = stack_findings(boxes, scores, volume, volume,
                             DetectionSettings(show_progress=False))
    findings, candidates = stacked.kept, stacked.candidates
    assert len(findings) == len(candidates) == 1
    assert candidates.scores.tolist() == [.9]
    assert candidates.centres_world.tolist() == [findings[0].center_world]
    (finding, ) = findings
    assert all(isinstance(b, Box2D) for b in finding.boxes_2d)
    assert [(b.slice, b.score) for b in finding.boxes_2d] == [(1, .9),
                                                              (2, .8)]
    assert finding.recist is None
    maps = [np.zeros((40, 40), bool) for _ in range(4)]
    for z in (1, 2):
        maps[z][14:21, 12:23] = True
    measure_findings(findings, volume, volume, maps, workers=1)
    rec = finding.recist
    assert isinstance(rec, RecistMeasurement)
    assert rec.mask_source == 'model' and rec.key_slice == 2  # largest
    assert list(finding.to_dict()['recist']) == RECIST_KEYS
    assert finding.to_dict()['boxes_2d'][0] == dict(
        slice=1, bbox=[10., 12., 24., 22.], score=.9)


def test_records_copy_their_fields_as_asdict_does():
    """A record's dict (copied without ``asdict`` for plain values) is
    ``asdict``'s: equal, of the same types, sharing no list; a field that
    is not plain (a numpy value) goes through ``asdict``."""
    import dataclasses
    box = Box2D(3, [1., 2.5, 7., 9.], .75)
    rec = RecistMeasurement(
        long_axis_mm=6.1, short_axis_mm=5.2, area_mm2=22.,
        mask_source='grabcut', key_slice=3, key_slice_original=4,
        long_axis_voxel=[[1., 2.], [3., 4.]],
        short_axis_voxel=[[1., 4.], [3., 2.]],
        outline_voxel=[[1., 2.], [3., 4.], [1., 4.]],
        long_axis_resampled=[[1., 2.], [3., 4.]],
        short_axis_resampled=[[1., 4.], [3., 2.]])
    odd = Box2D(np.int64(3), np.array([1., 2., 3., 4.]), np.float32(.5))
    for record in (box, rec, odd):
        out, expected = record.to_dict(), dataclasses.asdict(record)
        assert list(out) == list(expected)
        for key, value in expected.items():
            assert type(out[key]) is type(value)
            assert np.array_equal(out[key], value)
    assert box.to_dict()['bbox'] is not box.bbox
    assert rec.to_dict()['outline_voxel'][0] is not rec.outline_voxel[0]


def test_a_result_records_the_threads_it_ran_with(monkeypatch):
    """``findings.json``'s ``threads``: torch's count and the OpenMP
    variables of the process when the result is made."""
    import torch

    from mmlesion.apis.whole_scan.results import ThreadUse
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    monkeypatch.delenv('OMP_WAIT_POLICY', raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(1 if before > 1 else 2)
    try:
        use = ThreadUse.now()
        assert use.to_dict() == dict(torch_threads=torch.get_num_threads(),
                                     omp_num_threads='1',
                                     omp_wait_policy=None)
    finally:
        torch.set_num_threads(before)
    assert use.torch_threads != before
