# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS inference over whole series and 2D -> 3D stacking."""
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
from mmlesion.apis import iter_series_slices, predict_series_3d
from mmlesion.testing import get_config

CFG = 'lens/demo/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py'


def test_predict_series_3d(tiny_demo_root):
    cfg = get_config(CFG)
    ds_cfg = dict(cfg.test_dataloader.dataset, data_root=str(tiny_demo_root))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(ds_cfg)
        model = MODELS.build(cfg.model)
    model.init_weights()
    slices = [(s, z, k) for s, z, _, k, _ in iter_series_slices(
        dataset, max_offset=1, show_progress=False)]
    keys = [x for x in slices if x[2]]
    assert len(keys) == len(dataset) and len(slices) <= 3 * len(dataset)
    model.test_cfg.rcnn.score_thr = 0.
    out = predict_series_3d(model, dataset, max_offset=1,
                            show_progress=False)
    assert set(out) == {s.rstrip('/').split('/')[-1] for s, _, _ in keys}
    for findings in out.values():
        for f in findings:
            x1, y1, z1, x2, y2, z2 = f.bbox_3d
            assert x2 > x1 and y2 > y1 and z2 > z1
            assert f.slice_range[0] <= f.slice_range[1]
