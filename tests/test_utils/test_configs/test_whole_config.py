# Copyright (c) mmlesion contributors. All rights reserved.
"""The whole merged config is checked before the Runner is built: keys that
nothing reads and numbers written as strings, in a user's config file."""
import sys
from pathlib import Path
from typing import List

import mmengine.config.config as mmengine_config
import pytest
from mmengine.config import Config

from mmlesion.testing import repo_root
from mmlesion.utils.configs.cfg_options import ConfigOptionError
from mmlesion.utils.configs.whole_config import (ConfigCheckError,
                                                 check_whole_config,
                                                 find_config_problems)
from tests.helpers.tool_modules import load_tool

#: A two-stage demo config (FasterRCNN, demo DeepLesion pipeline).
CONFIG = 'elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py'


def _user_config(tmp_path: Path, body: str) -> Path:
    """A config file that inherits :data:`CONFIG` and adds ``body``."""
    path = tmp_path / 'user_config.py'
    path.write_text(f"_base_ = ['{repo_root() / 'configs' / CONFIG}']\n" +
                    body)
    return path


def _refusal(tmp_path: Path, body: str) -> List[str]:
    """The lines of the error that the user config is refused with."""
    path = _user_config(tmp_path, body)
    with pytest.raises(ConfigCheckError) as info:
        check_whole_config(Config.fromfile(str(path)), source=str(path))
    lines = str(info.value).splitlines()
    assert lines[0].startswith(f'{path}: {len(lines) - 1} problem(s)')
    return [line.strip() for line in lines[1:]]


def test_typo_under_test_cfg_rcnn_names_path_and_closest(tmp_path):
    lines = _refusal(
        tmp_path, 'model = dict(test_cfg=dict(rcnn=dict(score_thres=0.5)))\n')
    assert len(lines) == 1
    assert lines[0].startswith('model.test_cfg.rcnn.score_thres: ')
    assert 'did you mean model.test_cfg.rcnn.score_thr?' in lines[0]


@pytest.mark.parametrize('body,path,expected', [
    # a transform argument annotated int
    ("train_dataloader = dict(dataset=dict(pipeline=[\n"
     "    dict(type='LoadDeepLesionSlices', num_slices='3'),\n"
     "    dict(type='PackDetInputs')]))\n",
     "train_dataloader.dataset.pipeline.0.num_slices='3'", 'a number (int)'),
    # a test_cfg key that mmdet's heads read as a number
    ("model = dict(test_cfg=dict(rcnn=dict(score_thr='0.5')))\n",
     "model.test_cfg.rcnn.score_thr='0.5'", 'a number'),
    # the optimizer's learning rate (torch annotates float | Tensor)
    ("optim_wrapper = dict(optimizer=dict(lr='0.001'))\n",
     "optim_wrapper.optimizer.lr='0.001'", 'float'),
    # an item of a sequence of numbers
    ("model = dict(rpn_head=dict(anchor_generator=dict(\n"
     "    strides=[4, '8', 16, 32, 64])))\n",
     "model.rpn_head.anchor_generator.strides.1='8'", 'got a string'),
    # a bool as a string ('False' would count as True)
    ("model = dict(roi_head=dict(bbox_head=dict(\n"
     "    reg_class_agnostic='False')))\n",
     "model.roi_head.bbox_head.reg_class_agnostic='False'", 'True or False'),
])
def test_number_written_as_string_names_path_and_type(tmp_path, body, path,
                                                      expected):
    lines = _refusal(tmp_path, body)
    assert len(lines) == 1
    assert lines[0].startswith(path + ': ')
    assert expected in lines[0]


@pytest.mark.parametrize('body,path,closest', [
    # mmdet's box head (a registered model component)
    ('model = dict(roi_head=dict(bbox_head=dict(num_clases=1)))\n',
     'model.roi_head.bbox_head.num_clases', 'num_classes'),
    # a task util (TASK_UTILS) under train_cfg
    ('model = dict(train_cfg=dict(rcnn=dict(assigner=dict(pos_iou_th=.5))))'
     '\n', 'model.train_cfg.rcnn.assigner.pos_iou_th', 'pos_iou_thr'),
    # mmlesion's dataset: passed on to mmengine's BaseDataset by **kwargs
    ('train_dataloader = dict(dataset=dict(indeces=4))\n',
     'train_dataloader.dataset.indeces', 'indices'),
    # the NMS config of a head (mmcv.ops.nms's arguments)
    ('model = dict(test_cfg=dict(rpn=dict(nms=dict(iou_thresh=.7))))\n',
     'model.test_cfg.rpn.nms.iou_thresh', 'iou_threshold'),
    # a train_cfg section without type, read key by key by the RPN head
    ('model = dict(train_cfg=dict(rpn=dict(allowed_boarder=0)))\n',
     'model.train_cfg.rpn.allowed_boarder', 'allowed_border'),
])
def test_unknown_key_names_path_and_closest(tmp_path, body, path, closest):
    lines = _refusal(tmp_path, body)
    assert len(lines) == 1
    assert lines[0].startswith(path + ': ')
    parent = path.rpartition('.')[0]
    assert lines[0].endswith(f'did you mean {parent}.{closest}?')


