# Copyright (c) mmlesion contributors. All rights reserved.
"""The per-scan calibration (calibrate.py) without a model: detected
scans stand in as their 2D boxes; the lesion steps chosen join a lesion
broken along z, the thresholds recorded in a checkpoint (its SHA-256
sidecar written anew), the scans of a split read."""
import json

import numpy as np
import pytest
import torch

from mmlesion.apis.whole_scan.calibrate import (
    LESION_STEP_GRID, DetectedScan, ScanTruth, calibrate_scans,
    lesion_step_candidates, read_scan_truths, record_in_checkpoint,
    score_thr_candidates)
from mmlesion.apis.whole_scan.settings import DetectionSettings
from mmlesion.datasets.volumes import CTVolume
from mmlesion.evaluation.functional.operating_points import (
    SCAN_OPERATING_POINTS_KEY, OperatingPoints)
from mmlesion.utils.checkpoints.checksum import read_checksum, sha256_file


def _scan(boxes_by_slice, lesions, depth=12):
    volume = CTVolume(np.zeros((depth, 40, 40), np.float32), (2., 1., 1.),
                      (0., 0., 0.))
    boxes = [np.array(boxes_by_slice.get(z, []), np.float64).reshape(-1, 5)
             for z in range(depth)]
    return DetectedScan(ScanTruth('s', 's.nii.gz', np.array(lesions, float)),
                        [b[:, :4] for b in boxes], [b[:, 4] for b in boxes],
                        volume, volume)


def test_the_steps_chosen_make_one_finding_of_a_broken_lesion():
    # a lesion on slices 2-9 whose boxes go missing on 5 and 6: two
    # fragments without joining; a stray on one slice elsewhere
    box = [10, 10, 20, 20]
    found = {z: [box + [.9 - .01 * z]] for z in (2, 3, 4, 7, 8, 9)}
    found[10] = [[30, 30, 36, 36, .5]]
    scans = [_scan(found, [[9.5, 9.5, 1.5, 20.5, 20.5, 9.5]])]
    grid = dict(LESION_STEP_GRID, max_gap=(0, ), contain_thr=(None, ),
                merge_inside=(None, ))
    calibration = calibrate_scans(scans, DetectionSettings(
        show_progress=False), grid, fp_rates=(.5, 1.), per_slice=(8., ))
    steps, result = calibration.lesion_steps, calibration.result
    assert result.sensitivities == [1., 1.]
    # one finding on the lesion, the stray dropped or left below it
    assert result.findings_per_lesion == [1., 1.]
    assert steps['join_gap'] == 2, steps
    # 7 boxes on 12 slices: 8 a slice keeps every box
    assert steps['score_thr'] == DetectionSettings.score_thr
    assert len(calibration.tried) == len(lesion_step_candidates(grid)) == 12
    points = calibration.operating_points('val.json, split val')
    assert points.fp_unit == 'scan' and points.lesion_steps == steps
    # the validation scans' number and extent along z (12 slices of 2 mm)
    assert (points.scans, points.scan_z_mm) == (1, 24.)
    assert OperatingPoints.from_dict(points.to_dict()) == points


def test_the_2d_score_step_stops_a_chain_through_the_scan():
    # a detector that scores the lesion's region a little above its
    # surroundings on every slice: the chain of all boxes spans the 20
    # slices and misses the lesion (slices 4-7) by IoBB (4/20); keeping the
    # best 0.2 boxes a slice leaves the lesion's own
    found = {z: [[10, 10, 20, 20, (.6 if z == 4 else .7) if 4 <= z <= 7
                  else .3]] for z in range(20)}
    found.update({z: found[z] + [[30, 30, 36, 36, .2]] for z in (1, 9)})
    scans = [_scan(found, [[9.5, 9.5, 3.5, 20.5, 20.5, 7.5]], depth=20)]
    detection = DetectionSettings(show_progress=False)
    # 22 boxes: 8 a slice keeps them all; the best 10 and 20 score >= .3
    assert score_thr_candidates(scans, detection, (None, 8., .5, 1.)) == [
        .05, .3]
    assert score_thr_candidates(scans, detection, (.2, )) == [.6]
    grid = {k: v[:1] for k, v in LESION_STEP_GRID.items()}
    calibration = calibrate_scans(scans, detection, grid, fp_rates=(.5, ),
                                  per_slice=(None, .2))
    assert calibration.lesion_steps['score_thr'] == .6
    assert calibration.result.sensitivities == [1.]
    assert [s for _, s in calibration.tried] == [0., 1.]
    # the validation never reaches .5 false findings a scan: every finding
    # the steps make is kept, down to their 2D score (not only those of
    # the validation's weakest finding's score, .7)
    assert calibration.result.thresholds == [.6]


