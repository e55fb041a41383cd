# Copyright (c) mmlesion contributors. All rights reserved.
"""The Anchor Based Sampling configs: one more round from the first round's
checkpoint, crops from its hard-region file, otherwise the same row.
(Every config is built by test_aggregated3d_configs.py.)"""
import pytest

from mmlesion.testing import get_config

ROWS = [
    ('aggregated3d-abs_denseunet3d_anchor1_4xb2-30e_luna16.py',
     'aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16', 30),
    ('aggregated3d-wo-da-abs_denseunet3d_anchor1_4xb2-30e_luna16.py',
     'aggregated3d-wo-da_denseunet3d_anchor1_4xb2-50e_luna16', 30),
    ('aggregated3d-wo-magnify-abs_denseunet3d_anchor1_4xb2-30e_luna16.py',
     'aggregated3d-wo-magnify_denseunet3d_anchor1_4xb2-50e_luna16', 30),
    ('rpn3d-focal-abs_denseunet3d_anchor1_4xb2-30e_luna16.py',
     'rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16', 30),
    ('demo/aggregated3d-abs_denseunet3d-tiny_luna16-demo.py',
     'demo/aggregated3d_denseunet3d-tiny_luna16-demo', 6),
]


def _train_dataset(cfg):
    ds = cfg.train_dataloader.dataset
    while 'dataset' in ds:
        ds = ds.dataset
    return ds


@pytest.mark.parametrize('name, first_round, epochs', ROWS)
def test_abs_round_inherits_its_row(name, first_round, epochs):
    cfg = get_config(f'aggregated3d/{name}')
    base = get_config(f'aggregated3d/{first_round}.py')
    # same model (but T of the adaptive focal loss kept at its end value)
    model, base_model = cfg.model.to_dict(), base.model.to_dict()
    assert model['rpn_head'].pop('loss_cls')['t_start'] == 10.0
    base_model['rpn_head'].pop('loss_cls')
    assert model == base_model
    ckpt = f'epoch_{base.max_epochs}.pth'
    # LUNA16 rows: the first round's work dir of `tools/train.py --fold 0`
    # (per-fold paths that --fold K rewrites, test_cv_fold.py)
    work_dir = first_round.split('/')[-1] + (
        '_fold0' if name.endswith('_luna16.py') else '')
    assert cfg.load_from == f'work_dirs/{work_dir}/{ckpt}'
    assert cfg.train_cfg.max_epochs == epochs
    pipe, base_pipe = (_train_dataset(c).pipeline for c in (cfg, base))
    # the random crop: after loading (and the lung crop of LUNA16 rows)
    i = next(k for k, t in enumerate(base_pipe) if 'Crop3D' in t.type)
    crop = pipe[i]
    assert crop.type == 'HardRegionRandomCrop3D'
    assert crop.hard_regions_file.startswith(f'work_dirs/{work_dir}/')
    assert 0 < crop.hard_prob < 1
    # the rest of the crop and the pipeline as in the first round
    assert {k: v for k, v in crop.items() if k not in (
        'type', 'hard_regions_file', 'hard_prob')} == {
            k: v for k, v in base_pipe[i].items() if k != 'type'}
    assert pipe[:i] + pipe[i + 1:] == base_pipe[:i] + base_pipe[i + 1:]
    # the training scans and folds are the first round's
    assert {k: v for k, v in _train_dataset(cfg).items() if k != 'pipeline'
            } == {k: v for k, v in _train_dataset(base).items()
                  if k != 'pipeline'}
