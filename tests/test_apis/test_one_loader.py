# Copyright (c) mmlesion contributors. All rights reserved.
"""One way to build a detector and load its weights:
:func:`mmlesion.apis.init_lesion_detector`.

The source check: no module of ``mmlesion/``, ``tools/`` or ``projects/``
but the loader's both builds a model (``MODELS.build(...)``, or mmdet's
``init_detector``) and loads weights (``load_checkpoint``,
``load_model_checkpoint``, ``load_state_dict``, ...). A module that only
builds (an anchor pyramid, a timing of a fresh model) or only loads (a
backbone's pretrained weights) is no second loader; the rule tells them
apart by itself, with no list of exempt files. The behaviour: the checks,
the scope rule, the device, the class names, the trust switch.
"""
import ast
import datetime
import os
from pathlib import Path
from typing import Iterator, List, Optional

import pytest
import torch
from mmengine.config import Config

from mmlesion.apis import (DetectorLoadSettings, LoadedDetector,
                           init_lesion_detector)
from mmlesion.apis import detector_loader
from mmlesion.testing import get_config, repo_root
from mmlesion.utils.checkpoints.loader import (TRUST_ENV,
                                               CheckpointMismatchError,
                                               UntrustedCheckpointError,
                                               trusting_checkpoints)

#: The module that may build a model and load its weights.
LOADER = Path(detector_loader.__file__).resolve()
#: Calls that load weights into a model.
LOADS = frozenset({
    'load_checkpoint', 'load_model_checkpoint', 'load_state_dict',
    '_load_checkpoint_to_model', 'check_state_dict_matches'
})
#: Calls that build a model and load its weights at once.
BUILDS_AND_LOADS = frozenset({'init_detector'})
DEMO_CFG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'


def _call_name(node: ast.expr) -> Optional[str]:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def builds_and_loads(path: Path) -> List[int]:
    """Lines of a file's model builds, if it also loads weights (else
    ``[]``)."""
    builds, loads = [], []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        func, name = node.func, _call_name(node.func)
        if (isinstance(func, ast.Attribute) and func.attr == 'build'
                and _call_name(func.value) == 'MODELS'):
            builds.append(node.lineno)
        if name in LOADS:
            loads.append(node.lineno)
        if name in BUILDS_AND_LOADS:
            builds.append(node.lineno)
            loads.append(node.lineno)
    return sorted(builds) if builds and loads else []


def _sources(root: Path) -> Iterator[Path]:
    for folder in ('mmlesion', 'tools', 'projects'):
        for path in sorted((root / folder).rglob('*.py')):
            if not any(part.startswith('.')
                       for part in path.relative_to(root).parts):
                yield path


def second_loaders(root: Path, loader: Path = LOADER) -> List[str]:
    """Every module but ``loader`` that builds a model and loads weights."""
    return [
        f'{path.relative_to(root)}:{lines[0]}: builds a model and loads its '
        'weights itself; use mmlesion.apis.init_lesion_detector'
        for path in _sources(root) if path.resolve() != loader
        for lines in [builds_and_loads(path)] if lines
    ]


def test_one_module_builds_and_loads():
    root = repo_root()
    assert second_loaders(root) == []
    assert builds_and_loads(LOADER)  # the rule sees the loader itself


def test_a_second_loader_is_caught(tmp_path):
    def write(rel: str, text: str) -> None:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    write('mmlesion/apis/detector_loader.py',
          'MODELS.build(cfg.model)\nload_model_checkpoint(m, c)\n')
    # only builds / only loads: no second loader
    write('mmlesion/anchors/pyramid.py', 'model = MODELS.build(cfg)\n')
    write('mmlesion/models/backbone.py',
          'def init_weights(self):\n    self.load_state_dict(s)\n')
    # both, in any form
    write('tools/bad.py', 'from mmengine.runner import load_checkpoint\n'
          'def f():\n    m = registry.MODELS.build(c)\n'
          '    load_checkpoint(m, p)\n')
    write('projects/p/bad.py', 'from mmdet.apis import init_detector\n'
          'm = init_detector(c, p)\n')
    found = second_loaders(tmp_path,
                           tmp_path / 'mmlesion/apis/detector_loader.py')
    assert [f.split(': ')[0] for f in found] == [
        'tools/bad.py:3', 'projects/p/bad.py:2'
    ], found