def test_every_candidate_judged_as_alone():
    """The candidates that differ only in ``min_slices`` share a stacking
    (min_slices drops findings after the other steps): each candidate's
    sensitivity is that of its own run (:func:`judge_scans`), on scans of
    lesions broken along z, shifted fragments and strays of 1-3 slices."""
    from dataclasses import replace

    from mmlesion.apis.whole_scan.calibrate import judge_scans
    rng = np.random.default_rng(0)
    scans = []
    for _ in range(3):
        found, lesions = {}, []
        for _ in range(3):
            x, y, z0 = *rng.uniform(2, 28, 2), int(rng.integers(0, 14))
            lesions.append([x - .5, y - .5, z0 - .5, x + 8.5, y + 8.5,
                            z0 + 6.5])
            for z in range(z0, z0 + 7):
                if rng.random() < .7:
                    shift = rng.normal(0, 1.5, 2).tolist() * 2
                    found.setdefault(z, []).append(
                        list(np.add([x, y, x + 8, y + 8], shift)) +
                        [rng.random()])
        for z in rng.integers(0, 20, 6).tolist():
            x, y = rng.uniform(0, 34, 2)
            for dz in range(int(rng.integers(1, 4))):
                found.setdefault(min(z + dz, 19), []).append(
                    [x, y, x + 5, y + 5, rng.random() / 2])
        scans.append(_scan(found, lesions, depth=20))
    detection = DetectionSettings(show_progress=False)
    calibration = calibrate_scans(scans, detection, per_slice=(8., ))
    assert len(calibration.tried) == len(lesion_step_candidates())
    alone = [judge_scans(scans, replace(detection, **steps)
                         ).mean_sensitivity()
             for steps, _ in calibration.tried]
    assert [s for _, s in calibration.tried] == alone
    assert len(set(alone)) > 3  # the candidates differ


def test_a_record_without_the_2d_score_step_still_loads():
    record = OperatingPoints('scan', [4.], [.5], [.9], lesion_steps=dict(
        max_gap=1, min_slices=2, contain_thr=None, join_gap=None,
        merge_iou=.1)).to_dict()
    assert 'score_thr' not in OperatingPoints.from_dict(
        record).lesion_steps
    with pytest.raises(ValueError, match='lesion_steps'):
        OperatingPoints.from_dict(dict(record, lesion_steps=dict(
            max_gap=1, min_slices=2)))


def test_a_record_is_stored_whole_with_a_new_sidecar(tmp_path):
    from mmlesion.utils.checkpoints.checksum import write_checksum
    ckpt = tmp_path / 'best.pth'
    torch.save(dict(meta=dict(epoch=3), state_dict={'w': torch.ones(2)}),
               ckpt)
    write_checksum(str(ckpt))
    points = OperatingPoints('scan', [4.], [.5], [.9], lesion_steps=dict(
        max_gap=1, min_slices=2, contain_thr=None, join_gap=None,
        merge_iou=.1))
    record_in_checkpoint(str(ckpt), points)
    saved = torch.load(ckpt, weights_only=False)
    assert saved['meta']['epoch'] == 3
    assert torch.equal(saved['state_dict']['w'], torch.ones(2))
    assert OperatingPoints.from_dict(
        saved['meta'][SCAN_OPERATING_POINTS_KEY]) == points
    assert read_checksum(str(ckpt)) == sha256_file(str(ckpt))
    bad = tmp_path / 'list.pth'
    torch.save([1, 2], bad)
    with pytest.raises(Exception, match='list.pth'):
        record_in_checkpoint(str(bad), points)


def test_the_scans_of_a_split(tmp_path):
    import SimpleITK as sitk
    for name in ('a', 'b', 'c'):
        img = sitk.GetImageFromArray(np.zeros((4, 8, 8), np.int16))
        sitk.WriteImage(img, str(tmp_path / f'{name}.nii.gz'))
    geometry = dict(shape_zyx=[4, 8, 8], spacing_zyx=[1., 1., 1.],
                    origin_xyz=[0., 0., 0.],
                    direction=[1., 0., 0., 0., 1., 0., 0., 0., 1.])
    lesion = dict(bbox=[1, 1, 1, 3, 3, 3], center_world=[2., 2., 2.],
                  diameter_mm=2., label=0, ignore=False)
    volumes = [dict(id=n, file=f'{n}.nii.gz', split=s, series_uid=n,
                    annotations=[lesion, dict(lesion, ignore=True)],
                    **geometry) for n, s in (('a', 2), ('b', 3))]
    volumes.append(dict(volumes[0], id='c', file='c.nii.gz', series_uid='c'))
    del volumes[-1]['split']
    ann = tmp_path / 'volumes.json'
    ann.write_text(json.dumps(dict(
        metainfo=dict(box_format='x1y1z1x2y2z2_voxel', classes=['lesion']),
        volumes=volumes)))
    val = read_scan_truths(str(ann), 'val')
    assert [t.volume_id for t in val] == ['a', 'c']  # c: no split given
    assert val[0].lesions.tolist() == [[1, 1, 1, 3, 3, 3]]  # ignored out
    assert [t.volume_id for t in read_scan_truths(str(ann))] == [
        'a', 'b', 'c']
    with pytest.raises(ValueError, match="no volume of split 'train'"):
        volumes.pop()
        ann.write_text(json.dumps(dict(
            metainfo=dict(box_format='x1y1z1x2y2z2_voxel',
                          classes=['lesion']), volumes=volumes)))
        read_scan_truths(str(ann), 'train')
