# Copyright (c) mmlesion contributors. All rights reserved.
"""tools/search_alb.py: command-line checks, and a one-iteration search with
the demo search config on a tiny generated DeepLesion-layout dataset."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmlesion  # noqa: F401  (registers)
from mmlesion.datasets.demo import generate_demo_deeplesion
from mmlesion.nas import load_genotypes
from mmlesion.nas.genotype import check_genotypes
from mmlesion.testing import get_config, repo_root

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'search_alb.py'
DEMO = ('elixirnet/demo/'
        'elixirnet-alb-search_r18-tiny_fpn_deeplesion-demo.py')
BASELINE = 'elixirnet/demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py'


def load_tool():
    spec = importlib.util.spec_from_file_location('search_alb', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config_path(rel: str) -> str:
    return str(repo_root() / 'configs' / rel)


def test_build_cfg_checks(tmp_path):
    tool = load_tool()
    with pytest.raises(ValueError, match='ALBSearchLoop'):
        tool.build_cfg(tool.parse_args([_config_path(BASELINE)]))
    with pytest.raises(FileNotFoundError, match='Baseline checkpoint'):
        tool.build_cfg(
            tool.parse_args([
                _config_path(DEMO), '--load-from',
                str(tmp_path / 'missing.pth')
            ]))
    with pytest.raises(ValueError, match='--load-from'):
        tool.build_cfg(
            tool.parse_args([
                _config_path(DEMO),
                '--cfg-options',
                'load_from=',
            ]))
    ckpt = tmp_path / 'base.pth'
    ckpt.write_bytes(b'')
    cfg = tool.build_cfg(
        tool.parse_args([
            _config_path(DEMO), '--load-from',
            str(ckpt), '--work-dir',
            str(tmp_path / 'w'), '--amp', '--cfg-options',
            'train_cfg.max_epochs=2'
        ]))
    assert cfg.load_from == str(ckpt) and cfg.work_dir == str(tmp_path / 'w')
    assert cfg.train_cfg.max_epochs == 2
    assert cfg.optim_wrapper.weight.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.arch.type == 'AmpOptimWrapper'


def test_demo_search_writes_a_config_that_trains(tmp_path, tiny_demo_root):
    """Baseline checkpoint -> one search iteration -> genotype snippet and a
    ready config inheriting the demo ElixirNet -> tools/train.py trains that
    file; a second search refuses to replace the outputs."""
    data_root = tmp_path / 'demo'
    generate_demo_deeplesion(data_root,
                             num_train=4,
                             num_val=0,
                             num_test=0,
                             image_size=64)
    init_default_scope('mmdet')
    baseline = MODELS.build(get_config(BASELINE).model)
    ckpt = str(tmp_path / 'baseline.pth')
    torch.save(dict(state_dict=baseline.state_dict(), meta=dict()), ckpt)

    tool = load_tool()
    work_dir = tmp_path / 'work'
    argv = [
        _config_path(DEMO), '--work-dir',
        str(work_dir), '--load-from', ckpt, '--cfg-options',
        f'train_dataloader.dataset.data_root={data_root}/',
        'train_cfg.max_epochs=1', 'train_dataloader.batch_size=1',
        'model.train_cfg.rcnn.sampler.num=16',
        'model.train_cfg.rpn_proposal.max_per_img=16',
        'train_dataloader.dataset.pipeline.3.scale=(64,64)'
    ]
    path = tool.main(argv)
    assert path == osp.join(
        str(work_dir), 'elixirnet-searched_r18-tiny_fpn_1x_deeplesion-demo.py')
    genotypes = load_genotypes(str(work_dir / 'genotype.py'))
    assert set(genotypes) == {'normal', 'reduce'}
    assert osp.isfile(work_dir / 'genotypes' / 'epoch_1.py')
    assert osp.isfile(work_dir / 'epoch_1.pth')

    ready = Config.fromfile(path)
    head = ready.model.roi_head.bbox_head
    assert check_genotypes(head.genotypes) == genotypes and not head.search
    target = get_config(
        'elixirnet/demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py')
    assert head.type == target.model.roi_head.bbox_head.type
    assert ready.model.rpn_head == target.model.rpn_head
    text = Path(path).read_text()
    assert 'baseline checkpoint' in text and ckpt in text
    assert 'search config' in text

    with pytest.raises(FileExistsError, match='--overwrite'):
        tool.main(argv)

    # tools/train.py trains the written file as it is.
    root = str(tiny_demo_root) + os.sep
    proc = subprocess.run(
        [
            sys.executable, str(repo_root() / 'tools' / 'train.py'), path,
            '--work-dir',
            str(tmp_path / 'train'), '--cfg-options',
            f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}',
            'train_dataloader.dataset.indices=2', 'train_cfg.max_epochs=1',
            'train_cfg.val_interval=2', 'default_hooks.logger.interval=1',
            'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False'
        ],
        cwd=str(repo_root()),
        env=dict(os.environ,
                 PYTHONPATH=str(repo_root()) + os.pathsep +
                 os.environ.get('PYTHONPATH', '')),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert osp.isfile(tmp_path / 'train' / 'epoch_1.pth')


def test_target_config_checks(tmp_path):
    tool = load_tool()
    ckpt = tmp_path / 'base.pth'
    ckpt.write_bytes(b'')
    args = tool.parse_args([
        _config_path(DEMO), '--load-from',
        str(ckpt), '--work-dir',
        str(tmp_path / 'w'), '--target-config',
        str(tmp_path / 'missing.py')
    ])
    with pytest.raises(FileNotFoundError, match='missing.py'):
        tool.output_paths(args, tool.build_cfg(args))
    args = tool.parse_args([
        _config_path(DEMO), '--load-from',
        str(ckpt), '--work-dir',
        str(tmp_path / 'w'), '--out-config',
        str(tmp_path / 'mine.py')
    ])
    (tmp_path / 'mine.py').write_text('# a user file\n')
    with pytest.raises(FileExistsError, match='mine.py'):
        tool.output_paths(args, tool.build_cfg(args))
    args.overwrite = True
    paths = tool.output_paths(args, tool.build_cfg(args))
    assert paths['target'].endswith(
        'elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py')
    assert (tmp_path / 'mine.py').read_text() == '# a user file\n'
