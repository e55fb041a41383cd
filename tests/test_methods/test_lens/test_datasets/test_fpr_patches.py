# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS FPR data: TP / FP labels of 3D proposals, patches, and a short
training run of the demo FPR config."""
import json

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import mmlesion  # noqa: F401
from mmlesion.datasets import DeepLesionDataset
from mmlesion.methods.lens.datasets import LENSFPRPatchDataset
from mmlesion.methods.lens.datasets.fpr_patches import (FORMAT, FPRPatchSpec,
                                                        crop_fpr_patch,
                                                        label_fpr_proposal)
from mmlesion.testing import get_config


def test_tp_fp_labels():
    pos = {5: np.array([[10., 10., 30., 30.]])}
    every = {5: pos[5], 7: np.array([[60., 60., 80., 80.]])}
    tp = [(4, [10, 10, 30, 30], .9), (5, [11, 11, 30, 30], .9)]
    assert label_fpr_proposal(tp, pos, every) == 1
    fp = [(5, [100, 100, 120, 120], .9)]
    assert label_fpr_proposal(fp, pos, every) == 0
    # on an uncertain lesion: neither TP nor FP
    unsure = [(7, [62, 62, 80, 80], .9)]
    assert label_fpr_proposal(unsure, pos, every) is None
    # IoU between 0.3 and 0.5 with an annotation: unused
    assert label_fpr_proposal([(5, [16, 16, 36, 36], .9)], pos,
                              every) is None


def _proposals(root, path, n=6):
    ds = DeepLesionDataset(data_root=str(root), ann_file='DL_info.csv',
                           data_prefix=dict(img='Images_png/'),
                           split='train', pipeline=[])
    props = []
    for i in range(n):
        info = ds.get_data_info(i % len(ds))
        name = info['series_dir'].rstrip('/').split('/')[-1]
        x1, y1, x2, y2 = info['instances'][0]['bbox']
        z = info['key_slice']
        if i % 3:  # FP somewhere else
            x1, y1, x2, y2 = 5., 5., 20., 20.
        props.append(dict(series_dir=name, bbox_3d=[x1, y1, z - 1.5, x2,
                                                    y2, z + 1.5],
                          score=0.5, label=int(i % 3 == 0)))
    path.write_text(json.dumps(dict(metainfo=dict(format=FORMAT),
                                    proposals=props)))


def test_patch_dataset(tiny_demo_root, tmp_path):
    ann = tmp_path / 'fpr.json'
    _proposals(tiny_demo_root, ann)
    ds = LENSFPRPatchDataset(ann_file=str(ann), data_root=str(tiny_demo_root),
                             patch_size=(8, 32, 32))
    assert len(ds) == 6 and ds.is_positive(0) and not ds.is_positive(1)
    item = ds[0]
    assert tuple(item['inputs'].shape) == (1, 8, 32, 32)
    assert item['inputs'].min() >= -1 and item['inputs'].max() <= 1
    x1, y1, z1, x2, y2, z2 = item['data_samples'].bbox_3d
    # the box is centred in the patch
    assert abs((x1 + x2) / 2 - 16) <= 1 and abs((z1 + z2) / 2 - 4) <= 1
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(dict(metainfo=dict(format=FORMAT), proposals=[
        dict(series_dir='s', bbox_3d=[5, 5, 5, 1, 1, 1], label=1)])))
    with pytest.raises(ValueError, match=r'proposals\[0\].bbox_3d'):
        LENSFPRPatchDataset(ann_file=str(bad), data_root=str(tiny_demo_root))


def test_demo_fpr_config_trains(tiny_demo_root, tmp_path):
    ann = tmp_path / 'fpr.json'
    _proposals(tiny_demo_root, ann, n=9)
    cfg = get_config('lens/demo/lens-fpr_resnet18-3d-tiny_radam-6e_deeplesion-demo-partial.py')
    cfg.train_dataloader.dataset.update(
        data_root=str(tiny_demo_root), ann_file=str(ann))
    cfg.train_dataloader.batch_size = 3
    cfg.train_cfg.max_epochs = 1
    cfg.work_dir = str(tmp_path / 'work')
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    with DefaultScope.overwrite_default_scope('mmdet'):
        runner = Runner.from_cfg(cfg)
        # 3 TPs and 6 FPs -> TP : FP = 1 : 2 -> 3 batches of 3
        assert len(runner.train_dataloader) == 3
        runner.train()
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()


def _sphere_volume(spacing, shape, centre_mm, radius_mm):
    """HU volume of a ball (100 HU in -900 HU), voxel i centred at
    (i + 0.5) * spacing mm (the boxes' convention)."""
    axes = [(np.arange(n) + 0.5) * s for n, s in zip(shape, spacing)]
    zz, yy, xx = np.meshgrid(*axes, indexing='ij')
    d = np.sqrt((zz - centre_mm[0])**2 + (yy - centre_mm[1])**2 +
                (xx - centre_mm[2])**2)
    # a smooth edge, so that linear resampling is faithful
    return (-900. + 1000. / (1. + np.exp((d - radius_mm) / 0.8))).astype(
        np.float32)


def _box_voxels(centre_mm, radius_mm, spacing):
    (cz, cy, cx), r = centre_mm, radius_mm
    sz, sy, sx = spacing
    return [(cx - r) / sx, (cy - r) / sy, (cz - r) / sz,
            (cx + r) / sx, (cy + r) / sy, (cz + r) / sz]


def test_crop_has_a_fixed_physical_size():
    """The same ball scanned at two spacings gives the same patch (and the
    same box in patch coordinates) when cropped at a physical size; the
    native-voxel crop does not."""
    centre, radius = (30., 33., 35.), 6.
    grids = [((1., 0.6, 0.6), (60, 110, 120)),
             ((2.5, 1.2, 1.2), (24, 55, 60))]
    window, size, phys = (-1000., 400.), (8, 32, 32), (2., 1., 1.)
    patches, boxes, native = [], [], []
    for spacing, shape in grids:
        vol = _sphere_volume(spacing, shape, centre, radius)
        box = _box_voxels(centre, radius, spacing)
        p, b = crop_fpr_patch(lambda z: vol[z], range(len(vol)), box,
                              FPRPatchSpec(size, window, phys), spacing)
        patches.append(p)
        boxes.append(b)
        native.append(
            crop_fpr_patch(lambda z: vol[z], range(len(vol)), box,
                           FPRPatchSpec(size, window))[0])
        assert p.shape == size and p.dtype == np.float32
    np.testing.assert_allclose(boxes[0], boxes[1], atol=1e-9)
    # the ball (12 mm) in a 16 x 32 x 32 mm patch: 6 voxels of 2 mm in z
    assert boxes[0][2:6:3] == pytest.approx([1., 7.])
    assert np.abs(patches[0] - patches[1]).mean() < 0.03
    assert np.abs(native[0] - native[1]).mean() > 0.1


def test_crop_at_the_source_spacing_is_the_voxel_crop():
    rng = np.random.default_rng(1)
    vol = rng.normal(0, 300, size=(10, 40, 40)).astype(np.float32)
    box = [10., 12., 3., 20., 22., 7.]  # centre (5, 17, 15): aligned
    spacing = (2.5, 0.7, 0.7)
    p, b = crop_fpr_patch(lambda z: vol[z], range(10), box,
                          FPRPatchSpec((4, 8, 8), (-1000., 1000.), spacing),
                          spacing)
    q, c = crop_fpr_patch(lambda z: vol[z], range(10), box,
                          FPRPatchSpec((4, 8, 8), (-1000., 1000.)))
    ref = np.clip((vol[3:7, 13:21, 11:19] + 1000.) / 2000., 0, 1) * 2 - 1
    np.testing.assert_allclose(p, ref, atol=1e-5)
    np.testing.assert_allclose(q, ref, atol=1e-5)
    assert b == c == [-1., -1., 0., 9., 9., 4.]
    with pytest.raises(ValueError, match='both'):
        crop_fpr_patch(lambda z: vol[z], range(10), box,
                       FPRPatchSpec((4, 8, 8), (-1000., 1000.)), spacing)


def test_patch_dataset_spacing_errors(tiny_demo_root, tmp_path):
    ann = tmp_path / 'fpr.json'
    ann.write_text(json.dumps(dict(metainfo=dict(format=FORMAT), proposals=[
        dict(series_dir='no_such_series', bbox_3d=[1, 1, 1, 5, 5, 3],
             label=0)])))
    with pytest.raises(ValueError,
                       match=r"proposals\[0\].series_dir 'no_such_series' "
                       'has no row in DL_info.csv'):
        LENSFPRPatchDataset(ann_file=str(ann), data_root=str(tiny_demo_root))
    # native voxels need no spacing
    LENSFPRPatchDataset(ann_file=str(ann), data_root=str(tiny_demo_root),
                        patch_spacing=None)
    ann.write_text(json.dumps(dict(metainfo=dict(format=FORMAT), proposals=[
        dict(series_dir='x', bbox_3d=[1, 1, 1, 5, 5, 3], label=0,
             spacing=[1., 0, 1.])])))
    with pytest.raises(ValueError, match=r'proposals\[0\].spacing'):
        LENSFPRPatchDataset(ann_file=str(ann), data_root=str(tiny_demo_root))