def test_every_problem_is_listed_on_its_line(tmp_path):
    lines = _refusal(
        tmp_path, 'model = dict(test_cfg=dict(rcnn=dict(score_thres=0.5)),\n'
        '             backbone=dict(frozen_stage=1))\n'
        "train_cfg = dict(max_epochs='12')\n")
    assert [line.split(':')[0].split('=')[0] for line in lines] == [
        'model.backbone.frozen_stage', 'model.test_cfg.rcnn.score_thres',
        'train_cfg.max_epochs'
    ]


def test_keys_read_indirectly_are_accepted(tmp_path, log_messages):
    """Keys a builder or a base class reads pass: init_cfg overrides'
    ``name``, norm layers' ``requires_grad``, schedulers'
    ``convert_to_iter_based``, mask keys of test_cfg.rcnn, a loop's
    argument; mmengine's CheckpointHook keeps unknown keys for
    ``torch.save``, so a near-typo there is only a warning."""
    path = _user_config(
        tmp_path, 'model = dict(\n'
        "    backbone=dict(\n"
        "        norm_cfg=dict(type='BN', requires_grad=False),\n"
        "        init_cfg=dict(\n"
        "            _delete_=True, type='Normal', std=.01,\n"
        "            override=dict(type='Normal', name='conv1', std=.02))),\n"
        '    test_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))\n'
        'param_scheduler = [dict(type="MultiStepLR", milestones=[8],\n'
        '                        convert_to_iter_based=True)]\n'
        'train_cfg = dict(val_begin=2)\n'
        'default_hooks = dict(checkpoint=dict(max_keep_ckpt=1))\n')
    warnings = check_whole_config(Config.fromfile(str(path)), 'user.py')
    assert len(warnings) == 1
    assert warnings[0].startswith('default_hooks.checkpoint.max_keep_ckpt: ')
    assert 'did you mean default_hooks.checkpoint.max_keep_ckpts?' in \
        warnings[0]
    assert any(warnings[0] in m for m in log_messages)


@pytest.fixture
def cached_mmdet_bases(monkeypatch):
    """Find each ``mmdet::`` base once: mmengine parses all of mmdet's
    metafiles again for every lookup (most of the loading time)."""
    found = {}
    lookup = mmengine_config._get_external_cfg_path

    def cached(package_path: str, cfg_file: str) -> str:
        key = (package_path, cfg_file)
        if key not in found:
            try:
                found[key] = (lookup(package_path, cfg_file), None)
            except ValueError as err:  # a base config: mmengine's fallback
                found[key] = (None, err)
        path, err = found[key]
        if err is not None:
            raise err
        return path

    monkeypatch.setattr(mmengine_config, '_get_external_cfg_path', cached)


def test_all_repository_configs_pass(cached_mmdet_bases):
    """No error and no warning for any config of configs/ (_base_ files
    included); keeps the checker free of false alarms."""
    paths = sorted((repo_root() / 'configs').rglob('*.py'))
    assert len(paths) > 100
    problems = {}
    for path in paths:
        found = find_config_problems(Config.fromfile(str(path)))
        if found:
            problems[str(path.relative_to(repo_root()))] = [
                p.message for p in found
            ]
    assert problems == {}


def test_error_is_a_config_option_error():
    """The tools stop on ConfigOptionError with one line per problem."""
    assert issubclass(ConfigCheckError, ConfigOptionError)
    assert issubclass(ConfigCheckError, ValueError)


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_refuse_config_one_line_per_problem(tool, tmp_path,
                                                  monkeypatch):
    config = _user_config(
        tmp_path, 'model = dict(test_cfg=dict(rcnn=dict(score_thres=0.5)))\n'
        "train_cfg = dict(max_epochs='12')\n"
        # no data: a run that got past the check would fail at once
        f"no_data = '{tmp_path / 'no_data'}/'\n"
        'train_dataloader = dict(dataset=dict(data_root=no_data))\n'
        'val_dataloader = dict(dataset=dict(data_root=no_data))\n'
        'test_dataloader = dict(dataset=dict(data_root=no_data))\n')
    argv = [f'tools/{tool}.py', str(config)]
    if tool == 'test':
        ckpt = tmp_path / 'x.pth'
        ckpt.write_bytes(b'x')
        argv.append(str(ckpt))
    argv += ['--work-dir', str(tmp_path / 'w')]
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(SystemExit) as info:
        load_tool(f'{tool}.py').main()
    lines = str(info.value.code).splitlines()
    # a test builds no training loop: only the model's problem stops it
    expected = ['model.test_cfg.rcnn.score_thres:'] + (
        ["train_cfg.max_epochs='12':"] if tool == 'train' else [])
    assert lines[0].startswith(
        f'error: {config}: {len(expected)} problem(s)')
    assert [line.split()[0] for line in lines[1:]] == expected
    assert 'Traceback' not in str(info.value.code)
    assert not (tmp_path / 'w').exists()  # refused before anything ran


def test_a_test_checks_only_what_it_reads(tmp_path):
    """A training section's mistake stops a training, not a test (which
    builds no optimizer); the model's still stops both."""
    cfg = Config.fromfile(str(_user_config(
        tmp_path, "optim_wrapper = dict(optimizer=dict(lrr=0.1))\n")))
    with pytest.raises(ConfigCheckError, match='lrr'):
        check_whole_config(cfg)
    assert check_whole_config(cfg, testing=True) == []
    cfg.model.test_cfg.rcnn.score_thres = .1
    with pytest.raises(ConfigCheckError, match='score_thres'):
        check_whole_config(cfg, testing=True)
