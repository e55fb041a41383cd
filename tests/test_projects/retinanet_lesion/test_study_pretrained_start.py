# Copyright (c) mmlesion contributors. All rights reserved.
"""Starting a study row from another row's backbone and FPN."""
import hashlib
import json

import pytest
import torch
from mmengine.config import Config

from projects.study_demo.study import RowContext, StudyRow, StudySettings
from projects.retinanet_lesion.pretrained_start import (P2_P6_STRIDES, START_FILE,
                                                  config_window,
                                                  last_checkpoint,
                                                  pretrained_start_step,
                                                  start_from_detector)
from mmlesion.testing import get_config

_FRCNN = 'elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py'
_RETINA = 'retinanet_lesion/demo/retinanet_r18-tiny_fpn_1x_deeplesion-demo.py'
_DENSE = ('retinanet_lesion/demo/improved-retinanet_r18-tiny_densefpn-ag_1x_deeplesion-demo.py')


def _windows(cfg: Config) -> list:
    return [
        tuple(t['window']) for loader in ('train_dataloader',
                                          'val_dataloader', 'test_dataloader')
        for t in cfg[loader].dataset.pipeline if t['type'] == 'WindowHU'
    ]


def _anchor_shapes(cfg: Config):
    from mmlesion.anchors.anchor_config import AnchorConfig
    a = AnchorConfig.from_generator_cfg(cfg.model.bbox_head.anchor_generator)
    return a.strides, sorted(a.shapes().round(4).tolist())


def test_config_window():
    assert config_window(get_config(_FRCNN)) == (-250., 350.)
    cfg = get_config(_RETINA)
    assert config_window(cfg) == (-1024., 1050.)
    for t in cfg.val_dataloader.dataset.pipeline:
        if t['type'] == 'WindowHU':
            t['window'] = (-100., 200.)
    with pytest.raises(ValueError, match='one WindowHU window'):
        config_window(cfg)


def test_retinanet_moves_to_p2_p6_keeping_anchor_shapes():
    cfg = get_config(_RETINA)
    strides, shapes = _anchor_shapes(cfg)
    assert strides == (8, 16, 32, 64, 128)
    start_from_detector(cfg, 'x.pth', (-250., 350.))
    assert cfg.model.neck.start_level == 0
    new_strides, new_shapes = _anchor_shapes(cfg)
    assert new_strides == P2_P6_STRIDES and new_shapes == shapes
    assert cfg.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint='x.pth', prefix='backbone.')
    inits = cfg.model.neck.init_cfg
    assert inits[0]['type'] == 'Xavier' and inits[-1] == dict(
        type='Pretrained', checkpoint='x.pth', prefix='neck.')
    assert set(_windows(cfg)) == {(-250., 350.)} and len(_windows(cfg)) == 3


def test_dense_row_keeps_its_pyramid():
    cfg = get_config(_DENSE)
    before = _anchor_shapes(cfg)
    start_from_detector(cfg, 'x.pth', (-250., 350.))
    assert cfg.model.neck.start_level == 0 and _anchor_shapes(cfg) == before
    cfg.model.neck = dict(type='PAFPN', in_channels=[1], out_channels=1,
                          num_outs=1)
    with pytest.raises(ValueError, match='must be an FPN'):
        start_from_detector(cfg, 'x.pth', (0., 1.))


def test_loaded_weights_are_the_detectors(tmp_path):
    """Backbone and every FPN conv of the RetinaNet equal those of the
    Faster R-CNN checkpoint, level by level; the heads do not."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    torch.manual_seed(0)
    frcnn = MODELS.build(get_config(_FRCNN).model)
    frcnn.init_weights()
    path = str(tmp_path / 'epoch_12.pth')
    torch.save(dict(state_dict=frcnn.state_dict(), meta={}), path)
    cfg = get_config(_RETINA)
    start_from_detector(cfg, path, (-250., 350.))
    retina = MODELS.build(cfg.model)
    retina.init_weights()
    theirs = frcnn.state_dict()
    mine = retina.state_dict()
    loaded = [k for k in mine if k.startswith(('backbone.', 'neck.'))
              and k in theirs]
    # 4 laterals + 4 output convs of C2..C5 (weight, bias each)
    assert sum(k.startswith('neck.') for k in loaded) == 16
    for k in loaded:
        assert torch.equal(mine[k], theirs[k]), k
    assert 'neck.fpn_convs.4.conv.weight' not in theirs  # own extra conv
    assert mine['neck.fpn_convs.4.conv.weight'].abs().sum() > 0
    assert not any(k.startswith('bbox_head.') and k in theirs for k in mine)


def test_step_uses_the_source_rows_checkpoint(tmp_path):
    source = StudyRow('fpn', 'pre', _FRCNN)
    settings = StudySettings(str(tmp_path), seeds=(1, ), max_epochs=2)
    row = StudyRow('optanchors', 'opt', _RETINA)
    row_dir = tmp_path / 'optanchors' / 'seed_1'
    row_dir.mkdir(parents=True)
    called = []
    step = pretrained_start_step(
        source, then=lambda cfg, ctx: called.append(ctx.seed))
    ctx = RowContext(row, 1, str(row_dir), settings)
    with pytest.raises(FileNotFoundError, match="row 'fpn' \\(seed 1\\)"):
        step(get_config(_RETINA), ctx)
    ckpt = tmp_path / 'fpn' / 'seed_1' / 'epoch_2.pth'
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b'weights')
    assert last_checkpoint(settings, 'fpn', _FRCNN, 1) == str(ckpt)
    cfg = step(get_config(_RETINA), ctx)
    assert cfg.model.backbone.init_cfg.checkpoint == str(ckpt)
    assert called == [1]
    record = json.loads((row_dir / START_FILE).read_text())
    assert record['row'] == 'fpn' and record['window'] == [-250., 350.]
    assert record['sha256'] == hashlib.sha256(b'weights').hexdigest()
    # a tested-only row: its own checkpoint holds every weight
    cfg = step(get_config(_RETINA), RowContext(row, 1, str(row_dir),
                                               settings, train=False))
    assert cfg.model.backbone.init_cfg is None
    assert cfg.model.neck.start_level == 0
