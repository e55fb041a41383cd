# Copyright (c) mmlesion contributors. All rights reserved.
"""Lesion type of 3D findings (mmlesion.apis.whole_scan.stack)."""
import numpy as np
import pytest
import torch

from mmlesion.apis.whole_scan.stack import (add_lesion_types,
                                            lesion_type_classes)
from mmlesion.datasets.deeplesion.dl_info import COARSE_LESION_TYPES
from tests.helpers.volume_demo import finding_of_boxes


def _model(classes):
    model = torch.nn.Linear(1, 1)
    model.dataset_meta = dict(classes=classes)
    return model


def test_only_lesion_type_classes_count():
    assert lesion_type_classes(_model(COARSE_LESION_TYPES)) == list(
        COARSE_LESION_TYPES)
    assert lesion_type_classes(_model(('lesion', ))) is None
    assert lesion_type_classes(_model(('person', 'bicycle'))) is None
    assert lesion_type_classes(torch.nn.Linear(1, 1)) is None


def test_type_is_the_best_summed_score_of_the_2d_boxes():
    boxes = [np.array([[0., 0., 5., 5.], [10., 10., 20., 20.]]),
             np.array([[10.001, 10., 20., 20.]]),
             np.array([[10., 10., 20., 20.]])]
    labels = [np.array([0, 3]), np.array([4]), np.array([4])]
    finding = finding_of_boxes(1, [
        dict(slice=0, bbox=[10., 10., 20., 20.], score=.9),
        dict(slice=1, bbox=[10., 10., 20., 20.], score=.5),
        dict(slice=2, bbox=[10., 10., 20., 20.], score=.5)])
    add_lesion_types([finding], boxes, labels, COARSE_LESION_TYPES)
    assert finding.lesion_type == 'lung'  # 0.5 + 0.5 > 0.9 (liver)
    finding.boxes_2d[0].bbox = [1., 1., 2., 2.]
    with pytest.raises(ValueError, match='finding 1: its box'):
        add_lesion_types([finding], boxes, labels, COARSE_LESION_TYPES)


def test_findings_below_the_operating_point_stay_candidates_byte_for_byte(
        tmp_path):
    """Kept at an operating point, a scan of many low-score boxes writes
    the ``candidates.csv`` of keeping every finding, byte for byte, and
    each kept finding as that run wrote it (only the kept ones become
    findings; the others are candidates computed as arrays)."""
    import json
    from dataclasses import replace

    from mmlesion.apis.whole_scan.infer import ScanSteps, infer_volume
    from mmlesion.apis.whole_scan.run import volume_run_config
    from mmlesion.apis.whole_scan.settings import (DetectionSettings,
                                                   RunSettings)
    from mmlesion.apis.whole_scan.write import write_volume_results
    from projects.study_demo.synthetic.volumes import generate_demo_volumes
    from mmlesion.datasets.volumes import load_ct_volume
    from mmlesion.testing import repo_root
    from projects.benchmarks.stand_in_detector import StandInDetector
    from tests.helpers.volume_demo import DEMO_CFG

    generate_demo_volumes(tmp_path / 'scans', seed=2, num_luna=1, num_kits=0,
                          num_lits=0, val_fraction=0., size_range=(72, 72),
                          num_slices_range=(10, 10))
    volume = load_ct_volume(next((tmp_path / 'scans').rglob('*.mhd')))
    run = RunSettings(detection=DetectionSettings(show_progress=False),
                      pixel_spacing=1., cfg_name=DEMO_CFG)
    settings = volume_run_config(str(repo_root() / 'configs' / DEMO_CFG),
                                 run).settings
    model = StandInDetector(0., 3, centre_range=(20., 40.),
                            half_range=(4., 10.), low_boxes=12)
    written = {}
    for name, keep_thr in (('every', None), ('kept', .3)):
        result = infer_volume(model, volume, settings,
                              replace(run.detection, keep_thr=keep_thr),
                              steps=ScanSteps(measure=False))
        write_volume_results(result, tmp_path / name, max_pictures=0)
        written[name] = ((tmp_path / name / 'candidates.csv').read_bytes(),
                         json.loads((tmp_path / name /
                                     'findings.json').read_text()))
    (every_csv, every), (kept_csv, kept) = written['every'], written['kept']
    assert kept_csv == every_csv
    assert len(every_csv.splitlines()) == len(every['findings']) + 1 > 50
    best = {f['id']: max(b['score'] for b in f['boxes_2d'])
            for f in every['findings']}
    assert 0 < len(kept['findings']) < len(every['findings']) / 10
    assert kept['findings'] == [f for f in every['findings']
                                if best[f['id']] >= .3]
