# Copyright (c) mmlesion contributors. All rights reserved.
"""Detection on a CT scan (tools/infer_volume.py, mmlesion.apis)."""
import csv
import importlib.util
import json
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmlesion.apis.whole_scan.settings import volume_settings_from_config
from mmlesion.apis.whole_scan.write import CANDIDATE_COLUMNS
from projects.study_demo.synthetic.volumes import generate_demo_volumes
from mmlesion.datasets.transforms import LoadVolumeSlices
from mmlesion.testing import get_config, repo_root
from tests.helpers.tool_modules import load_tool
from tests.helpers.volume_demo import (train_on_samples,
                                       volume_training_samples)

DEMO_CFG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
# small chest scans with bright solid nodules (250-350 HU, brighter than
# the 30-60 HU vessels): what a from-scratch detector learns in ~250 steps
SCANS = dict(num_kits=0, num_lits=0, val_fraction=0., size_range=(96, 112),
             num_slices_range=(40, 56), unannotated_prob=0.,
             small_nodule_prob=0., part_solid_prob=0.,
             nodule_hu_range=(250., 350.))
PIXEL_SPACING = 1.0  # mm/px the test model is trained and run at
TRAIN_ITERS = 250


def _tool():
    return load_tool('infer_volume.py')


@pytest.fixture(scope='module')
def trained_checkpoint(tmp_path_factory):
    """The demo config's detector trained from scratch on synthetic chest
    scans (bright nodules of 12-25 mm), saved as a checkpoint."""
    root = tmp_path_factory.mktemp('train') / 'volumes'
    generate_demo_volumes(root, seed=1, num_luna=8, nodules_per_scan=(2, 4),
                          nodule_diameter_range=(12., 25.), **SCANS)
    cfg = get_config(DEMO_CFG)
    cfg.model.train_cfg.rcnn.sampler.num = 32  # fewer RoIs: faster steps
    settings = volume_settings_from_config(cfg, PIXEL_SPACING)
    samples = volume_training_samples(root, settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = train_on_samples(cfg, samples, TRAIN_ITERS)
    finally:
        torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp('ckpt') / 'demo_volume.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=('lesion', )))),
               path)
    return path


def test_settings_come_from_the_test_pipeline():
    cfg = get_config(DEMO_CFG)
    s = volume_settings_from_config(cfg)
    assert (s.num_slices, s.interval_mm) == (3, 2.)
    assert s.window == (-250., 350.)  # the demo config's WindowHU
    assert (s.pixel_spacing, s.pixel_spacing_source) == (.8, 'default')
    types = [t['type'] for t in s.pipeline]
    assert types == ['LoadVolumeSlices', 'WindowHU', 'PackDetInputs']
    assert 'crop_offset' in s.pipeline[-1]['meta_keys']
    # a config that resamples to a pixel spacing gives it
    pipe = cfg.test_dataloader.dataset.pipeline
    pipe.insert(2, dict(type='ResampleToSpacing', spacing=.7))
    s = volume_settings_from_config(cfg)
    assert (s.pixel_spacing, s.pixel_spacing_source) == (
        .7, 'ResampleToSpacing')
    assert volume_settings_from_config(cfg, 1.2).pixel_spacing == 1.2
    nine = get_config('_base_/datasets/deeplesion_9slice.py')
    assert volume_settings_from_config(nine).num_slices == 9


