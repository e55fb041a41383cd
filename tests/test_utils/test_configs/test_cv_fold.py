# Copyright (c) mmlesion contributors. All rights reserved.
"""``apply_cv_fold`` on the shipped configs and ``--fold`` of the tools."""
import importlib.util
import sys

import pytest
from mmengine.config import Config

from mmlesion.testing import get_config, repo_root
from mmlesion.utils import apply_cv_fold, find_fold_datasets

LUNA = 'aggregated3d/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py'
ABS = 'aggregated3d/aggregated3d-abs_denseunet3d_anchor1_4xb2-30e_luna16.py'
RPN_ABS = 'aggregated3d/rpn3d-focal-abs_denseunet3d_anchor1_4xb2-30e_luna16.py'
DEMO = 'aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-demo.py'


def _hard_crop(cfg: Config) -> dict:
    return next(t for t in cfg.train_dataloader.dataset.pipeline
                if t.type == 'HardRegionRandomCrop3D')


def _folds(cfg: Config) -> dict:
    return {key: cfg[key].dataset.fold
            for key in ('train_dataloader', 'val_dataloader',
                        'test_dataloader')}


def test_luna16_all_dataloaders_get_the_fold():
    cfg = get_config(LUNA)
    assert _folds(cfg) == dict.fromkeys(_folds(cfg), 0)
    apply_cv_fold(cfg, 3)
    assert _folds(cfg) == dict.fromkeys(_folds(cfg), 3)
    assert cfg.fold == 3
    assert len(find_fold_datasets(cfg)) >= 2
    # the shipped 10-fold protocol: fold 9 is valid, 10 is refused
    apply_cv_fold(cfg, 9)
    assert _folds(cfg) == dict.fromkeys(_folds(cfg), 9)
    with pytest.raises(ValueError, match=r'num_folds=10.*0 \.\. 9'):
        apply_cv_fold(cfg, 10)
    with pytest.raises(ValueError, match='out of range'):
        apply_cv_fold(cfg, -1)
    assert cfg.train_dataloader.dataset.fold == 9  # refused: unchanged


@pytest.mark.parametrize('rel', [ABS, RPN_ABS])
def test_abs_per_fold_paths_follow(rel):
    cfg = get_config(rel)
    hard = _hard_crop(cfg).hard_regions_file
    assert '_fold0/' in cfg.load_from and hard.endswith('_fold0.json')
    apply_cv_fold(cfg, 4)
    assert _folds(cfg) == dict.fromkeys(_folds(cfg), 4)
    hard = _hard_crop(cfg).hard_regions_file
    assert '_fold4/' in cfg.load_from and 'fold0' not in cfg.load_from
    assert hard.endswith('_fold4/hard_regions_fold4.json'), hard
    if 'hard_regions_file' in cfg:  # the top-level variable follows too
        assert cfg.hard_regions_file.endswith('_fold4.json')
    assert cfg.load_from.endswith('epoch_50.pth')


def test_wrapped_dataset_and_hashed_folds():
    cfg = get_config(DEMO)  # RepeatDataset(CrossValVolumeDataset), 4 folds
    apply_cv_fold(cfg, 2)
    assert cfg.train_dataloader.dataset.type == 'RepeatDataset'
    assert cfg.train_dataloader.dataset.dataset.fold == 2
    assert cfg.val_dataloader.dataset.fold == 2
    with pytest.raises(ValueError, match='num_folds=4'):
        apply_cv_fold(cfg, 4)


def test_concat_wrapper_and_default_num_folds():
    ds = dict(type='CrossValVolumeDataset', ann_file='a.json', fold=1)
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='ConcatDataset', datasets=[ds, dict(ds, ann_file='b.json')]))))
    apply_cv_fold(cfg, 7, source='my.py')  # num_folds from the class: 10
    assert [d.fold for d in cfg.train_dataloader.dataset.datasets] == [7, 7]
    with pytest.raises(ValueError, match='my.py.*num_folds=10'):
        apply_cv_fold(cfg, 10, source='my.py')


