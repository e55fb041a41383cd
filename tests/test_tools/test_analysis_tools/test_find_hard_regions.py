# Copyright (c) mmlesion contributors. All rights reserved.
"""find_hard_regions.py on a tiny randomly initialised 3D Aggregated Faster
R-CNN over two tiny synthetic scans, and its file read back by the
training-side sampler."""
import importlib.util
import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import DATASETS, MODELS
from mmlesion.methods.aggregated3d.hard_regions import training_scans_cfg
from mmlesion.datasets.volumes.hard_regions import load_hard_regions
from mmlesion.testing import get_config, repo_root
from tests.helpers.aggregated3d import tiny_aggregated3d_cfg

SPACING_XYZ = (1.0, 1.0, 1.5)
ORIGIN = (-30., 10., 200.)


def _tool():
    path = repo_root() / 'tools/analysis_tools/find_hard_regions.py'
    spec = importlib.util.spec_from_file_location('find_hard_regions', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _annotation(centre_zyx, diameter, ignore=False):
    """A cube annotation of a nodule at voxel centre (z, y, x)."""
    cz, cy, cx = centre_zyx
    rx, ry, rz = (diameter / 2 / s for s in SPACING_XYZ)
    world = [ORIGIN[0] + cx * SPACING_XYZ[0], ORIGIN[1] + cy * SPACING_XYZ[1],
             ORIGIN[2] + cz * SPACING_XYZ[2]]
    return dict(bbox=[cx - rx, cy - ry, cz - rz, cx + rx, cy + ry, cz + rz],
                center_world=world, diameter_mm=diameter, label=0,
                ignore=ignore)


def _scans(tmp_path):
    """Two 24 x 40 x 40 scans at 1.5 mm in z (36 x 40 x 40 at 1 mm) with
    bright spheres; the second also has an excluded finding."""
    rng = np.random.default_rng(0)
    volumes = []
    for k, nodules in enumerate([[(8, 12, 14, 6.)],
                                 [(16, 28, 25, 8.), (6, 10, 30, 5.)]]):
        arr = rng.normal(-800, 30, (24, 40, 40)).astype(np.int16)
        zz, yy, xx = np.mgrid[:24, :40, :40]
        anns = []
        for cz, cy, cx, d in nodules:
            dist = np.sqrt(((zz - cz) * 1.5)**2 + (yy - cy)**2 + (xx - cx)**2)
            arr[dist < d / 2] = 40
            anns.append(_annotation((cz, cy, cx), d))
        if k == 1:
            anns.append(_annotation((18, 8, 8), 6., ignore=True))
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing(SPACING_XYZ)
        img.SetOrigin(ORIGIN)
        sitk.WriteImage(img, str(tmp_path / f'scan{k}.nii.gz'))
        volumes.append(dict(
            id=f'scan{k}', file=f'scan{k}.nii.gz', series_uid=f'uid{k}',
            shape_zyx=[24, 40, 40], spacing_zyx=list(SPACING_XYZ[::-1]),
            origin_xyz=list(ORIGIN), direction=np.eye(3).ravel().tolist(),
            annotations=anns))
    (tmp_path / 'ann.json').write_text(json.dumps(dict(
        metainfo=dict(dataset='luna16', classes=['nodule'],
                      box_format='x1y1z1x2y2z2_voxel'),
        volumes=volumes)))
    return volumes


def _config(tmp_path):
    load = dict(type='LoadCTVolume', spacing_zyx=(1., 1., 1.))
    window = dict(type='WindowHU', window=(-1200., 600.), out_range=(-1., 1.))
    dataset = dict(type='CTVolumeDataset', ann_file=str(tmp_path / 'ann.json'))
    cfg = Config(dict(
        default_scope='mmdet',
        model=tiny_aggregated3d_cfg(window_size=(48, 48, 32)),
        train_dataloader=dict(dataset=dict(
            type='RepeatDataset', times=3, dataset=dict(
                dataset, filter_cfg=dict(filter_empty_gt=True), pipeline=[
                    load, dict(type='RandomCrop3D', crop_size=32), window,
                    dict(type='PackVolumeDetInputs')]))),
        test_dataloader=dict(dataset=dict(
            dataset, test_mode=True,
            pipeline=[load, window, dict(type='PackVolumeDetInputs')]))))
    cfg_path = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_path))
    torch.manual_seed(0)
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()),
               str(ckpt))
    return cfg, str(cfg_path), str(ckpt)


