# Copyright (c) mmlesion contributors. All rights reserved.
"""Every config under configs/ loads, builds its model and names pretrained
weights that resolve to a URL or file, without downloading.

Every top-level key must be read by something (no typos such as
``trian_cfg``, :func:`mmlesion.utils.find_unknown_config_keys`). Configs are
found by globbing, so configs that other folders add are covered
without editing this file. Models are built as the config has them
(``init_cfg`` included) but ``init_weights`` is never called, so nothing is
fetched; every ``Pretrained`` source and ``load_from`` is resolved with
:func:`mmlesion.utils.resolve_checkpoint_source` instead. A config naming a
component of a method home (``mmlesion/methods/<name>/``) imports that home
in its ``custom_imports``: ``import mmlesion`` registers none of them.
"""
import copy
import gc
import re
from pathlib import Path
from typing import Iterator, List

import pytest
from mmdet import registry as mmdet_registry
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
from mmlesion.methods import import_methods
from projects.study_demo.config_smoke import amp_config_problems
from mmlesion.testing import repo_root
from mmlesion.utils import (find_unknown_config_keys,
                            resolve_checkpoint_source)

import_methods()  # every method home's components
CONFIG_ROOT = repo_root() / 'configs'
# Folders of the 2D methods whose papers start from ImageNet weights.
IMAGENET_FOLDERS = ('elixirnet/', 'retinanet_lesion/')
CONFIGS = sorted(
    str(p.relative_to(CONFIG_ROOT)) for p in CONFIG_ROOT.rglob('*.py')
    if '_base_' not in p.relative_to(CONFIG_ROOT).parts)


def _pretrained_sources(node) -> Iterator[str]:
    """Every ``Pretrained`` checkpoint and old-style ``pretrained=`` name."""
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained' and node.get('checkpoint'):
            yield node['checkpoint']
        if isinstance(node.get('pretrained'), str):
            yield node['pretrained']
        for value in node.values():
            yield from _pretrained_sources(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _pretrained_sources(value)


def _check_source(name: str, source: str) -> str:
    resolved = resolve_checkpoint_source(source)
    if resolved.startswith(('http://', 'https://')):
        return resolved
    # A local checkpoint: either it exists or it is the output of another
    # config of this repository (work_dirs/<config name>/...).
    path = Path(resolved)
    if path.is_file():
        return resolved
    parts = path.parts
    assert parts[0] == 'work_dirs' and len(parts) >= 3, (
        f'{name}: {source!r} is neither a URL nor an existing file nor a '
        'work_dirs/<config>/ checkpoint of this repository')
    # `tools/train.py CONFIG --fold K` writes work_dirs/<config>_foldK/.
    producer = re.sub(r'_fold\d+$', '', parts[1])
    producers = list(CONFIG_ROOT.rglob(producer + '.py'))
    assert producers, (f'{name}: {source!r} comes from no config named '
                       f'{producer}.py under configs/')
    return resolved


def _types(node) -> Iterator[str]:
    """Every string ``type`` of the dicts in ``node``."""
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield node['type']
        node = list(node.values())
    if isinstance(node, (list, tuple)):
        for value in node:
            yield from _types(value)


def method_homes_needed(cfg) -> List[str]:
    """The method homes (``mmlesion.methods.<name>``) whose components
    ``cfg`` names, found in mmdet's registries."""
    registries = [r for r in vars(mmdet_registry).values()
                  if isinstance(r, type(MODELS))]
    homes = set()
    for name in _types(cfg.to_dict()):
        for registry in registries:
            obj = registry.module_dict.get(name)
            module = getattr(obj, '__module__', '')
            if module.startswith('mmlesion.methods.'):
                homes.add('.'.join(module.split('.')[:3]))
    return sorted(homes)


def test_configs_found():
    assert len(CONFIGS) >= 40
    assert any(c.startswith('elixirnet/') for c in CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_loads_builds_and_resolves(name):
    cfg = Config.fromfile(str(CONFIG_ROOT / name))
    assert 'model' in cfg, f'{name} has no model'
    assert find_unknown_config_keys(cfg) == [], name
    assert cfg.get('default_scope') == 'mmdet', name
    assert amp_config_problems(cfg) == [], name  # AMP-safe RPN settings
    imports = cfg.get('custom_imports', {}).get('imports', [])
    assert [h for h in method_homes_needed(cfg) if h not in imports] == [], (
        f'{name}: add the method home to custom_imports')
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(copy.deepcopy(cfg.model))
    assert sum(p.numel() for p in model.parameters()) > 0
    del model
    gc.collect()
    sources: List[str] = list(_pretrained_sources(cfg.model))
    if cfg.get('load_from'):
        sources.append(cfg.load_from)
    for source in sources:
        _check_source(name, source)
    if 'demo' in name:
        # Demo configs run offline: no weights to download.
        assert not any(
            s.startswith(('http', 'torchvision', 'open-mmlab', 'mmcls'))
            for s in sources), (name, sources)
    elif name.startswith(IMAGENET_FOLDERS) and not cfg.get('load_from'):
        # ElixirNet and the Improved RetinaNet start from ImageNet: their
        # full-size configs that do not fine-tune a trained detector name
        # the weights, as URLs.
        assert sources, f'{name} names no pretrained backbone'
        for source in sources:
            assert _check_source(name, source).startswith('https://'), (
                name, source)


def test_a_method_component_needs_its_home():
    cfg = Config(dict(model=dict(
        type='FasterRCNN', rpn_head=dict(type='TruncatedRPNHead'),
        roi_head=dict(type='StandardRoIHead'))))
    assert method_homes_needed(cfg) == ['mmlesion.methods.elixirnet']