def test_a_2d_config_is_refused():
    cfg = Config(dict(test_dataloader=dict(dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'), dict(type='PackDetInputs')]))))
    with pytest.raises(ValueError, match='my.py: not a 2.5D config'):
        volume_settings_from_config(cfg, cfg_name='my.py')


def test_load_volume_slices_channels():
    volume = np.arange(6, dtype=np.float32)[:, None, None] * np.ones(
        (6, 2, 3), np.float32) * 100.
    load = LoadVolumeSlices(num_slices=3, interval_mm=2.)
    out = load(dict(volume=volume, key_slice=2, slice_interval=1.))
    assert out['img'].shape == (2, 3, 3) and 'volume' not in out
    assert out['img'][0, 0].tolist() == [0., 200., 400.]
    # 2 mm channels on 1.5 mm slices: interpolated between slices
    out = load(dict(volume=volume, key_slice=2, slice_interval=1.5))
    assert out['img'][0, 0] == pytest.approx([200. - 400. / 3, 200.,
                                              200. + 400. / 3])
    # beyond the ends: the end slices (HU clamp applied)
    out = load(dict(volume=volume * 10, key_slice=5, slice_interval=1.))
    assert out['img'][0, 0].tolist() == [3000., 3071., 3071.]
    with pytest.raises(ValueError, match='key slice 6 outside'):
        load(dict(volume=volume, key_slice=6, slice_interval=1.))
    with pytest.raises(ValueError, match='slice_interval'):
        load(dict(volume=volume, key_slice=1, slice_interval=0.))


def test_planted_lesion_is_found_at_its_world_position(
        trained_checkpoint, tmp_path, capsys):
    """A model trained on the synthetic set finds a nodule planted in an
    unseen scan: the scan's best finding lies within the nodule's radius of
    the planted world centre (the model is not told where: it ranks its
    own findings; rank 1 for planted seeds 11-18 when this was written)."""
    root = tmp_path / 'planted'
    generate_demo_volumes(root, seed=11, num_luna=1, nodules_per_scan=(1, 1),
                          nodule_diameter_range=(16., 20.), **SCANS)
    gt = json.loads((root / 'ground_truth.json').read_text())
    (nodule, ) = gt['lesions']
    scan = root / gt['scans'][0]['file']
    out = tmp_path / 'out'
    tool = _tool()
    torch.set_num_threads(1)
    args = [str(repo_root() / 'configs' / DEMO_CFG),
            str(trained_checkpoint), str(scan), '--out-dir', str(out),
            '--pixel-spacing', str(PIXEL_SPACING), '--workers', '1']
    assert tool.main(args) == 0
    stdout = capsys.readouterr().out
    speed = re.search(r'speed: ([0-9.]+) slices/s', stdout)
    assert speed and float(speed.group(1)) > 0

    result = json.loads((out / 'findings.json').read_text())
    assert (result['settings']['workers'],
            result['settings']['worker_type']) == (1, 'thread')
    findings = result['findings']
    centre = np.array(nodule['center_world'])
    radius = nodule['diameter_mm'] / 2
    dist = [np.linalg.norm(np.array(f['center_world']) - centre)
            for f in findings]
    hits = [i for i, d in enumerate(dist) if d < radius]
    assert hits, f'no finding within {radius:.1f} mm of {centre}'
    assert hits[0] == 0, (f'the nodule is only finding #{hits[0] + 1}',
                         findings[:3])
    hit = findings[hits[0]]
    # its slices cover the nodule's centre (original-scan voxels), to within
    # one of the detector's slices (interval_mm, coarser than the scan's)
    # and one original slice: a finding's ends are detector slices
    z = nodule['center_voxel_zyx'][0]
    lo, hi = hit['slice_range_original']
    tol = result['settings']['interval_mm'] / gt['scans'][0]['spacing_zyx'][
        0] + 1
    assert lo - tol <= z <= hi + tol, (lo, hi, z, tol)
    x1, y1, z1, x2, y2, z2 = hit['bbox_voxel']
    _, y, x = nodule['center_voxel_zyx']
    assert x1 <= x <= x2 and y1 <= y <= y2
    assert result['series_uid'] == nodule['series_uid']

    # LUNA16 candidates: one row a finding, world mm and the score
    with open(out / 'candidates.csv', newline='') as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == CANDIDATE_COLUMNS
    assert len(rows) == len(findings) + 1
    assert rows[1 + hits[0]][0] == nodule['series_uid']
    assert np.allclose([float(v) for v in rows[1 + hits[0]][1:4]],
                       hit['center_world'], atol=1e-3)
    # ... which the LUNA16 evaluator reads: the planted nodule is detected
    spec = importlib.util.spec_from_file_location(
        'eval_luna16',
        repo_root() / 'tools' / 'analysis_tools' / 'eval_luna16.py')
    evaluator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluator)
    luna = root / 'luna16'
    assert evaluator.main([
        '--annotations', str(luna / 'annotations.csv'), '--excluded',
        str(luna / 'annotations_excluded.csv'), '--seriesuids',
        str(luna / 'seriesuids.csv'), '--candidates',
        str(out / 'candidates.csv'), '--out-dir', str(tmp_path / 'eval'),
        '--num-bootstrap', '0'
    ]) == 0
    assert 'nodules 1 (detected 1)' in capsys.readouterr().out
    # pictures and a self-contained report
    assert (out / 'overview.png').stat().st_size > 1000
    assert (out / hit['key_slice_png']).is_file()
    html = (out / 'report.html').read_text()
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith('data:image/png;base64,') for s in srcs)
    assert 'href=' not in html and '<script' not in html
    # console and report name the same (original-scan) slices
    lo, hi = findings[0]['slice_range_original']
    assert f'slices {lo}-{hi} of the scan' in stdout
    assert f'<td>{lo}-{hi}</td>' in html

    # existing results are not replaced without --overwrite
    assert tool.main(args) == 1
    assert '--overwrite' in capsys.readouterr().err
    assert json.loads((out / 'findings.json').read_text()) == result


def test_cli_errors_name_the_problem(tmp_path, capsys):
    tool = _tool()
    cfg = str(repo_root() / 'configs' / DEMO_CFG)
    bad = tmp_path / 'scan.nii.gz'
    bad.write_bytes(b'not a nifti file')
    assert tool.main([cfg, 'none.pth', str(bad), '--out-dir',
                      str(tmp_path / 'o')]) == 1
    assert str(bad) in capsys.readouterr().err
    missing = tmp_path / 'nothing.mhd'
    assert tool.main([cfg, 'none.pth', str(missing), '--out-dir',
                      str(tmp_path / 'o')]) == 1
    assert 'nothing.mhd' in capsys.readouterr().err
    two_d = tmp_path / 'two_d.py'
    two_d.write_text("test_dataloader = dict(dataset=dict(pipeline=["
                     "dict(type='LoadImageFromFile')]))\n")
    assert tool.main([str(two_d), 'none.pth', str(bad), '--out-dir',
                      str(tmp_path / 'o')]) == 1
    assert 'not a 2.5D config' in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()


def test_lens_experts_and_fpr_on_a_volume(tmp_path, capsys):
    """A LENS model on a scan: --experts picks the fused experts (clear
    errors for a bad index or a non-LENS config), --fpr-config re-scores
    the same findings with Eq. 2 (FPR patch from the resampled volume)."""
    from tests.helpers.lens_models import (FPR_DEMO_CFG, LENS_DEMO_CFG,
                                              save_random_lens_checkpoints)
    lens_ckpt, fpr_ckpt = save_random_lens_checkpoints(tmp_path / 'ckpt')
    generate_demo_volumes(tmp_path / 'vol', seed=2, num_luna=1, num_kits=0,
                          num_lits=0, val_fraction=0., size_range=(64, 72),
                          num_slices_range=(14, 16), nodules_per_scan=(1, 1))
    (scan, ) = (tmp_path / 'vol' / 'luna16' / 'subset0').glob('*.mhd')
    cfg = str(repo_root() / 'configs' / LENS_DEMO_CFG)
    tool = _tool()
    torch.set_num_threads(1)

    def run(name, *extra):
        args = [cfg, str(lens_ckpt), str(scan), '--out-dir',
                str(tmp_path / name), '--pixel-spacing', '1.4',
                '--cfg-options',
                'model.test_cfg.expert_fusion.max_per_img=4', *extra]
        code = tool.main(args)
        if code:
            return code, capsys.readouterr().err
        return code, json.loads((tmp_path / name / 'findings.json')
                                .read_text())

    _, e0 = run('e0', '--experts', '0')
    _, e1 = run('e1', '--experts', '1')
    assert e0['settings']['experts'] == [0] and e0['findings']
    assert [f['bbox_voxel'] for f in e0['findings']] != [
        f['bbox_voxel'] for f in e1['findings']]
    _, fpr = run('fpr', '--experts', '0', '--fpr-config',
                 str(repo_root() / 'configs' / FPR_DEMO_CFG),
                 '--fpr-checkpoint', str(fpr_ckpt))
    assert fpr['settings']['fpr'].endswith(FPR_DEMO_CFG.split('/')[-1])
    found = fpr['findings']
    assert len(found) == len(e0['findings'])
    # the same findings (boxes, LENS scores), final score Eq. 2, re-sorted
    key = lambda f: tuple(f['bbox_voxel_resampled'])  # noqa: E731
    lens = {key(f): f['score'] for f in e0['findings']}
    for f in found:
        assert f['s_lens'] == lens[key(f)]
        assert f['score'] == pytest.approx((f['s_lens'] + f['s_fpr']) / 2,
                                           abs=1e-6)
    assert [f['score'] for f in found] == sorted(
        (f['score'] for f in found), reverse=True)
    assert [f['id'] for f in found] == list(range(1, len(found) + 1))
    # errors name the config and the experts
    code, err = run('bad', '--experts', '0', '2')
    assert code == 1 and LENS_DEMO_CFG.split('/')[-1] in err
    assert 'the model has 2 experts, 0..1 (demo_partial, ' in err
    code = tool.main([str(repo_root() / 'configs' / DEMO_CFG),
                      str(lens_ckpt), str(scan), '--out-dir',
                      str(tmp_path / 'bad'), '--experts', '0'])
    assert code == 1
    assert '--experts needs a LENS model, the config builds a FasterRCNN' \
        in capsys.readouterr().err
    assert not (tmp_path / 'bad').exists()


def test_help_says_the_demo_weights_are_not_for_real_ct(capsys):
    with pytest.raises(SystemExit):
        _tool().main(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert 'ships none for real CT' in text
    assert '2D boxes below 0.05 are not stacked' in text
