# Copyright (c) mmlesion contributors. All rights reserved.
"""Pretrained-weight names resolve without downloading, and torchvision://
names load even where torchvision is missing or a mismatched build."""
import sys
import types

import pytest
from mmengine.runner import CheckpointLoader

import mmlesion  # noqa: F401  (registers the loader)
from mmlesion.utils.checkpoints import pretrained
from mmlesion.utils.checkpoints.pretrained import resolve_checkpoint_source

RESNET50 = 'https://download.pytorch.org/models/resnet50-0676ba61.pth'


def _broken_torchvision(monkeypatch):
    """PyPI's CUDA torchvision next to a CPU torch fails like this."""
    monkeypatch.setitem(sys.modules, 'torchvision',
                        types.ModuleType('torchvision'))

    def fail():
        raise RuntimeError('operator torchvision::nms does not exist')

    monkeypatch.setattr(pretrained, 'get_torchvision_models', fail)


def test_torchvision_names_without_working_torchvision(monkeypatch):
    _broken_torchvision(monkeypatch)
    assert resolve_checkpoint_source('torchvision://resnet50') == RESNET50
    assert resolve_checkpoint_source('modelzoo://resnet18').endswith(
        'resnet18-f37072fd.pth')
    table, origin = pretrained.torchvision_model_urls()
    assert 'vgg19' in table and 'operator torchvision::nms' in origin


def test_working_torchvision_table_is_used(monkeypatch):
    monkeypatch.setitem(sys.modules, 'torchvision',
                        types.SimpleNamespace(__version__='0.28.0'))
    monkeypatch.setattr(pretrained, 'get_torchvision_models',
                        lambda: {'resnet50': 'https://example.org/r50.pth'})
    assert resolve_checkpoint_source(
        'torchvision://resnet50') == 'https://example.org/r50.pth'


def test_unknown_name_lists_close_names():
    with pytest.raises(KeyError, match="resnet50"):
        resolve_checkpoint_source('torchvision://resnet5')
    with pytest.raises(ValueError):
        resolve_checkpoint_source('')


def test_other_schemes():
    assert resolve_checkpoint_source(
        'open-mmlab://detectron2/resnet50_caffe').startswith('https://')
    assert resolve_checkpoint_source('https://a/b.pth') == 'https://a/b.pth'
    assert resolve_checkpoint_source('work_dirs/x/epoch_1.pth') == \
        'work_dirs/x/epoch_1.pth'


def test_mmengine_loader_uses_the_fallback(monkeypatch):
    """Model init with init_cfg=Pretrained('torchvision://resnet50') no
    longer needs torchvision: the URL goes to mmengine's HTTP loader."""
    _broken_torchvision(monkeypatch)
    fetched = []
    monkeypatch.setattr(pretrained, 'load_from_http',
                        lambda url, map_location=None: fetched.append(url)
                        or {'state_dict': {}})
    ckpt = CheckpointLoader.load_checkpoint('torchvision://resnet50')
    assert fetched == [RESNET50] and ckpt == {'state_dict': {}}
