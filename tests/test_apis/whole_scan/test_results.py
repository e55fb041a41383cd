# Copyright (c) mmlesion contributors. All rights reserved.
"""A scan's result and its findings as types, and as ``findings.json``
writes them (mmlesion.apis.whole_scan.results)."""
import json
import warnings

import pytest

from mmlesion.apis import Finding as ApiFinding
from mmlesion.apis.whole_scan.results import (FINDINGS_SCHEMA_VERSION,
                                              Finding, ScanResult)
from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                               VolumeInferenceSettings)
from tests.helpers.volume_demo import finding_of_boxes

#: ``findings.json``'s keys of a finding, in their order.
FINDING_KEYS = ['id', 'score', 'center_world', 'bbox_world', 'bbox_voxel',
                'bbox_voxel_resampled', 'largest_box_side_mm', 'diameter_mm',
                'slice_range', 'key_slice', 'slice_range_original',
                'boxes_2d', 'recist']


def _finding(**extra) -> Finding:
    finding = finding_of_boxes(2, [dict(slice=3, bbox=[1., 2., 5., 6.],
                                        score=.7)])
    finding.largest_box_side_mm = 4.5
    for key, value in extra.items():
        setattr(finding, key, value)
    return finding


def _result(**extra) -> ScanResult:
    geometry = dict(shape_zyx=[4, 8, 8], spacing_zyx=[2., 1., 1.],
                    origin_xyz=[0., 0., 0.],
                    direction=[1., 0., 0., 0., 1., 0., 0., 0., 1.])
    return ScanResult(
        scan='a.nii.gz', series_uid='a', original=geometry,
        resampled_geometry=geometry,
        settings=VolumeInferenceSettings(3, 2., 1., (-1024., 1050.),
                                         [dict(type='LoadVolumeSlices')]),
        detection=DetectionSettings(batch_size=8, workers=1),
        device='cpu', num_slices=4, num_boxes_2d=1, detect_seconds=.5,
        slices_per_second=8., findings=[_finding()], **extra)


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
    full = _finding(s_lens=.6, s_fpr=.8, lesion_type='lung',
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
        window=(-1024., 1050.), pixel_spacing_source='config', batch_size=8,
        workers=1, worker_type='thread', resample_backend='torch',
        score_thr=.05, iou_thr=.5, max_gap=0, min_slices=1, fpr=None)
    run = _result(model_warning=None, provenance=dict(checkpoint=None),
                  experts=[1], dicom=dict(written=False)).to_dict()
    assert list(run)[:3] == ['model_warning', 'schema_version', 'scan']
    assert list(run)[-3:] == ['findings', 'provenance', 'dicom']
    assert run['settings']['experts'] == [1]
    assert list(run['settings'])[-2:] == ['fpr', 'experts']
