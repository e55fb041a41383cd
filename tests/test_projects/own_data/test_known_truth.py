# Copyright (c) mmlesion contributors. All rights reserved.
"""Your own data with a known truth (``projects/own_data/known_truth.py``):
a small synthetic own-data set (12 patients of two studies, bright
lesions at known places) converted, planned for a CPU budget from random weights,
trained and tested with the documented commands (narrower widths given by
``--cfg-options``, :data:`NARROW`); the detector beats boxes
drawn at random (of the lesion sizes, in the body) by a wide margin on the
held-out patients, and ``infer_volume``'s kept findings on a held-out scan
lie on its lesions (at least 80 % of them: a model of a minute's training
keeps a few findings a lesion, and may keep a stray one)."""
import json

import numpy as np
import pytest
import SimpleITK as sitk

from tests.helpers.tool_modules import load_tool
from tests.test_tools.test_plan_dataset import _run

pytestmark = pytest.mark.usefixtures('tools_forked')

#: Lesions of 16-28 mm in 2 mm voxels, scans of 80 mm along each axis (in
#: 40 mm along z, as before, random boxes of the lesion sizes hit 0.275 of
#: them at 4 per scan): the planner's pixels (the small lesions over 16 px)
#: give images of about 90 px, and 2.35 minutes of budget 59 training steps
#: (about 1.9 s each on one core, most of it the RoI head's, whatever the
#: image size) from random weights; 12 patients give 2 validation patients
#: (4 scans) for the per-scan operating point and 4 held-out ones (8 scans).
SYNTH = dict(patients=12, shape=(40, 40, 40), spacing_mm=2.,
             diameters_mm=(16., 28.), lesions=(1, 2), seed=0)
#: The training's seed (without one mmengine draws one each run).
SEED = 0
LOADERS = [f'{s}_dataloader.{k}' for s in ('train', 'val', 'test')
           for k in ('num_workers=0', 'persistent_workers=False')]
#: Test-only widths, a quarter of the planned detector's: 64 FPN channels
#: (RPN and RoI features) and 256 in the RoI head's two FCs. At 1,024 RoIs
#: a step their RoIAlign and FCs were most of a 1.5 s step on one core;
#: the plan (levels, anchors, schedule) is the tool's. Sens@1 on the
#: held-out lesions, training seeds 0/1/2: 0.93/0.86/0.93 (planned widths
#: 0.86/0.57/0.86).
NARROW = [f'model.{k}' for k in (
    'neck.out_channels=64', 'rpn_head.in_channels=64',
    'rpn_head.feat_channels=64', 'roi_head.bbox_roi_extractor.out_channels=64',
    'roi_head.bbox_head.in_channels=64',
    'roi_head.bbox_head.fc_out_channels=256')]


def _overall(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items()
            if k.startswith('froc/sens@') and '_' not in k}


