# Copyright (c) mmlesion contributors. All rights reserved.
"""One way to build a detector and load its weights:
:func:`mmlesion.apis.init_lesion_detector`.

The source check: no module of ``mmlesion/``, ``tools/`` or ``projects/``
but the loader's both builds a model (``MODELS.build(...)``, or mmdet's
``init_detector``) and loads weights (``load_checkpoint``,
``load_model_checkpoint``, ``load_state_dict``, ...). A module that only
builds (an anchor pyramid, a timing of a fresh model) or only loads (a
backbone's pretrained weights) is no second loader; the rule tells them
apart by itself, with no list of exempt files.

An inherited loader is caught too: mmengine's ``BaseInferencer`` builds and
loads in ``_init_model`` / ``_load_weights_to_model``, which a subclass
would run without a line of its own. In the source, a class deriving from
an inferencer of mmengine or mmdet must define ``_init_model``, and every
``_init_model`` must load through ``init_lesion_detector`` (a
``_load_weights_to_model`` loads nothing); at run time, every inferencer
class of mmlesion takes ``_init_model`` from mmlesion, and
:class:`~mmlesion.apis.LesionDetInferencer` is built with mmengine's and
mmdet's build-and-load made to fail.

The behaviour: the checks, the scope rule, the device, the class names,
the trust switch; the inferencer refuses what the loader refuses.
"""
import ast
import datetime
import functools
import os
from pathlib import Path
from typing import FrozenSet, Iterator, List, Optional

import pytest
import torch
from mmengine.config import Config
from mmengine.infer import BaseInferencer

from mmlesion.apis import (DetectorLoadSettings, LesionDetInferencer,
                           LoadedDetector, init_lesion_detector)
from mmlesion.apis import det_inferencer, detector_loader
from mmlesion.testing import get_config, repo_root
from mmlesion.utils.checkpoints.loader import (TRUST_ENV,
                                               CheckpointMismatchError,
                                               NonFiniteWeightsError,
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


@functools.lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    """A source file parsed (once per test process)."""
    return ast.parse(path.read_text(), filename=str(path))


def builds_and_loads(path: Path) -> List[int]:
    """Lines of a file's model builds, if it also loads weights (else
    ``[]``)."""
    builds, loads = [], []
    for node in ast.walk(_tree(path)):
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


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_one_module_builds_and_loads():
    root = repo_root()
    assert second_loaders(root) == []
    assert builds_and_loads(LOADER)  # the rule sees the loader itself


def test_a_second_loader_is_caught(tmp_path):
    write = functools.partial(_write, tmp_path)
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


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def foreign_inferencers() -> FrozenSet[str]:
    """Names of mmengine's ``BaseInferencer`` and of its subclasses outside
    mmlesion (mmdet's ``DetInferencer``, ...)."""
    return frozenset({'BaseInferencer'} | {
        c.__name__ for c in _subclasses(BaseInferencer)
        if not c.__module__.startswith('mmlesion')})


def _calls(node: ast.AST) -> List[str]:
    return [_call_name(n.func) for n in ast.walk(node)
            if isinstance(n, ast.Call)]


def inherited_loaders(root: Path,
                      foreign: FrozenSet[str] = frozenset()) -> List[str]:
    """Classes of the sources that would build and load as mmengine's
    inferencer does: deriving from a ``foreign`` inferencer without their
    own ``_init_model``, an ``_init_model`` that does not call
    ``init_lesion_detector``, a ``_load_weights_to_model`` that loads."""
    foreign = foreign or foreign_inferencers()
    found = []
    for path in _sources(root):
        for cls in ast.walk(_tree(path)):
            if not isinstance(cls, ast.ClassDef):
                continue
            where = f'{path.relative_to(root)}:{cls.lineno}: {cls.name}'
            methods = {f.name: f for f in cls.body
                       if isinstance(f, ast.FunctionDef)}
            if ({_call_name(b) for b in cls.bases} & foreign
                    and '_init_model' not in methods):
                found.append(f'{where} inherits mmengine\'s build-and-load '
                             '(_init_model); override it with '
                             'init_lesion_detector')
            init = methods.get('_init_model')
            if init is not None and 'init_lesion_detector' not in _calls(
                    init):
                found.append(f'{where}._init_model does not load through '
                             'init_lesion_detector')
            weights = methods.get('_load_weights_to_model')
            if weights is not None and set(_calls(weights)) & (
                    LOADS | {'_load_weights_to_model'}):
                found.append(f'{where}._load_weights_to_model loads '
                             'weights itself')
    return found


def test_no_inferencer_inherits_a_loader():
    assert 'DetInferencer' in foreign_inferencers()
    assert inherited_loaders(repo_root()) == []
    # at run time: every inferencer of mmlesion builds and loads as
    # mmlesion does, not as mmengine's BaseInferencer
    ours = [c for c in _subclasses(BaseInferencer)
            if c.__module__.startswith('mmlesion')]
    assert LesionDetInferencer in ours
    for cls in ours:
        owner = next(k for k in cls.__mro__ if '_init_model' in vars(k))
        assert owner.__module__.startswith('mmlesion'), (cls, owner)


def test_an_inherited_loader_is_caught(tmp_path):
    write = functools.partial(_write, tmp_path)
    write('mmlesion/apis/good.py',
          'class A(DetInferencer):\n'
          '    def _init_model(self, cfg, weights, device):\n'
          '        return init_lesion_detector(cfg, weights).model\n'
          '    def _load_weights_to_model(self, m, c, cfg):\n'
          '        raise NotImplementedError\n'
          'class B(A):\n    pass\n')
    write('mmlesion/apis/bad.py',
          'class C(mmdet.apis.DetInferencer):\n    window = 1\n'
          'class D(BaseInferencer):\n'
          '    def _init_model(self, cfg, weights, device):\n'
          '        return MODELS.build(cfg.model)\n')
    write('tools/bad.py',
          'class E(A):\n'
          '    def _load_weights_to_model(self, m, c, cfg):\n'
          '        super()._load_weights_to_model(m, c, cfg)\n')
    found = inherited_loaders(tmp_path,
                              frozenset({'BaseInferencer', 'DetInferencer'}))
    assert [f.split(': ')[1].split(' ')[0] for f in found] == [
        'C', 'D._init_model', 'E._load_weights_to_model'], found


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


def test_a_preloaded_checkpoint_is_not_read_again(demo_checkpoint,
                                                  monkeypatch):
    """init_lesion_detector(preloaded=): the weights of the dict the caller
    read (no torch.load), the same checks, the dict emptied after."""
    from mmlesion.apis.whole_scan.model import read_checkpoint
    path, state = demo_checkpoint
    preloaded = read_checkpoint(str(path))
    monkeypatch.setattr(torch, 'load', None)  # any read fails
    loaded = init_lesion_detector(get_config(DEMO_CFG), str(path),
                                  preloaded=preloaded)
    assert preloaded == {} and loaded.checkpoint_meta['note'] == 'kept'
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, state[key]), key


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


