# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS FPR data: TP / FP labels of 3D proposals, patches, and a short
training run of the demo FPR config."""
import json

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import mmlesion  # noqa: F401
from mmlesion.datasets import DeepLesionDataset, LENSFPRPatchDataset
from mmlesion.datasets.lens_fpr_patches import FORMAT, label_fpr_proposal
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
    cfg = get_config('lens/lens-fpr_resnet18-3d-tiny_radam-6e_demo-partial.py')
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
