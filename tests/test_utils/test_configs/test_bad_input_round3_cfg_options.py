# Copyright (c) mmlesion contributors. All rights reserved.
"""``--cfg-options`` that would not reach where the user thinks: a typo in
a nested key, a value of the wrong kind, a new ``data_root``."""
import argparse
import importlib.util
import sys

import pytest

from mmlesion.testing import get_config, repo_root
from mmlesion.utils.configs.cfg_options import (ConfigOptionError,
                                                apply_cfg_options,
                                                check_cfg_options)

CONFIG = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
LUNA = 'aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-demo.py'


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(
        f'mmlesion_{name}_tool', repo_root() / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('key,value,closest', [
    # plain dict (no type): close to an existing key
    ('model.test_cfg.rcnn.score_thres', .5, 'model.test_cfg.rcnn.score_thr'),
    ('model.test_cfg.rpn.max_per_image', 10,
     'model.test_cfg.rpn.max_per_img'),
    # component (with a type): its constructor takes no such argument
    ('train_cfg.max_epoch', 3, 'train_cfg.max_epochs'),
    ('train_dataloader.dataset.indeces', 4,
     'train_dataloader.dataset.indices'),
    ('default_hooks.checkpoint.max_keep_ckpt', 1,
     'default_hooks.checkpoint.max_keep_ckpts'),
    ('optim_wrapper.optimizer.lrr', .1, 'optim_wrapper.optimizer.lr'),
    # plain dicts whose keys mmengine / torch define
    ('env_cfg.dist_cfg.timout', 600, 'env_cfg.dist_cfg.timeout'),
    ('train_dataloader.batch_sise', 2, 'train_dataloader.batch_size'),
    ('randomness.sed', 0, 'randomness.seed'),  # absent from the config
])
def test_typo_in_nested_key_is_refused(key, value, closest):
    cfg = get_config(CONFIG)
    with pytest.raises(ConfigOptionError) as info:
        apply_cfg_options(cfg, {key: value}, source='my.py')
    message = str(info.value)
    assert message.startswith('my.py: --cfg-options ' + key)
    assert f'did you mean {closest}?' in message
    assert '\n' not in message


@pytest.mark.parametrize('key,value', [
    ('val_evaluator.num_bootstrap', 10),  # FROCMetric has none
    ('train_dataloader.dataset.pipeline.1.clip', True),  # WindowHU
    ('train_dataloader.dataset.pipeline.99.scale', 1),  # 7 transforms
    ('model.backbone.depth.x', 1),  # an int, not a dict
])
def test_key_the_component_does_not_take_is_refused(key, value):
    cfg = get_config(CONFIG)
    with pytest.raises(ConfigOptionError, match=key.replace('.', r'\.')):
        check_cfg_options(cfg, {key: value}, source='my.py')


def test_keys_that_add_real_settings_are_accepted(log_messages):
    """New keys a constructor takes (mmdet allows them) pass; a new key of
    a plain dict that nothing checks passes with a warning."""
    cfg = get_config(CONFIG)
    options = {
        'train_cfg.val_begin': 2,  # EpochBasedTrainLoop argument
        'train_dataloader.dataset.indices': 4,  # BaseDataset, via kwargs
        'env_cfg.dist_cfg.timeout': 600,
        'randomness.seed': 0,
        'default_hooks.checkpoint.priority': 'VERY_LOW',
        'model.backbone.init_cfg': None,
        'optim_wrapper.paramwise_cfg': dict(norm_decay_mult=0.),
        'model.test_cfg.rcnn.mask_thr_binary': .5,
        'train_dataloader.dataset.data_root': '/data/DL/',
    }
    warnings = check_cfg_options(cfg, options, source='my.py')
    assert len(warnings) == 1 and 'mask_thr_binary' in warnings[0]
    assert any('model.test_cfg.rcnn.mask_thr_binary: not in the config' in m
               for m in log_messages)
    apply_cfg_options(cfg, options, source='my.py')
    assert cfg.train_cfg.val_begin == 2
    assert cfg.train_dataloader.dataset.indices == 4


@pytest.mark.parametrize('key,value,kind', [
    ('model.test_cfg.rcnn.score_thr', '0.5x', 'a number'),
    ('train_cfg.max_epochs', 'ten', 'a number'),
    ('model.test_cfg.rcnn.score_thr', [0, 5], 'a number'),  # 0,5 -> list
    ('model.roi_head.bbox_head.num_classes', 'two', 'a number'),
    ('train_dataloader.persistent_workers', 'no', 'True or False'),
])
def test_value_of_the_wrong_kind_is_refused(key, value, kind):
    cfg = get_config(CONFIG)
    with pytest.raises(ConfigOptionError) as info:
        apply_cfg_options(cfg, {key: value}, source='my.py')
    assert f'--cfg-options {key}={value!r}' in str(info.value)
    assert kind in str(info.value)


def test_none_and_numbers_of_another_kind_are_accepted():
    cfg = get_config(CONFIG)
    apply_cfg_options(cfg, {'model.test_cfg.rcnn.score_thr': 1,
                            'model.train_cfg.rcnn.assigner.ignore_iof_thr':
                            .5,
                            'default_hooks.checkpoint.max_keep_ckpts': None},
                      source='my.py')
    assert cfg.model.test_cfg.rcnn.score_thr == 1
    with pytest.raises(ConfigOptionError, match='ten'):
        apply_cfg_options(cfg, {'train_cfg.max_epochs': 'ten'}, 'my.py')


@pytest.mark.parametrize('name,paths', [
    (CONFIG, ['train_dataloader.dataset.data_root',
              'val_dataloader.dataset.data_root',
              'test_dataloader.dataset.data_root']),
    (LUNA, ['train_dataloader.dataset.dataset.data_root',  # RepeatDataset
            'test_dataloader.dataset.data_root']),
])
def test_data_root_reaches_the_datasets(name, paths, log_messages):
    cfg = get_config(name)
    old = cfg.data_root
    apply_cfg_options(cfg, {'data_root': '/new/root/'}, source=name)
    for path in paths:
        node = cfg
        for part in path.split('.'):
            node = node[part]
        assert node == '/new/root/', path
    assert any('data_root=/new/root/: also applied to' in m and old in m
               for m in log_messages)


def test_data_root_keeps_paths_set_explicitly():
    cfg = get_config(CONFIG)
    apply_cfg_options(cfg, {'data_root': '/new/',
                            'val_dataloader.dataset.data_root': '/val/'},
                      source='my.py')
    assert cfg.test_dataloader.dataset.data_root == '/new/'
    assert cfg.val_dataloader.dataset.data_root == '/val/'


def test_test_tool_moves_data_root(tmp_path):
    """``tools/test.py --cfg-options data_root=...``: the datasets follow."""
    args = argparse.Namespace(
        config=str(repo_root() / 'configs' / CONFIG), launcher='none',
        cfg_options={'data_root': str(tmp_path) + '/'}, fold=None,
        work_dir=str(tmp_path / 'w'))
    cfg = _tool('test').build_cfg(args)
    assert cfg.test_dataloader.dataset.data_root == str(tmp_path) + '/'


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_refuse_typo_in_one_line(tool, tmp_path, monkeypatch, capsys):
    argv = [f'tools/{tool}.py', str(repo_root() / 'configs' / CONFIG)]
    if tool == 'test':
        ckpt = tmp_path / 'x.pth'
        ckpt.write_bytes(b'x')
        argv.append(str(ckpt))
    argv += ['--work-dir', str(tmp_path / 'w'), '--cfg-options',
             'model.test_cfg.rcnn.score_thres=0.5']
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(SystemExit) as info:
        _tool(tool).main()
    message = str(info.value.code)
    assert message.startswith('error: ') and '\n' not in message
    assert 'did you mean model.test_cfg.rcnn.score_thr?' in message
    assert not (tmp_path / 'w').exists()  # refused before anything ran