def test_inferencer_loads_only_through_the_loader(demo_checkpoint,
                                                  monkeypatch):
    """mmengine's and mmdet's build-and-load made to fail: the inferencer
    still builds, through init_lesion_detector, with its checks (NaN
    weights refused) and the config's own scope."""
    from mmdet.apis import DetInferencer
    from mmengine.registry import DefaultScope

    def never(*args, **kwargs):
        raise AssertionError('mmengine / mmdet built or loaded the model')

    for cls in (BaseInferencer, DetInferencer):
        monkeypatch.setattr(cls, '_init_model', never, raising=False)
        monkeypatch.setattr(cls, '_load_weights_to_model', never,
                            raising=False)
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        return init_lesion_detector(*args, **kwargs)

    monkeypatch.setattr(det_inferencer, 'init_lesion_detector', spy)
    path, state = demo_checkpoint
    cfg = get_config(DEMO_CFG)
    cfg.default_scope = 'mmlesion'
    inferencer = LesionDetInferencer(model=cfg, weights=str(path),
                                     device='cpu', show_progress=False)
    assert len(calls) == 1
    assert inferencer.scope == 'mmlesion'
    assert DefaultScope.get_current_instance().scope_name == 'mmlesion'
    assert inferencer.model.dataset_meta['classes'] == ('nodule', )
    for key, value in inferencer.model.state_dict().items():
        assert torch.equal(value, state[key]), key
    with pytest.raises(ValueError, match="default_scope 'mmlesion'"):
        LesionDetInferencer(model=cfg, scope='mmdet')


def test_inferencer_refuses_nan_weights(demo_checkpoint, tmp_path):
    """What mmengine's loading took (a diverged training's weights),
    refused as init_lesion_detector refuses it, naming the file."""
    state = dict(demo_checkpoint[1])
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float('nan')
    path = tmp_path / 'diverged.pth'
    torch.save(dict(state_dict=state), path)
    with pytest.raises(NonFiniteWeightsError, match='diverged.pth'):
        init_lesion_detector(get_config(DEMO_CFG), str(path))
    with pytest.raises(NonFiniteWeightsError,
                       match=f'diverged.pth.*{name}: 1 NaN'):
        LesionDetInferencer(model=get_config(DEMO_CFG), weights=str(path),
                            device='cpu', show_progress=False)
