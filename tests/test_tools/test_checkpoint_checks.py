# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/test.py refuses checkpoints that do not fit the model.

Before these checks, ``tools/test.py`` with a checkpoint of another model
evaluated randomly initialised heads, printed an all-zero FROC and exited
with status 0.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import torch
from mmengine.registry import init_default_scope

from mmdet.registry import MODELS
from mmlesion.testing import get_config, repo_root

# `python tools/...` runs fork a process that imported mmdet once
# (conftest, tools_forked).
pytestmark = pytest.mark.usefixtures('tools_forked')

CONFIG = 'configs/demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
OTHER = 'retinanet_lesion/demo/retinanet_r18-tiny_fpn_1x_deeplesion-demo.py'


def _opts(root: Path) -> list:
    data_root = str(root) + os.sep
    opts = []
    for loader in ('train', 'val', 'test'):
        opts += [
            f'{loader}_dataloader.dataset.data_root={data_root}',
            f'{loader}_dataloader.num_workers=0',
            f'{loader}_dataloader.persistent_workers=False'
        ]
    return opts


def _run_failing(args: list) -> str:
    env = dict(os.environ)
    env['PYTHONPATH'] = str(repo_root()) + os.pathsep + env.get(
        'PYTHONPATH', '')
    env.setdefault('OMP_NUM_THREADS', '1')
    proc = subprocess.run([sys.executable] + args,
                          cwd=repo_root(),
                          env=env,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=300)
    assert proc.returncode != 0, proc.stdout[-4000:]
    return proc.stdout


def test_test_tool_refuses_checkpoint_of_another_model(tiny_demo_root,
                                                       tmp_path):
    init_default_scope('mmdet')
    other = get_config(OTHER).model
    other.bbox_head.num_classes = 80  # a COCO detector
    model = MODELS.build(other)
    ckpt = tmp_path / 'retinanet.pth'
    torch.save(dict(meta=dict(epoch=1, iter=1, dataset_meta=dict(
        classes=('person', 'bicycle') + ('thing', ) * 78)),
                    state_dict=model.state_dict()), str(ckpt))
    out = _run_failing([
        'tools/test.py', CONFIG,
        str(ckpt), '--work-dir',
        str(tmp_path / 'test'), '--cfg-options'
    ] + _opts(tiny_demo_root))
    # one line, no traceback: the classes, then the keys counted
    assert 'Traceback' not in out
    line = next(x for x in out.splitlines() if x.startswith('error: '))
    assert line.startswith(
        f'error: {ckpt}: the checkpoint does not fit the model FasterRCNN '
        "(the checkpoint is for 80 classes ('person', 'bicycle', 'thing', "
        "'thing', 'thing', ... 75 more) by its meta, the config for 1 "
        'class)')
    assert '; 16 missing (neck.' in line and '; 14 unexpected (' in line
    assert 'Epoch(test)' not in out  # nothing was evaluated


def test_train_tool_refuses_load_from_of_other_classes(tiny_demo_root,
                                                       tmp_path):
    """load_from of a detector trained on 3 classes (no class names in its
    meta) for the one-class config: one line counting its classes, before
    an iteration runs."""
    init_default_scope('mmdet')
    three = get_config(CONFIG[len('configs/'):]).model
    three.roi_head.bbox_head.num_classes = 3
    ckpt = tmp_path / 'three.pth'
    torch.save(dict(state_dict=MODELS.build(three).state_dict()), str(ckpt))
    out = _run_failing([
        'tools/train.py', CONFIG, '--work-dir',
        str(tmp_path / 'train'), '--cfg-options', f'load_from={ckpt}'
    ] + _opts(tiny_demo_root))
    assert 'Traceback' not in out
    line = next(x for x in out.splitlines() if x.startswith('error: '))
    assert line.startswith(
        f'error: {ckpt}: the checkpoint does not fit the model FasterRCNN '
        '(the checkpoint is for 3 classes by its classifier, the config for '
        '1 class; roi_head.bbox_head.fc_cls.weight: [4, 128] in the '
        'checkpoint, [2, 128] in the model)'), line
    assert 'Epoch(train)' not in out