@pytest.fixture(scope='module')
def demo_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = init_lesion_detector(get_config(DEMO_CFG)).model
    path = tmp_path_factory.mktemp('ckpt') / 'demo.pth'
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(dataset_meta=dict(CLASSES=('nodule', )),
                              note='kept')), path)
    return path, model.state_dict()


def test_weights_classes_and_meta(demo_checkpoint):
    path, state = demo_checkpoint
    loaded = init_lesion_detector(
        str(repo_root() / 'configs' / DEMO_CFG), str(path))
    assert isinstance(loaded, LoadedDetector)
    model = loaded.model
    assert not model.training and model.cfg is loaded.cfg
    assert loaded.checkpoint_meta['note'] == 'kept'
    assert model.dataset_meta == dict(classes=('nodule', ))
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    # no checkpoint: the class names of the config's test dataset
    fresh = init_lesion_detector(get_config(DEMO_CFG)).model
    assert tuple(fresh.dataset_meta['classes']) == ('lesion', )


def test_checks(tmp_path, demo_checkpoint):
    with pytest.raises(FileNotFoundError, match='nothing.py'):
        init_lesion_detector(str(tmp_path / 'nothing.py'))
    with pytest.raises(ValueError, match='has no model'):
        init_lesion_detector(Config(dict(a=1)))
    with pytest.raises(ValueError):  # a typo in the options
        init_lesion_detector(
            get_config(DEMO_CFG),
            settings=DetectorLoadSettings(
                cfg_options={'model.roi_head.bbox_haed.num_classes': 2}))
    cfg = get_config(DEMO_CFG)
    cfg.model.roi_head.bbox_head.num_classes = 3
    with pytest.raises(CheckpointMismatchError):
        init_lesion_detector(cfg, str(demo_checkpoint[0]))
    cfg = get_config(DEMO_CFG)
    cfg.model.roi_head.bbox_head.num_classes = 3
    init_lesion_detector(cfg, str(demo_checkpoint[0]),
                         DetectorLoadSettings(allow_partial=True))


def test_scope_is_the_configs_own():
    from mmengine.registry import DefaultScope
    cfg = get_config(DEMO_CFG)
    init_lesion_detector(cfg)
    assert DefaultScope.get_current_instance().scope_name == 'mmdet'
    cfg.default_scope = 'mmlesion'
    model = init_lesion_detector(cfg).model
    assert DefaultScope.get_current_instance().scope_name == 'mmlesion'
    assert type(model).__name__ == cfg.model.type


def test_init_weights_keeps_the_backbone_init_cfg():
    cfg = get_config(DEMO_CFG)
    cfg.model.backbone.init_cfg = dict(type='Kaiming', layer='Conv2d')
    init_lesion_detector(cfg, settings=DetectorLoadSettings(
        init_weights=True))
    assert cfg.model.backbone.init_cfg is not None
    init_lesion_detector(cfg)
    assert cfg.model.backbone.init_cfg is None  # as mmdet's init_detector


def test_trust_switch_is_restored(monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    with trusting_checkpoints():
        assert os.environ[TRUST_ENV] == '1'
    assert TRUST_ENV not in os.environ
    monkeypatch.setenv(TRUST_ENV, '0')
    with trusting_checkpoints(False):
        assert os.environ[TRUST_ENV] == '0'
    with trusting_checkpoints():
        assert os.environ[TRUST_ENV] == '1'
    assert os.environ[TRUST_ENV] == '0'


def test_trust_flag_loads_what_the_allow_list_refuses(tmp_path, monkeypatch,
                                                      demo_checkpoint):
    monkeypatch.setenv(TRUST_ENV, '0')
    path = tmp_path / 'dated.pth'
    torch.save(dict(state_dict=demo_checkpoint[1],
                    meta=dict(when=datetime.date(2024, 1, 2))), path)
    with pytest.raises(UntrustedCheckpointError, match='dated.pth'):
        init_lesion_detector(get_config(DEMO_CFG), str(path))
    loaded = init_lesion_detector(
        get_config(DEMO_CFG), str(path),
        DetectorLoadSettings(trust_checkpoint=True))
    assert loaded.checkpoint_meta['when'] == datetime.date(2024, 1, 2)
    assert os.environ[TRUST_ENV] == '0'