def test_training_scans_cfg_unwraps_and_reads_whole_scans(tmp_path):
    cfg, _, _ = _config(tmp_path)
    ds = training_scans_cfg(cfg)
    assert ds.type == 'CTVolumeDataset' and ds.filter_cfg is None
    assert [s['type'] for s in ds.pipeline] == [
        'LoadCTVolume', 'WindowHU', 'PackVolumeDetInputs']
    assert cfg.train_dataloader.dataset.dataset.pipeline[1].type == \
        'RandomCrop3D'  # the config itself is untouched
    # LUNA16 CV configs keep their training folds
    luna = training_scans_cfg(get_config(
        'aggregated3d/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py'))
    assert luna.split == 'train' and luna.fold == 0


def test_tool_end_to_end(tmp_path):
    volumes = _scans(tmp_path)
    cfg, cfg_path, ckpt = _config(tmp_path)
    out = tmp_path / 'round1' / 'hard_regions.json'
    argv = [cfg_path, ckpt, '--out', str(out), '--neg-score-thr', '0',
            '--pos-score-thr', '1', '--max-negatives', '5']
    scans = _tool().main(argv)
    data = load_hard_regions(str(out))
    assert data['scans'] == scans
    assert data['metainfo']['checkpoint'] == ckpt
    assert (tmp_path / 'round1' / 'hard_regions.png').stat().st_size > 1000
    assert [s['id'] for s in scans] == ['scan0', 'scan1']
    for scan, vol in zip(scans, volumes):
        # geometry of the volume the model ran on: resampled to 1 mm
        assert scan['shape_zyx'] == [36, 40, 40]
        assert scan['spacing_zyx'] == [1., 1., 1.]
        neg = [r for r in scan['regions'] if r['kind'] == 'hard_negative']
        pos = [r for r in scan['regions'] if r['kind'] == 'hard_positive']
        # with these thresholds every nodule is hard, excluded ones never
        nodules = [a for a in vol['annotations'] if not a['ignore']]
        assert len(pos) == len(nodules)
        assert 1 <= len(neg) <= 5
        assert [r['score'] for r in neg] == sorted(
            (r['score'] for r in neg), reverse=True)
        for r in neg:  # no hard negative hits a finding
            for a in vol['annotations']:
                dist = np.linalg.norm(np.subtract(r['center_world'],
                                                  a['center_world']))
                assert dist >= a['diameter_mm'] / 2
            # voxels of the recorded (resampled, 1 mm) geometry
            zyx = np.subtract(r['center_world'], scan['origin_xyz'])[::-1]
            assert np.allclose(r['center_voxel_zyx'], zyx, atol=1e-4)
    # no silent overwrite of the JSON (or of its PNG)
    with pytest.raises(SystemExit, match='--overwrite'):
        _tool().main(argv)
    out.unlink()
    with pytest.raises(SystemExit, match='hard_regions.png'):
        _tool().main(argv)
    assert _tool().main(argv + ['--overwrite', '--max-scans', '1'])
    assert [s['id'] for s in load_hard_regions(str(out))['scans']] == [
        'scan0']

    # the next round reads the file: hard-region crops contain the region;
    # a scan missing from the file is cropped as by RandomCrop3D
    np.random.seed(0)
    init_default_scope('mmdet')
    ds = DATASETS.build(dict(
        type='CTVolumeDataset', ann_file=str(tmp_path / 'ann.json'),
        pipeline=[
            dict(type='LoadCTVolume', spacing_zyx=(1., 1., 1.)),
            dict(type='HardRegionRandomCrop3D', hard_regions_file=str(out),
                 hard_prob=1.0, pos_prob=0.0, crop_size=16, margin=2)
        ]))
    for _ in range(3):
        r = ds[0]
        assert r['crop_source'] == 'hard'
        rel = np.subtract(r['hard_region']['center_voxel_zyx'],
                          r['crop_origin_zyx'])
        # inside the crop (>= margin from its faces unless at the volume's)
        assert np.all(rel >= -0.5) and np.all(rel <= 16 - 0.5)
    assert ds[1]['crop_source'] == 'random'
