# Copyright (c) mmlesion contributors. All rights reserved.
"""Findings kept at the checkpoint's validated operating point
(:func:`mmlesion.apis.whole_scan.model.choose_operating_point`): the
same kept findings through one scan and a batch, every finding in
``candidates.csv``, a checkpoint without the record keeps every finding
(one line), ``--score-thr`` overrides."""
import csv
import json
from pathlib import Path

import pytest
import torch

from mmlesion.apis.whole_scan import model as scan_model
from mmlesion.apps.whole_scan.batch import run_batch_inference
from mmlesion.apis.whole_scan.run import run_volume_inference
from mmlesion.apis.whole_scan.settings import DetectionSettings, RunSettings
from mmlesion.evaluation.functional.operating_points import (
    OPERATING_POINTS_KEY, OperatingPoints)
from mmlesion.testing import repo_root
from tests.helpers.tool_modules import load_tool
from tests.helpers.volume_demo import DEMO_CFG, scans_and_random_checkpoint

CFG_PATH = str(repo_root() / 'configs' / DEMO_CFG)


def _settings(**kwargs) -> RunSettings:
    return RunSettings(detection=DetectionSettings(score_thr=.01,
                                                   show_progress=False),
                       **kwargs)


@pytest.fixture(scope='module')
def scan_and_checkpoints(tmp_path_factory):
    """A small synthetic scan, random weights without a record, and the
    same weights recording a threshold at 4 FPs per image between the
    scores of the scan's findings."""
    scans, ckpt = scans_and_random_checkpoint(
        tmp_path_factory, seed=4, num_luna=1, size_range=(56, 56),
        num_slices_range=(10, 10))
    every = run_volume_inference(CFG_PATH, str(ckpt), str(scans[0]),
                                 run_settings=_settings(fp_rate=None))
    best = sorted(max(b.score for b in f.boxes_2d) for f in every.findings)
    assert len(best) >= 4, 'the random model must give a few findings'
    threshold = float(best[len(best) // 2])
    record = OperatingPoints(
        fp_unit='image', fp_rates=[1., 4.], thresholds=[1., threshold],
        sensitivities=[.5, .75], split='val.csv', epoch=3, iter=30)
    checkpoint = torch.load(ckpt, weights_only=False)
    checkpoint['meta'][OPERATING_POINTS_KEY] = record.to_dict()
    validated = tmp_path_factory.mktemp('ckpt') / 'validated.pth'
    torch.save(checkpoint, validated)
    return str(scans[0]), str(ckpt), str(validated), threshold, every


def _written(folder: Path) -> tuple:
    record = json.loads((folder / 'findings.json').read_text())
    with open(folder / 'candidates.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    return record, rows


def test_single_scan_and_batch_keep_the_same_findings(scan_and_checkpoints,
                                                      tmp_path):
    scan, _, validated, threshold, every = scan_and_checkpoints
    run_volume_inference(CFG_PATH, validated, scan,
                         out_dir=str(tmp_path / 'one'),
                         run_settings=_settings())
    run_batch_inference(CFG_PATH, validated, [scan], str(tmp_path / 'many'),
                        run_settings=_settings())
    one, one_rows = _written(tmp_path / 'one')
    many, many_rows = _written(tmp_path / 'many' / Path(scan).stem)
    assert one['findings'] == many['findings']
    assert one['operating_point'] == many['operating_point'] == dict(
        source='validation', threshold=threshold, fp_rate=4.,
        fp_unit='image', sensitivity=.75, split='val.csv', epoch=3,
        note=scan_model.FP_UNIT_NOTES['image'], lesion_steps=None,
        scan_z_mm=None)
    kept = [f for f in every.findings
            if max(b.score for b in f.boxes_2d) >= threshold]
    assert 0 < len(kept) < len(every.findings)
    assert [f['id'] for f in one['findings']] == [f.id for f in kept]
    assert all(f['recist'] is not None for f in one['findings'])
    # every finding stays a candidate, measured or not
    assert one['num_candidates'] == len(every.findings) == len(one_rows)
    assert one_rows == many_rows
    assert sorted(float(r['probability']) for r in one_rows) == sorted(
        round(f.score, 6) for f in every.findings)
    report = (tmp_path / 'one' / 'report.html').read_text()
    assert f'kept</b> {len(kept)} of {len(every.findings)}' in report


def test_a_checkpoint_without_the_record_keeps_every_finding(
        scan_and_checkpoints, monkeypatch):
    scan, plain, _, _, every = scan_and_checkpoints
    lines = []
    monkeypatch.setattr(scan_model, 'print_log',
                        lambda msg, **kwargs: lines.append(msg))
    result = run_volume_inference(CFG_PATH, plain, scan,
                                  run_settings=_settings())
    assert len(lines) == 1 and '\n' not in lines[0]
    assert lines[0].startswith(f'{plain} records no validated operating '
                               'point')
    assert 'keeping every finding above --score-thr 0.01' in lines[0]
    assert result.operating_point.source == 'none'
    assert [f.id for f in result.findings] == [f.id for f in every.findings]


def test_score_thr_overrides_the_operating_point(scan_and_checkpoints,
                                                 tmp_path):
    scan, _, validated, _, every = scan_and_checkpoints
    code = load_tool('infer_volume.py').main([
        CFG_PATH, validated, scan, '--out-dir', str(tmp_path / 'out'),
        '--score-thr', '0.01', '--dicom', 'no'])
    assert code == 0
    record, rows = _written(tmp_path / 'out')
    assert record['operating_point']['source'] == 'score-thr'
    assert len(record['findings']) == len(rows) == len(every.findings)


def test_a_per_scan_record_wins_with_its_lesion_steps(scan_and_checkpoints,
                                                      tmp_path):
    """A checkpoint recording a per-scan point keeps the findings whose own
    score reaches its threshold at --fp-per-scan, stacked with the lesion
    steps chosen with it; --fp-rate asks for the per-image point; a rate
    not recorded is refused."""
    from mmlesion.apis.whole_scan.calibrate import record_in_checkpoint
    from mmlesion.evaluation.functional.operating_points import \
        SCAN_OPERATING_POINTS_KEY
    scan, _, validated, _, _ = scan_and_checkpoints
    steps = dict(max_gap=1, min_slices=2, contain_thr=.7, join_gap=2,
                 merge_iou=.1, score_thr=.01)
    stacked = run_volume_inference(CFG_PATH, validated, scan,
                                   run_settings=RunSettings(
                                       fp_rate=None,
                                       detection=DetectionSettings(
                                           show_progress=False, **steps)))
    scores = sorted(f.score for f in stacked.findings)
    assert len(scores) >= 2
    threshold = float(scores[len(scores) // 2])
    ckpt = tmp_path / 'scan.pth'
    ckpt.write_bytes(Path(validated).read_bytes())
    record_in_checkpoint(str(ckpt), OperatingPoints(
        fp_unit='scan', fp_rates=[1., 4.], thresholds=[1., threshold],
        sensitivities=[.5, .9], metric='whole_scan_lesions',
        split='volumes.json, split val', lesion_steps=steps))
    meta = torch.load(ckpt, weights_only=False)['meta']
    assert OPERATING_POINTS_KEY in meta  # the per-image record kept
    result = run_volume_inference(CFG_PATH, str(ckpt), scan,
                                  run_settings=_settings())
    point = result.operating_point
    assert (point.fp_unit, point.fp_rate, point.threshold,
            point.lesion_steps) == ('scan', 4., threshold, steps)
    assert [f.score for f in result.findings] == [
        s for s in sorted(scores, reverse=True) if s >= threshold]
    # a record without merge_inside (made before it was chosen): the run's
    assert result.detection.lesion_steps() == dict(steps, merge_inside=None)
    image = run_volume_inference(CFG_PATH, str(ckpt), scan,
                                 run_settings=_settings(fp_per_scan=None))
    assert image.operating_point.fp_unit == 'image'
    with pytest.raises(ValueError, match=r'no operating point at 2 FPs per '
                       r'scan is recorded; the validation recorded 1, 4'):
        run_volume_inference(CFG_PATH, str(ckpt), scan,
                             run_settings=_settings(fp_per_scan=2.))


def test_a_rate_the_validation_did_not_record_is_one_clear_error(
        scan_and_checkpoints):
    scan, _, validated, _, _ = scan_and_checkpoints
    with pytest.raises(ValueError, match=r'no operating point at 2 FPs per '
                       r'image is recorded; the validation recorded 1, 4'):
        run_volume_inference(CFG_PATH, validated, scan,
                             run_settings=_settings(fp_rate=2.))


class _Reversed:
    """A re-scorer giving each finding ``1 - score``."""
    name = 'reversed'

    def rescore(self, findings, resampled, show_progress):
        return [f.rescored(1. - f.score, s_det=f.score) for f in findings]


def test_findings_keep_their_best_2d_score_not_a_rescored_one():
    """A re-scored finding is kept by its detector score (the validated
    threshold is of those); its id is its rank among every candidate,
    which all stay candidates."""
    import numpy as np

    from mmlesion.apis.whole_scan.stack import stack_findings
    from mmlesion.datasets.volumes import CTVolume
    volume = CTVolume(np.zeros((3, 40, 40), np.float32), (2., 1., 1.),
                      (0., 0., 0.))
    boxes = [np.array([[1., 1., 9., 9.], [20., 20., 30., 30.],
                       [1., 20., 9., 30.]])] * 3
    scores = [np.array([.2, .6, .5]), np.array([.3, .6, .5]),
              np.array([.3, .6, .5])]

    def stacked(keep_thr):
        out = stack_findings(boxes, scores, volume, volume,
                             DetectionSettings(keep_thr=keep_thr),
                             _Reversed())
        return out.kept, out.candidates

    kept, candidates = stacked(.5)
    every, same = stacked(None)
    assert [f.score for f in every] == [.7, .5, .4]  # 1 - .3, 1 - .5, ...
    assert [(f.id, f.score) for f in kept] == [(2, .5), (3, .4)]
    assert [f.to_dict() for f in kept] == [f.to_dict() for f in every[1:]]
    assert candidates.scores.tolist() == same.scores.tolist() == [.7, .5,
                                                                   .4]
    assert np.round(candidates.centres_world, 3).tolist() == [
        f.center_world for f in every]
    assert stacked(.61)[0] == []


#: A well-formed record (thresholds non-increasing as the rate grows).
GOOD = dict(fp_unit='image', fp_rates=[1., 4.], thresholds=[.6, .3],
            sensitivities=[.5, .75], split='val.csv', epoch=3, iter=30)


@pytest.mark.parametrize('record,field', [
    (dict(GOOD, thresholds=[.6, float('nan')]), 'thresholds[1]: NaN'),
    (dict(GOOD, thresholds=[float('inf'), .3]), 'thresholds[0]: inf'),
    (dict(GOOD, thresholds=[.6, 'high']), "thresholds[1]: 'high'"),
    (dict(GOOD, thresholds=[.6]), 'thresholds: 1 for 2 fp_rates'),
    (dict(GOOD, sensitivities=[.5]), 'sensitivities: 1 for 2 fp_rates'),
    ([.6, .3], 'the record: a list, not a mapping'),
    ({k: v for k, v in GOOD.items() if k != 'fp_unit'}, 'fp_unit: missing'),
    (dict(GOOD, fp_unit='slice'), "fp_unit: 'slice', not one of"),
    (dict(GOOD, thresholds=[.6, 5.]), 'thresholds[1]: 5.0 is outside the '
     'score range [0, 1]'),
    (dict(GOOD, thresholds=[.6, -1.]), 'thresholds[1]: -1.0 is outside'),
    (dict(GOOD, thresholds=[.3, .6]), 'thresholds[1]: 0.6 at 4 FPs is above '
     '0.3 at 1 FPs'),
    (dict(GOOD, scans=0), 'scans: 0, not None or a number > 0'),
    (dict(GOOD, scans=2.), 'scans: 2.0, not int or None'),
    (dict(GOOD, scan_z_mm=float('nan')), 'scan_z_mm: nan, not None'),
], ids=['nan', 'inf', 'text', 'one-short', 'sensitivity-short',
        'not-a-mapping', 'no-fp-unit', 'unknown-fp-unit', 'edited-to-5',
        'minus-1', 'increasing', 'no-scans', 'scans-float', 'z-nan'])
def test_a_malformed_record_is_refused_naming_the_field(record, field):
    """A best checkpoint's record that is malformed is never used as a
    validated operating point nor taken for a missing one: one line naming
    the checkpoint and the field, and that ``--score-thr`` runs anyway
    (which it does)."""
    meta = {OPERATING_POINTS_KEY: record}
    with pytest.raises(ValueError) as err:
        scan_model.choose_operating_point(meta, _settings(), 'best.pth')
    message = str(err.value)
    assert message.startswith(
        f"best.pth: meta['{OPERATING_POINTS_KEY}']: malformed operating "
        f'points: {field}'), message
    assert '\n' not in message and message.endswith(
        '--score-thr THR keeps every finding above a threshold of your own '
        'instead')
    assert scan_model.choose_operating_point(
        meta, _settings(fp_rate=None)).source == 'score-thr'


def test_a_validation_without_detections_is_refused_not_malformed():
    """NaN thresholds at every rate with sensitivity 0 are what a
    validation without detections records: refused as such."""
    nan = float('nan')
    meta = {OPERATING_POINTS_KEY: dict(GOOD, thresholds=[nan, nan],
                                       sensitivities=[0., 0.])}
    with pytest.raises(ValueError, match=r'^best.pth: its validation '
                       r'\(val.csv, epoch 3\) had no detections, so it chose '
                       r'no threshold at 4 FPs per image; --score-thr'):
        scan_model.choose_operating_point(meta, _settings(), 'best.pth')
    point = scan_model.choose_operating_point(
        {OPERATING_POINTS_KEY: GOOD}, _settings(), 'best.pth')
    assert (point.source, point.threshold, point.sensitivity) == (
        'validation', .3, .75)


def test_a_validation_that_found_nothing_is_said_naming_the_sensitivity(
        monkeypatch):
    """Finite thresholds with sensitivity 0 (a validation whose detections
    were all false) keep their threshold with one warning line naming the
    sensitivity, said once per run (the check before it prints nothing);
    a rate with a sensitivity above 0 prints nothing."""
    lines = []
    monkeypatch.setattr(scan_model, 'print_log',
                        lambda msg, **kwargs: lines.append(msg))
    nothing = {OPERATING_POINTS_KEY: dict(GOOD, sensitivities=[0., 0.])}
    scan_model.check_operating_point('best.pth', nothing, _settings())
    assert lines == []
    point = scan_model.choose_operating_point(nothing, _settings(), 'best.pth')
    assert (point.threshold, point.sensitivity) == (.3, 0.)
    assert len(lines) == 1 and lines[0].startswith(
        'best.pth: its validation (val.csv, epoch 3) found no lesion: '
        'sensitivity 0 at every recorded rate, so its threshold 0.3 at 4 '
        'FPs per image is not a validated operating point'), lines
    partly = {OPERATING_POINTS_KEY: dict(GOOD, sensitivities=[0., .5])}
    scan_model.choose_operating_point(partly, _settings(fp_rate=1.), 'b.pth')
    assert 'sensitivity 0 at 1 FPs per image, so its threshold 0.6' in \
        lines[1]
    scan_model.choose_operating_point(partly, _settings(), 'b.pth')
    assert len(lines) == 2


def test_the_tool_refuses_an_edited_threshold_and_writes_nothing(
        scan_and_checkpoints, tmp_path, capsys, monkeypatch):
    """A checkpoint whose threshold was edited to 5.0 (every finding
    dropped) ends the tool, one scan or a batch, with status 1 and one
    line before the model loads or anything is written; ``--score-thr``
    runs it."""
    from mmlesion.apis.whole_scan import run as volume_run
    scan, _, validated, _, every = scan_and_checkpoints
    checkpoint = torch.load(validated, weights_only=False)
    checkpoint['meta'][OPERATING_POINTS_KEY]['thresholds'] = [5., 5.]
    edited = tmp_path / 'edited.pth'
    torch.save(checkpoint, edited)
    tool = load_tool('infer_volume.py')
    out = tmp_path / 'out'
    listing = tmp_path / 'today.txt'
    listing.write_text(f'{scan}\n')
    args = [CFG_PATH, str(edited), scan, '--out-dir', str(out), '--dicom',
            'no']
    with monkeypatch.context() as patch:
        patch.setattr(volume_run, 'init_lesion_detector', None)
        assert tool.main(args) == 1
        one = capsys.readouterr().err.strip()
        assert tool.main([CFG_PATH, str(edited), '--scan-list',
                          str(listing), '--out-dir', str(out)]) == 1
        assert capsys.readouterr().err.strip() == one
    assert one.splitlines() == [
        f"error: {edited}: meta['{OPERATING_POINTS_KEY}']: malformed "
        'operating points: thresholds[0]: 5.0 is outside the score range '
        '[0, 1]; --score-thr THR keeps every finding above a threshold of '
        'your own instead']
    assert not out.exists()
    assert tool.main(args + ['--score-thr', '0.01']) == 0
    record, _ = _written(out)
    assert len(record['findings']) == len(every.findings)


@pytest.mark.parametrize('sidecar', [False, True])
def test_a_scan_reads_its_checkpoint_meta_once_and_hashes_it_once(
        scan_and_checkpoints, tmp_path, monkeypatch, sidecar):
    """One read of the checkpoint: before the model, for the operating
    point and the data convention, and the same dict into the model; the
    SHA-256 of findings.json computed once (by the read's check of a
    sidecar, else for the record)."""
    import shutil

    from mmlesion.utils.checkpoints import checksum
    scan, _, validated, _, _ = scan_and_checkpoints
    validated = str(shutil.copy(validated, tmp_path / 'validated.pth'))
    if sidecar:
        checksum.write_checksum(validated)
    loads, hashes = [], []
    load, sha256_file = torch.load, checksum.sha256_file

    def counted_load(f, *args, **kwargs):
        loads.append((str(f), bool(kwargs.get('mmap'))))
        return load(f, *args, **kwargs)

    def counted_hash(path, *args, **kwargs):
        hashes.append(str(path))
        return sha256_file(path, *args, **kwargs)

    monkeypatch.setattr(torch, 'load', counted_load)
    for module in (checksum, scan_model):
        monkeypatch.setattr(module, 'sha256_file', counted_hash)
    run_volume_inference(CFG_PATH, validated, scan,
                         out_dir=str(tmp_path / 'out'),
                         run_settings=_settings())
    assert loads == [(validated, False)]
    assert hashes == [validated]
    record = json.loads((tmp_path / 'out' / 'findings.json').read_text())
    assert record['provenance']['checkpoint']['sha256'] == sha256_file(
        validated)


@pytest.mark.parametrize('z_mm,ratio', [(80., None), (160., None),
                                        (162.5, '2.0'), (400., '5.0')])
def test_a_scan_much_longer_than_the_validation_scans_is_warned(z_mm,
                                                                ratio):
    """A per-scan point chosen on scans of 80 mm: a scan over twice as long
    gets one line (its rate does not transfer); up to twice, none; nor for a
    per-image point or a record without the extent."""
    from mmlesion.apis.whole_scan.results import OperatingPoint
    from mmlesion.datasets.volumes import CTVolume
    volume = CTVolume(torch.zeros(int(z_mm / 2.5), 2, 2).numpy(),
                      (2.5, 1., 1.), (0., 0., 0.))
    point = OperatingPoint('validation', .3, 4., 'scan', scan_z_mm=80.)
    line = scan_model.scan_length_warning(point, volume)
    if ratio is None:
        assert line is None
    else:
        assert line == (
            f'this scan is {z_mm:.0f} mm along z, {ratio} times the 80 mm of '
            'the validation scans its operating point of 4 false findings '
            'per scan was chosen on: expect more false findings here (about '
            'in proportion to the length)')
    for other in (OperatingPoint('validation', .3, 4., 'image'),
                  OperatingPoint('validation', .3, 4., 'scan')):
        assert scan_model.scan_length_warning(other, volume) is None


@pytest.mark.usefixtures('tools_forked')
def test_the_tool_warns_a_long_scan_in_one_line(scan_and_checkpoints,
                                                tmp_path):
    """``tools/infer_volume.py`` in its own process (forked from the
    zygote), with a per-scan record
    chosen on scans of a third of this scan's length: one warning line,
    naming both lengths and the ratio; the findings are still written."""
    import os
    import subprocess
    import sys

    from mmlesion.apis.whole_scan.calibrate import record_in_checkpoint
    from mmlesion.apis.whole_scan.model import z_extent_mm
    from mmlesion.datasets.volumes import load_ct_volume
    scan, _, validated, _, _ = scan_and_checkpoints
    z_mm = z_extent_mm(load_ct_volume(scan))
    ckpt = tmp_path / 'scan.pth'
    ckpt.write_bytes(Path(validated).read_bytes())
    record_in_checkpoint(str(ckpt), OperatingPoints(
        fp_unit='scan', fp_rates=[4.], thresholds=[.01], sensitivities=[.9],
        metric='whole_scan_lesions', split='volumes.json, split val',
        lesion_steps=dict(max_gap=0, min_slices=1, contain_thr=None,
                          join_gap=None, merge_iou=None, score_thr=.01),
        scans=4, scan_z_mm=z_mm / 3))
    out = tmp_path / 'out'
    run = subprocess.run(
        [sys.executable, str(repo_root() / 'tools' / 'infer_volume.py'),
         CFG_PATH, str(ckpt), scan, '--out-dir', str(out), '--dicom', 'no',
         '--max-pictures', '0'],
        env=dict(os.environ, OMP_NUM_THREADS='1'), cwd=str(repo_root()),
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    lines = [line for line in (run.stdout + run.stderr).splitlines()
             if 'times the' in line]
    assert len(lines) == 1, (run.stdout + run.stderr)[-4000:]
    assert 'WARNING' in lines[0] and scan in lines[0], lines
    assert (f'this scan is {z_mm:.0f} mm along z, 3.0 times the '
            f'{z_mm / 3:.0f} mm of the validation scans its operating point '
            'of 4 false findings per scan was chosen on') in lines[0], lines
    assert json.loads((out / 'findings.json').read_text())[
        'operating_point']['fp_unit'] == 'scan'