def test_detector_learns_the_known_truth(tmp_path):
    known_truth = load_tool('projects/own_data/known_truth.py')
    synth = known_truth.SyntheticSet(**SYNTH)
    assert known_truth.make_scans(tmp_path, synth) > 0
    ann, export = tmp_path / 'volumes.json', tmp_path / '2d'
    config, work = tmp_path / 'planned.py', tmp_path / 'work'
    # the page's commands: convert (patients from the scan names, split by
    # patient, a validation split), plan for a CPU budget, train, test
    assert load_tool('dataset_converters/convert_dataset.py').main([
        str(tmp_path / 'images'), str(tmp_path / 'labels'), '--out',
        str(ann), '--export-2d', str(export), '--val-fraction', '0.15',
        '--test-fraction', '0.25', '--num-slices', '3']) == 0
    volumes = json.loads(ann.read_text())['volumes']
    sides = {}
    for v in volumes:
        sides.setdefault(v['patient_id'], set()).add(int(v['split']))
    assert len(sides) == 12 and all(len(s) == 1 for s in sides.values())
    splits = [next(iter(s)) for s in sides.values()]
    assert all(splits.count(k) for k in (1, 2, 3))  # train, val, test
    assert load_tool('plan_dataset.py').main([
        str(ann), '--export-2d', str(export), '--device', 'cpu',
        '--budget-minutes', '2.35', '--no-pretrained', '--out',
        str(config)]) == 0
    _run('tools/train.py', config, '--work-dir', work, '--cfg-options',
         *LOADERS, *NARROW, f'randomness.seed={SEED}')
    ckpt = (work / 'last_checkpoint').read_text().strip()
    metrics = work / 'metrics.json'
    _run('tools/test.py', config, ckpt, '--work-dir', work, '--metrics-out',
         metrics, '--cfg-options', *LOADERS[4:], *NARROW)
    model = _overall(json.loads(metrics.read_text()))
    chance = _overall(known_truth.chance_froc(config))
    # most held-out lesions found at 1 FP per image, where random boxes of
    # the lesion sizes in the body find next to none
    assert model['froc/sens@1'] >= .5, (model, chance)
    assert chance['froc/sens@1'] <= .15, chance
    assert model['froc/sens@4'] >= chance['froc/sens@4'] + .3, (model,
                                                                 chance)
    # whole scans judged as lesions in 3D: the per-scan operating point
    # chosen on the validation patients' scans (stored in the best
    # checkpoint), the held-out patients' scans detected whole
    best = next(work.glob('best_*.pth'))
    scan3d = known_truth.whole_scan_3d(config, best, ann, tmp_path, NARROW)
    assert json.loads((tmp_path / 'whole_scan_3d.json').read_text()) == \
        scan3d
    assert scan3d['test_lesions'] >= 4, scan3d
    assert scan3d['findings_per_lesion'] is not None and \
        scan3d['findings_per_lesion'] <= 1.3, scan3d
    assert scan3d['sensitivity_at_fp_per_scan']['4'] >= .8, scan3d
    assert scan3d['operating_point']['sensitivity'] >= .8, scan3d
    # chance: boxes of the training lesions' 3D sizes at random places in
    # the body, scored at random, through the same walk (the mean of 20
    # draws was 0.088 at 4 per scan)
    assert scan3d['chance_at_fp_per_scan']['4'] <= .2, scan3d
    assert scan3d['sensitivity_at_fp_per_scan']['4'] >= scan3d[
        'chance_at_fp_per_scan']['4'] + .5, scan3d
    # infer_volume on a held-out scan: the kept findings (the per-scan
    # operating point of the best checkpoint, used by default) lie on its
    # lesions
    test_scan = next(v for v in volumes if int(v['split']) == 3)
    name = test_scan['file'].rsplit('/', 1)[-1]
    out = tmp_path / 'findings'
    _run('tools/infer_volume.py', config, best, tmp_path / 'images' / name,
         '--out-dir', out, '--cfg-options', *NARROW)
    record = json.loads((out / 'findings.json').read_text())
    assert record['operating_point']['fp_unit'] == 'scan', record[
        'operating_point']
    found = record['findings']
    labels = sitk.GetArrayFromImage(sitk.ReadImage(
        str(tmp_path / 'labels' / name)))
    assert found
    on = []
    for finding in found:
        x1, y1, z1, x2, y2, z2 = finding['bbox_voxel']
        centre = np.round([(z1 + z2) / 2, (y1 + y2) / 2, (x1 + x2) / 2])
        lo = np.clip(centre - 1, 0, None).astype(int)
        hi = (centre + 2).astype(int)
        on.append(bool(labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].any()))
    # a model of 59 steps from random weights keeps several findings a
    # lesion (stacked chains of its boxes); nearly all lie on the lesions
    assert np.mean(on) >= .8, [(f['score'], f['bbox_voxel'], o)
                               for f, o in zip(found, on)]


def test_val_patients_are_added_to_validation_only(tmp_path, monkeypatch):
    """``--val-patients K``: the K patients made after the others go to
    the validation split; the others keep their scans and their split."""
    known_truth = load_tool('projects/own_data/known_truth.py')
    args = ['known_truth.py', '--patients', '3', '--shape', '12', '24',
            '24', '--spacing-mm', '4', '--lesions', '1', '1',
            '--diameters-mm', '16', '20']
    for name, extra, steps in (('plain', [], 'make'),
                               ('added', ['--val-patients', '1'],
                                'make,convert')):
        monkeypatch.setattr('sys.argv', [*args, *extra, '--out', str(
            tmp_path / name), '--steps', steps])
        known_truth.main()
    volumes = json.loads((tmp_path / 'added/volumes.json').read_text())
    # p00, p01: train, p02: test by their hash, as without p03
    assert {v['patient_id']: int(v['split']) for v in volumes['volumes']
            } == {'p00': 1, 'p01': 1, 'p02': 3, 'p03': 2}
    for scan in (tmp_path / 'plain/images').iterdir():
        assert scan.read_bytes() == (tmp_path / 'added/images' /
                                     scan.name).read_bytes()
