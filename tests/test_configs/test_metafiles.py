# Copyright (c) mmlesion contributors. All rights reserved.
"""The model index (OpenMMLab's ``model-index.yml`` + one ``metafile.yml``
per method) agrees with the configs it lists and the READMEs.

Every full-size config is a model of exactly one metafile; demo configs
are not; each model's epochs and batch size are the config's; its paper
numbers say where they come from; mmengine reads the index as it does
for mmdet's.
"""
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from mmlesion.testing import get_config, repo_root

ROOT = repo_root()
METHODS = ('elixirnet', 'retinanet_lesion', 'aggregated3d', 'lens')


def _metafiles() -> Dict[str, dict]:
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    return {
        path: yaml.safe_load((ROOT / path).read_text())
        for path in index['Import']
    }


METAFILES = _metafiles()
MODELS: List[dict] = [m for meta in METAFILES.values() for m in meta['Models']]


def _full_size_configs() -> List[str]:
    out = []
    for method in METHODS:
        for path in (ROOT / 'configs' / method).rglob('*.py'):
            if 'demo' not in path.relative_to(ROOT / 'configs').parts:
                out.append(path.relative_to(ROOT).as_posix())
    return sorted(out)


def test_index_imports_every_method():
    assert sorted(METAFILES) == sorted(f'configs/{m}/metafile.yml'
                                       for m in METHODS)
    for path, meta in METAFILES.items():
        (collection, ) = meta['Collections']
        assert collection['Paper']['URL'].startswith('https://')
        assert collection['Paper']['Title']
        assert collection['README'] == str(Path(path).parent / 'README.md')
        assert (ROOT / collection['README']).is_file()
        names = {m['In Collection'] for m in meta['Models']}
        assert names == {collection['Name']}, path


def test_every_full_size_config_is_one_model():
    listed = [m['Config'] for m in MODELS]
    assert len(listed) == len(set(listed)), 'a config listed twice'
    assert sorted(listed) == _full_size_configs()
    for model in MODELS:
        assert model['Name'] == Path(model['Config']).stem


@pytest.mark.parametrize('model', MODELS, ids=[m['Name'] for m in MODELS])
def test_model_metadata_is_the_configs(model):
    cfg = get_config(model['Config'][len('configs/'):])
    meta = model['Metadata']
    assert meta['Epochs'] == cfg.train_cfg.max_epochs
    per_gpu = cfg.train_dataloader.batch_size
    if cfg.get('auto_scale_lr'):
        assert meta['Batch Size'] == cfg.auto_scale_lr.base_batch_size
    assert meta['Batch Size'] % per_gpu == 0
    # the name's NxbM part: N GPUs x M images each
    gpus, _, per = next(
        part for part in model['Name'].replace('_', '-').split('-')
        if 'xb' in part).partition('xb')
    assert int(per) == per_gpu
    assert int(gpus) * per_gpu == meta['Batch Size']
    for result in model.get('Results', []):
        assert model['Results Source'] == 'paper'
        assert result['Metrics'] and all(
            isinstance(v, (int, float)) for v in result['Metrics'].values())


@pytest.mark.parametrize('method', METHODS)
def test_readme_names_every_model(method):
    text = (ROOT / 'configs' / method / 'README.md').read_text()
    for model in METAFILES[f'configs/{method}/metafile.yml']['Models']:
        assert model['Name'] in text, model['Name']


def test_mmengine_reads_the_index(tmp_path):
    """mmengine looks a ``mmlesion::`` base up in the installed model
    index first (as for ``mmdet::``): the index and every metafile must
    load, and the base resolve to the file in ``configs/``."""
    import mmlesion  # noqa: F401  (mmlesion:: lookups)
    from mmengine.config import Config
    from mmengine.config.utils import _get_cfg_metainfo
    from mmlesion.utils.package_configs import _PKG_DIR
    name = 'elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'
    meta = _get_cfg_metainfo(_PKG_DIR, name)
    assert meta['Config'] == 'configs/' + name
    user = tmp_path / 'mine.py'
    user.write_text(f"_base_ = 'mmlesion::{name}'\n")
    assert Config.fromfile(str(user)).model.rpn_head.type == \
        'TruncatedRPNHead'
