# Copyright (c) mmlesion contributors. All rights reserved.
"""A config whose pretrained weights are neither in torch's hub cache nor
reachable (an offline machine) is refused in one line before training,
with the two ways on. No network: the cache is an empty folder and the
host's reachability is monkeypatched."""
import os
import sys

import pytest
import torch

from mmlesion.utils.checkpoints import pretrained
from mmlesion.utils.checkpoints.pretrained import (
    PretrainedUnavailableError, check_pretrained_available, hub_cache_file,
    pretrained_weights)
from tests.helpers.tool_modules import load_tool

RESNET50 = 'https://download.pytorch.org/models/resnet50-0676ba61.pth'
CONFIG = 'configs/elixirnet/faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py'


def _cfg(checkpoint='torchvision://resnet50'):
    return dict(model=dict(backbone=dict(init_cfg=dict(
        type='Pretrained', checkpoint=checkpoint)), roi_head=dict(
            shared_head=dict(init_cfg=[dict(type='Normal')]))))


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch hub cache and no network."""
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    monkeypatch.setattr(pretrained, 'url_reachable', lambda url: False)
    return tmp_path / 'hub' / 'checkpoints'


def test_offline_without_the_weights_one_line(offline, monkeypatch):
    (weights, ) = pretrained_weights(_cfg())
    assert weights.key == 'model.backbone.init_cfg'
    assert weights.resolved == RESNET50
    with pytest.raises(PretrainedUnavailableError) as err:
        check_pretrained_available(_cfg(), 'mine.py')
    msg = str(err.value)
    assert '\n' not in msg and msg.startswith(
        'mine.py: the pretrained weights of model.backbone.init_cfg '
        '(torchvision://resnet50) are not in the torch hub cache '
        f'({offline / "resnet50-0676ba61.pth"}) and download.pytorch.org '
        'cannot be reached')
    assert '--cfg-options model.backbone.init_cfg.checkpoint=PATH' in msg
    assert '--cfg-options model.backbone.init_cfg=None' in msg
    # a planned config: its planned variable sets the weights, the frozen
    # stages and the BN mode together
    with pytest.raises(PretrainedUnavailableError) as err:
        check_pretrained_available(dict(_cfg(), planned_names=[
            'pretrained']), 'mine.py')
    assert str(err.value).endswith(
        'or train without pretrained weights with --cfg-options '
        'pretrained=False (every stage trained, BN in training mode)')
    # the file in the cache, or the host reachable, or no pretrained
    # weights: nothing to say
    offline.mkdir(parents=True)
    (offline / 'resnet50-0676ba61.pth').write_bytes(b'x')
    assert hub_cache_file(RESNET50) == str(offline /
                                           'resnet50-0676ba61.pth')
    check_pretrained_available(_cfg(), 'mine.py')
    (offline / 'resnet50-0676ba61.pth').unlink()
    monkeypatch.setattr(pretrained, 'url_reachable', lambda url: True)
    check_pretrained_available(_cfg(), 'mine.py')
    check_pretrained_available(dict(model=dict(backbone=dict(
        init_cfg=None))), 'mine.py')


def test_local_file_and_unknown_name(offline, tmp_path):
    local = tmp_path / 'r50.pth'
    with pytest.raises(PretrainedUnavailableError, match='no such file'):
        check_pretrained_available(_cfg(str(local)), 'mine.py')
    local.write_bytes(b'x')
    check_pretrained_available(_cfg(str(local)), 'mine.py')
    with pytest.raises(PretrainedUnavailableError,
                       match=r'init_cfg\.checkpoint: .*no model'):
        check_pretrained_available(_cfg('torchvision://resnet5O'), 'mine.py')


def test_train_tool_refuses_before_training(offline, tmp_path, monkeypatch):
    """tools/train.py on a config with ImageNet weights, offline (its data
    taken as there): one line, before the runner is built."""
    from mmlesion.datasets import data_layout
    train = load_tool('train.py')
    monkeypatch.setattr(data_layout, 'warn_data_layout', lambda cfg: None)
    monkeypatch.setattr(sys, 'argv', ['train.py', CONFIG, '--work-dir',
                                      str(tmp_path / 'work')])
    with pytest.raises(SystemExit) as stop:
        train.main()
    msg = str(stop.value.code)
    assert msg.startswith(f'error: {CONFIG}: the pretrained weights of '
                          'model.backbone.init_cfg (torchvision://resnet50)')
    assert '\n' not in msg
    # no runner: the work dir holds the training's lock only, no log
    assert [n for n in os.listdir(tmp_path / 'work')
            if not n.endswith('.lock')] == []