def test_refusals():
    with pytest.raises(ValueError, match='my.py: no dataset.*takes a'):
        apply_cv_fold(get_config('aggregated3d/' + (
            'aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d'
            '.py')), 1, source='my.py')
    ds = dict(type='CrossValVolumeDataset', fold=0)
    cfg = Config(dict(train_dataloader=dict(dataset=ds),
                      val_dataloader=dict(dataset=dict(ds, fold=1))))
    with pytest.raises(ValueError, match='different folds'):
        apply_cv_fold(cfg, 2, source='x.py')
    cfg = Config(dict(train_dataloader=dict(dataset=ds),
                      load_from='work_dirs/r1_fold5/epoch_50.pth'))
    with pytest.raises(ValueError, match=r'load_from.*fold \[5\]'):
        apply_cv_fold(cfg, 2, source='x.py')
    assert cfg.train_dataloader.dataset.fold == 0  # nothing half-applied
    cfg = Config(dict(train_dataloader=dict(
        dataset=dict(type='MyUnregisteredDataset', fold=0))))
    with pytest.raises(ValueError, match='num_folds is neither set'):
        apply_cv_fold(cfg, 1, source='x.py')
    with pytest.raises(TypeError, match='fold must be an int'):
        apply_cv_fold(Config(dict(ds=1)), '3', source='x.py')


def test_path_already_naming_the_new_fold():
    """``--cfg-options load_from=..._fold3/... --fold 3``: kept as given
    (a stage checkpoint passed per fold)."""
    ds = dict(type='CrossValVolumeDataset', fold=0)
    cfg = Config(dict(train_dataloader=dict(dataset=ds),
                      load_from='work_dirs/rpn_fold3/epoch_50.pth'))
    apply_cv_fold(cfg, 3)
    assert cfg.load_from == 'work_dirs/rpn_fold3/epoch_50.pth'


def test_fold_token_is_a_whole_token():
    ds = dict(type='CrossValVolumeDataset', fold=0)
    cfg = Config(dict(train_dataloader=dict(dataset=ds),
                      load_from='scaffold0/folds/run_fold0/e.pth'))
    apply_cv_fold(cfg, 6)
    assert cfg.load_from == 'scaffold0/folds/run_fold6/e.pth'


def _tool(name: str):
    path = repo_root() / 'tools' / f'{name}.py'
    spec = importlib.util.spec_from_file_location(
        '_tool_' + name.replace('/', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('name', ['train', 'test'])
def test_tools_fold_flag(name, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # train's build_cfg locks (creates) work dirs
    tool = _tool(name)
    config = str(repo_root() / 'configs' / ABS)
    ckpt = ['ckpt.pth'] if name == 'test' else []
    if ckpt:  # tools/test.py refuses a checkpoint that is not there
        (tmp_path / 'ckpt.pth').write_bytes(b'')
    monkeypatch.setattr(sys, 'argv', [name, config, *ckpt, '--fold', '3'])
    cfg = tool.build_cfg(tool.parse_args())
    assert _folds(cfg) == dict.fromkeys(_folds(cfg), 3)
    assert '_fold3/' in cfg.load_from or name == 'test'
    assert cfg.work_dir.endswith(
        'aggregated3d-abs_denseunet3d_anchor1_4xb2-30e_luna16_fold3')
    # without --fold: the config's own fold and work dir
    monkeypatch.setattr(sys, 'argv', [name, config, *ckpt])
    cfg = tool.build_cfg(tool.parse_args())
    assert _folds(cfg) == dict.fromkeys(_folds(cfg), 0)
    assert cfg.work_dir.endswith('aggregated3d-abs_denseunet3d_anchor1_4xb2-30e_'
                                 'luna16')
    # an explicit --work-dir is kept as given
    monkeypatch.setattr(sys, 'argv', [name, config, *ckpt, '--fold', '1',
                                      '--work-dir', 'wd'])
    assert tool.build_cfg(tool.parse_args()).work_dir == 'wd'
    monkeypatch.setattr(sys, 'argv', [name, config, *ckpt, '--fold', '10'])
    with pytest.raises(ValueError, match='luna16.py: fold 10 out of range'):
        tool.build_cfg(tool.parse_args())


def test_find_hard_regions_fold_flag(tmp_path, monkeypatch):
    tool = _tool('analysis_tools/find_hard_regions')
    seen = {}

    class Stop(Exception):
        pass

    def fake_find_hard_regions(cfg, checkpoint, **kwargs):
        seen['cfg'] = cfg
        raise Stop  # the model run is tested in test_find_hard_regions.py

    # the tool imports it inside main(), after parsing (fast --help)
    monkeypatch.setattr('mmlesion.methods.aggregated3d.hard_regions.find_hard_regions',
                        fake_find_hard_regions)
    with pytest.raises(Stop):
        tool.main([str(repo_root() / 'configs' / LUNA), 'ckpt.pth',
                   '--out', str(tmp_path / 'h.json'), '--fold', '5'])
    assert _folds(seen['cfg']) == dict.fromkeys(_folds(seen['cfg']), 5)
