# Copyright (c) mmlesion contributors. All rights reserved.
"""Config names in mmdet 3's form, demo configs in their own folder.

mmdet 3: ``{algorithm}_{components}_{schedule}_{data}.py``: underscores
between fields, hyphens inside a field (``faster-rcnn``, never
``faster_rcnn``), the schedule with its ``NxbM`` part (N GPUs x M images)
for the full-size configs. Tiny / demo configs (CPU-sized, synthetic data)
live in ``configs/<method>/demo/``, the main job's in ``configs/demo/``.
"""
import re

import pytest

from mmlesion.testing import get_config, repo_root

CONFIG_ROOT = repo_root() / 'configs'
CONFIGS = sorted(
    p.relative_to(CONFIG_ROOT).as_posix() for p in CONFIG_ROOT.rglob('*.py')
    if '_base_' not in p.parts)
FIELD = re.compile(r'^[a-z0-9][a-z0-9.+-]*$')
#: First words of algorithm names mmdet 3 writes with a hyphen.
SPLIT_ALGORITHMS = ('faster', 'mask', 'cascade', 'improved')


def is_demo(rel: str) -> bool:
    return rel.split('/')[-2] == 'demo'


@pytest.mark.parametrize('rel', CONFIGS)
def test_name_has_mmdet3_form(rel):
    fields = rel.split('/')[-1][:-3].split('_')
    assert len(fields) >= 3, rel
    assert all(FIELD.match(f) for f in fields), rel
    assert fields[0] not in SPLIT_ALGORITHMS, rel


@pytest.mark.parametrize('rel', CONFIGS)
def test_demo_configs_in_demo_folders(rel):
    name = rel.split('/')[-1]
    tiny = 'tiny' in name or 'demo' in name
    assert tiny == is_demo(rel), rel


@pytest.mark.parametrize('rel', [c for c in CONFIGS if not is_demo(c)])
def test_full_size_names_state_gpus_and_batch(rel):
    cfg = get_config(rel)
    (schedule, ) = [f for f in rel.split('/')[-1].split('_')
                    if re.match(r'^\d+xb\d+', f)]
    gpus, per_gpu = map(int, re.match(r'^(\d+)xb(\d+)', schedule).groups())
    assert cfg.train_dataloader.batch_size == per_gpu, rel
    if cfg.get('auto_scale_lr'):
        assert cfg.auto_scale_lr.base_batch_size == gpus * per_gpu, rel


def test_checks_can_fail():
    assert not all(FIELD.match(f) for f in 'faster_rcnn_R50'.split('_'))
    assert is_demo('elixirnet/demo/x_y_z.py')
    assert not is_demo('elixirnet/x_y_z-demo.py')
