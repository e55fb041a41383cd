# Copyright (c) mmlesion contributors. All rights reserved.
"""The model index (OpenMMLab's ``model-index.yml`` + one ``metafile.yml``
per method) agrees with the configs it lists and the READMEs, read as
``mim search`` reads it: through the ``model-index`` library.

Every full-size config is a model of exactly one metafile; demo configs
are not; each model's epochs, batch size, training data, techniques and
architecture are its own config's; a model has ``Results`` only with the
``Weights`` they were measured with (we have none yet: the papers' numbers
are in the method READMEs, not in the index); no key outside OpenMMLab's
schema; no made-up code URL; mmengine reads the index as it does for
mmdet's.
"""
import glob
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest
import yaml
from modelindex.load_model_index import load

from mmlesion.apps.reproduce.paper_tables import PAPER_TABLES
from mmlesion.testing import get_config, repo_root

ROOT = repo_root()
#: every registered method (a new one needs no edit here)
METHODS = tuple(PAPER_TABLES.parts())
#: each collection's paper (real arXiv links; kept as they are); a new
#: method's collection, not listed here, gives its README's link
PAPERS = {
    'ElixirNet': 'https://arxiv.org/abs/2003.08770',
    'Improved RetinaNet': 'https://arxiv.org/abs/1906.02283',
    '3D Aggregated Faster R-CNN': 'https://arxiv.org/abs/2001.11071',
    'LENS': 'https://arxiv.org/abs/2009.02577',
}

# ------------------------------------------------- OpenMMLab's schema
#: the keys mmdet 3.x's ``configs/*/metafile.yml`` use, per level
#: (``test_schema_is_mmdets`` compares with the installed mmdet's)
SCHEMA = {
    'file': {'Collections', 'Models'},
    'collection': {'Name', 'Metadata', 'README', 'Paper', 'Code'},
    'collection metadata': {
        'Training Data', 'Training Techniques', 'Training Resources',
        'Architecture'
    },
    'paper': {'URL', 'Title'},
    'code': {'URL', 'Version'},
    'model': {
        'Name', 'In Collection', 'Config', 'Metadata', 'Results', 'Weights',
        'Paper', 'README', 'Code', 'Alias'
    },
    'model metadata': {
        'Epochs', 'Iterations', 'Batch Size', 'Training Data',
        'Training Techniques', 'Training Resources', 'Training Memory (GB)',
        'inference time (ms/im)', 'Architecture'
    },
    'result': {'Task', 'Dataset', 'Metrics'},
}
#: ours, beside OpenMMLab's: the paper's table and row a model reproduces
#: (its numbers are in the method README, quoted from the paper)
OWN_MODEL_METADATA = {'Paper Row'}


def schema_problems(metafile: Path) -> List[str]:
    """Keys of a metafile outside :data:`SCHEMA`."""
    data = yaml.safe_load(metafile.read_text()) or {}
    out = []

    def extra(level: str, node: dict, allowed: set, where: str) -> None:
        for key in set(node) - allowed:
            out.append(f'{metafile.name}: {where}: {key!r} is not a '
                       f'{level} key of OpenMMLab\'s metafiles')

    extra('file', data, SCHEMA['file'], 'top')
    for col in data.get('Collections') or []:
        where = f"collection {col.get('Name')}"
        extra('collection', col, SCHEMA['collection'], where)
        extra('collection metadata', col.get('Metadata') or {},
              SCHEMA['collection metadata'], where)
        for key in ('Paper', 'Code'):
            if isinstance(col.get(key), dict):
                extra(key.lower(), col[key], SCHEMA[key.lower()], where)
    for model in data.get('Models') or []:
        where = f"model {model.get('Name')}"
        extra('model', model, SCHEMA['model'], where)
        extra('model metadata', model.get('Metadata') or {},
              SCHEMA['model metadata'] | OWN_MODEL_METADATA, where)
        for result in model.get('Results') or []:
            extra('result', result, SCHEMA['result'], where)
    return out


# ------------------------------------- the index as mim search shows it
def load_index(path: Path):
    """The model index as ``mim`` loads it (``modelindex.load``)."""
    return load(str(path))


def mim_metadata(model, collections: Dict[str, object]) -> dict:
    """A model's metadata as ``mim search`` shows it: its own keys, then
    its collection's for the keys it lacks (``mim.commands.search.
    convert2df``)."""
    out = dict(getattr(model.metadata, 'data', None) or {})
    col = collections.get(model.in_collection)
    for key, value in (getattr(col.metadata, 'data', None) or {}).items():
        out.setdefault(key, value)
    return out


def _urls(node) -> List[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [v for k, v in node.items() if k.lower() == 'url']
    return []


def result_problems(mi) -> List[str]:
    """Models with ``Results`` but no ``Weights`` URL they were measured
    with (``mim search`` shows a model's Results as its metrics)."""
    out = []
    for model in mi.models:
        if not model.results:
            continue
        weights = model.weights or ''
        if not weights.startswith(('https://', 'http://')):
            out.append(f'{model.name}: Results without Weights')
        for result in model.results:
            if not result.metrics or not all(
                    isinstance(v, (int, float))
                    for v in result.metrics.values()):
                out.append(f'{model.name}: a result without metrics')
    return out


def code_problems(mi) -> List[str]:
    """``Code`` URLs naming a repository that does not exist."""
    out = []
    for item in list(mi.collections) + list(mi.models):
        for url in _urls(item.code):
            if 'github.com/mmlesion' in url:
                out.append(f'{item.name}: Code URL {url} does not exist')
    return out


def config_problems(mi, root: Path) -> List[str]:
    """Models whose ``Config`` is not a file of the repository."""
    return [
        f'{m.name}: no config {m.config}' for m in mi.models
        if not m.config or not (root / m.config).is_file()
    ]


def check_problems(mi, root: Path) -> List[str]:
    """modelindex's own checks, less the README paths it resolves against
    the metafile's folder (OpenMMLab's are relative to the repository, as
    mmdet's: checked in ``test_index_imports_every_method``)."""
    out = []
    for error in mi.check(silent=True):
        path = error.partition('Path to README file ')[2].partition(' ')[0]
        if not (path and (root / path).is_file()):
            out.append(error)
    return out


# ----------------------------------- what a config's model and training are
def _get(node, *keys):
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _types(node) -> List[str]:
    """Every ``type`` string in a (nested) config dict."""
    out = []
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            out.append(node['type'])
        for value in node.values():
            out += _types(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            out += _types(value)
    return out


def _alb_ops(bbox_head: dict) -> List[str]:
    """The operations an ALB head can run: its genotypes', or its search
    space when it searches."""
    if bbox_head.get('search'):
        from mmlesion.methods.elixirnet.models.alb_ops import ALB_OP_NAMES
        return list(bbox_head.get('op_names') or ALB_OP_NAMES)
    genotypes = bbox_head.get('genotypes') or {}
    return [op[0] for cell in genotypes.values() for op in cell['ops']]


ALB_HEADS = ('ALBBBoxHead', 'RTMBBoxHead')
#: Architecture name -> whether a model config has it (mmdet's names where
#: mmdet has one; each model lists exactly the names true for its config)
ARCHITECTURE = {
    'ResNet': lambda m: _get(m, 'backbone', 'type') in
    ('ResNet', 'ResNetWithStem', 'SliceGroupResNet'),
    'VGG': lambda m: _get(m, 'backbone', 'type') == 'LesionVGG',
    'DenseNet': lambda m: _get(m, 'backbone', 'type') == 'MULANDenseNet',
    'DenseUNet3D': lambda m: _get(m, 'backbone', 'type') == 'DenseUNet3D',
    '3D ResNet': lambda m: _get(m, 'backbone', 'type') == 'ResNet18FPR3D',
    'Deformable Convolution': lambda m: bool(_get(m, 'backbone', 'dcn')),
    'FPN': lambda m: _get(m, 'neck', 'type') in ('FPN', 'LevelSelectFPN'),
    'Dense FPN': lambda m: _get(m, 'neck', 'type') == 'DenseFPN',
    'Attention Gate': lambda m: _get(m, 'neck', 'type') == 'DenseFPN' and
    bool(_get(m, 'neck', 'attention_gates')),
    'RPN': lambda m: _get(m, 'rpn_head', 'type') in
    ('RPNHead', 'AggregatedRPNHead3D'),
    'TruncatedRPN': lambda m: _get(m, 'rpn_head', 'type') ==
    'TruncatedRPNHead',
    'Anchor-free Proposal Network': lambda m: _get(m, 'rpn_head', 'type') ==
    'AFPHead',
    'FCOS': lambda m: 'FCOSHead' in (_get(m, 'rpn_head', 'type'),
                                     _get(m, 'bbox_head', 'type')),
    'CenterNet': lambda m: _get(m, 'rpn_head', 'type') ==
    'CenterNetProposalHead',
    'RetinaNet': lambda m: _get(m, 'bbox_head', 'type') == 'RetinaHead',
    'Lesion Segmentation Head': lambda m: _get(m, 'seg_head', 'type') ==
    'LesionSegHead',
    'RoIAlign': lambda m: _get(m, 'roi_head', 'bbox_roi_extractor',
                               'roi_layer', 'type') == 'RoIAlign',
    'Auto-lesion Block': lambda m: _get(m, 'roi_head', 'bbox_head', 'type')
    in ALB_HEADS,
    'Non-local': lambda m: _get(m, 'roi_head', 'bbox_head', 'type') in
    ALB_HEADS and 'non_local' in _alb_ops(m['roi_head']['bbox_head']),
    'Relation Transfer Module': lambda m: _get(
        m, 'roi_head', 'bbox_head', 'type') == 'RTMBBoxHead',
    'Dataset Experts': lambda m: m.get('type') in ('LENS', 'LENSOneStage')
    and m.get('num_datasets', 1) > 1,
    'Separate Models': lambda m: m.get('type') == 'LENSSeparateModels',
    'Aggregated FPRN': lambda m: _get(m, 'fprn_head', 'type') ==
    'AggregatedFPRNHead3D',
    'RoIAlign3D': lambda m: _get(m, 'fprn_head', 'type') ==
    'AggregatedFPRNHead3D',
    'Diameter Alignment': lambda m: bool(
        _get(m, 'fprn_head', 'use_diameter_alignment')),
    'Local Magnification': lambda m: bool(_get(m, 'fprn_head',
                                               'use_magnify')),
    '3D RoI Pooling': lambda m: m.get('type') == 'LENSFPR',
}
#: every component type :data:`ARCHITECTURE` knows (a config with another
#: one needs a name there first)
KNOWN_COMPONENTS = {
    'type': {
        'FasterRCNN', 'UncroppedFasterRCNN', 'RetinaNet', 'ImprovedRetinaNet',
        'LENS', 'LENSFPR', 'AggregatedFasterRCNN3D', 'LENSOneStage',
        'LENSSeparateModels'
    },
    'backbone': {
        'ResNet', 'ResNetWithStem', 'SliceGroupResNet', 'LesionVGG',
        'MULANDenseNet', 'DenseUNet3D', 'ResNet18FPR3D'
    },
    'neck': {'FPN', 'LevelSelectFPN', 'DenseFPN'},
    'rpn_head': {'RPNHead', 'AggregatedRPNHead3D', 'TruncatedRPNHead',
                 'AFPHead', 'FCOSHead', 'CenterNetProposalHead'},
    'bbox_head': {'RetinaHead', 'FCOSHead'},
    'seg_head': {'LesionSegHead'},
    'fprn_head': {'AggregatedFPRNHead3D'},
    'roi_head': {'StandardRoIHead', 'ALBRoIHead'},
    'roi_head.bbox_head': {
        'BBoxHead', 'Shared2FCBBoxHead', 'LENSBBoxHead', 'ALBBBoxHead',
        'RTMBBoxHead'
    },
}


def _wrappers(optim_wrapper: dict) -> List[dict]:
    """Every optim wrapper of a config (the ALB search has two)."""
    if not isinstance(optim_wrapper, dict):
        return []
    if isinstance(optim_wrapper.get('optimizer'), dict):
        return [optim_wrapper]
    return [w for v in optim_wrapper.values() for w in _wrappers(v)]


def _optimizers(optim_wrapper: dict) -> List[dict]:
    return [w['optimizer'] for w in _wrappers(optim_wrapper)]


def _train_datasets(cfg) -> List[dict]:
    """The leaf datasets the config trains on."""
    out, todo = [], [cfg.train_dataloader.dataset]
    while todo:
        ds = todo.pop(0)
        if ds.get('datasets'):
            todo += list(ds['datasets'])
        elif ds.get('dataset'):
            todo.append(ds['dataset'])
        else:
            out.append(ds)
    return out


def _is_search(cfg, strategy: str) -> bool:
    return cfg.train_cfg.get('type') == 'ALBSearchLoop' and (
        cfg.train_cfg.get('strategy', 'differentiable') == strategy)


def _de_anchors(m) -> bool:
    gen = _get(m, 'bbox_head', 'anchor_generator') or {}
    return (_get(m, 'bbox_head', 'type') == 'RetinaHead'
            and gen.get('octave_base_scale') is None and 'scales' in gen)


def _mined_deeplesion(cfg) -> bool:
    return any(  # lens_mined.json, or a file of fewer strategies (Table III)
        ds.get('type') == 'DeepLesionMinedDataset'
        and str(ds.get('mined_ann_file')).startswith('lens_mined')
        for ds in _train_datasets(cfg))


#: Training Technique -> whether a config trains with it
TRAINING_TECHNIQUES = {
    'SGD with Momentum': lambda c: any(
        o['type'] == 'SGD' and o.get('momentum', 0) > 0
        for o in _optimizers(c.optim_wrapper)),
    'Adam': lambda c: any(o['type'] == 'Adam'
                          for o in _optimizers(c.optim_wrapper)),
    'RAdam': lambda c: any(o['type'] == 'RAdam'
                           for o in _optimizers(c.optim_wrapper)),
    'Weight Decay': lambda c: any(
        o.get('weight_decay', 0) > 0 for o in _optimizers(c.optim_wrapper)),
    'Gradient Clip': lambda c: any(
        w.get('clip_grad') for w in _wrappers(c.optim_wrapper)),
    'ReduceLROnPlateau': lambda c: 'ReduceOnPlateauLR' in _types(
        c.get('param_scheduler')),
    'Early Stopping': lambda c: 'EarlyStoppingHook' in _types(
        c.get('custom_hooks')),
    'Focal Loss': lambda c: 'FocalLoss' in _types(c.model),
    'Adaptive Focal Loss': lambda c: 'AdaptiveFocalLoss' in _types(c.model),
    'OHEM': lambda c: 'OHEMBinaryLoss' in _types(c.model),
    'Smooth L1 Loss': lambda c: 'SmoothL1Loss' in _types(c.model),
    'Differential Evolution Anchor Optimization': lambda c: _de_anchors(
        c.model),
    'GrabCut Masks from RECIST': lambda c: 'RecistToMask' in _types(
        c.train_dataloader.dataset),
    'Differentiable Architecture Search': lambda c: _is_search(
        c, 'differentiable'),
    'Random Search with Weight Sharing': lambda c: _is_search(c, 'random'),
    'Anchor Based Sampling': lambda c: 'HardRegionRandomCrop3D' in _types(
        c.train_dataloader.dataset),
    'Multi-dataset Training': lambda c: len(_train_datasets(c)) > 1,
    'Missing Annotation Mining': _mined_deeplesion,
}
#: the folder a training set is read from -> its name in the index
TRAINING_DATA = {
    'DeepLesion': 'DeepLesion', 'DeepLesion3D': 'DeepLesion',
    'kits19_2d': 'KiTS19', 'LUNA16': 'LUNA16', 'luna16': 'LUNA16',
    'lits': 'LiTS', 'nih_ln': 'NIH-LN'
}


def config_architecture(model_cfg) -> List[str]:
    """The Architecture names true for a model config (in the order of
    :data:`ARCHITECTURE`); raises on a component it does not know."""
    m = model_cfg.to_dict() if hasattr(model_cfg, 'to_dict') else model_cfg
    if m.get('type') == 'LENSSeparateModels':  # its members' components
        m = dict(m['detector'], type=m['type'])
    for part, known in KNOWN_COMPONENTS.items():
        kind = m.get('type') if part == 'type' else _get(
            m, *part.split('.'), 'type')
        if kind is not None and kind not in known:
            raise KeyError(f'{part} {kind}: name it in ARCHITECTURE first')
    return [name for name, has in ARCHITECTURE.items() if has(m)]


def config_training(cfg) -> Dict[str, List[str]]:
    """The Training Data and Training Techniques of a config."""
    data = []
    for ds in _train_datasets(cfg):
        name = TRAINING_DATA[Path(ds['data_root']).name]
        if name not in data:
            data.append(name)
    return {
        'Training Data': data,
        'Training Techniques':
        [n for n, has in TRAINING_TECHNIQUES.items() if has(cfg)],
    }


def _as_list(value) -> List[str]:
    return [value] if isinstance(value, str) else list(value or [])


def metadata_problems(meta: dict, cfg) -> List[str]:
    """What a model's metadata (as ``mim search`` shows it) says that its
    config does not: every Architecture name, training set and technique
    must be the config's, and each of the config's must be listed."""
    out = []
    want = dict(config_training(cfg),
                Architecture=config_architecture(cfg.model))
    for key, expected in want.items():
        listed = _as_list(meta.get(key))
        if len(listed) != len(set(listed)):
            out.append(f'{key} lists a name twice: {listed}')
        for name in sorted(set(listed) - set(expected)):
            out.append(f'{key} {name!r}: not in the config')
        for name in sorted(set(expected) - set(listed)):
            out.append(f'{key} {name!r}: the config has it, not listed')
    return out


@lru_cache(maxsize=None)
def _config(path: str):
    return get_config(path[len('configs/'):])


# ---------------------------------------------------------------- tests
MI = load_index(ROOT / 'model-index.yml')
COLLECTIONS = {c.name: c for c in MI.collections}
MODELS = list(MI.models)


def _metafiles() -> Dict[str, dict]:
    index = yaml.safe_load((ROOT / 'model-index.yml').read_text())
    return {
        path: yaml.safe_load((ROOT / path).read_text())
        for path in index['Import']
    }


METAFILES = _metafiles()


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
        assert collection['README'] == str(Path(path).parent / 'README.md')
        assert (ROOT / collection['README']).is_file()
        url = collection['Paper']['URL']
        if collection['Name'] in PAPERS:
            assert url == PAPERS[collection['Name']]
        else:
            assert url.startswith('https://') and url in (
                ROOT / collection['README']).read_text(), path
        assert collection['Paper']['Title']
        names = {m['In Collection'] for m in meta['Models']}
        assert names == {collection['Name']}, path
    # modelindex reads the same: every model in its collection
    assert set(PAPERS) <= set(COLLECTIONS)
    assert [m.name for m in MODELS] == [
        m['Name'] for meta in METAFILES.values() for m in meta['Models']
    ]
    assert check_problems(MI, ROOT) == []


def test_every_full_size_config_is_one_model():
    listed = [m.config for m in MODELS]
    assert len(listed) == len(set(listed)), 'a config listed twice'
    assert sorted(listed) == _full_size_configs()
    assert config_problems(MI, ROOT) == []
    for model in MODELS:
        assert model.name == Path(model.config).stem


@pytest.mark.parametrize('method', METHODS)
def test_metafile_keys_are_openmmlabs(method):
    assert schema_problems(ROOT / 'configs' / method / 'metafile.yml') == []


def test_schema_is_mmdets():
    """:data:`SCHEMA` is what mmdet's own metafiles use (``Paper Row``
    aside, ours)."""
    import mmdet
    found = glob.glob(
        str(Path(mmdet.__file__).parent / '.mim' / 'configs' / '*' /
            'metafile.yml'))
    if not found:
        pytest.skip('this mmdet carries no metafiles')
    used = {level: set() for level in SCHEMA}
    for path in found:
        data = yaml.safe_load(Path(path).read_text())
        if not isinstance(data, dict):
            continue
        used['file'] |= set(data)
        for col in data.get('Collections') or []:
            used['collection'] |= set(col)
            used['collection metadata'] |= set(col.get('Metadata') or {})
            for key in ('Paper', 'Code'):
                if isinstance(col.get(key), dict):
                    used[key.lower()] |= set(col[key])
        for model in data.get('Models') or []:
            used['model'] |= set(model)
            used['model metadata'] |= set(model.get('Metadata') or {})
            for result in model.get('Results') or []:
                used['result'] |= set(result)
    for level, keys in SCHEMA.items():
        assert keys <= used[level], (level, keys - used[level])


def test_no_results_without_weights():
    """``mim search`` shows a model's Results as its metrics: only numbers
    measured with the model's own Weights belong there. We have trained
    no full-size model yet, so no model has either; the papers' numbers
    are in the READMEs' results tables."""
    assert result_problems(MI) == []
    assert [m.name for m in MODELS if m.results or m.weights] == []


def test_no_made_up_code_url():
    assert code_problems(MI) == []


@pytest.mark.parametrize('model', MODELS, ids=[m.name for m in MODELS])
def test_model_metadata_is_the_configs(model):
    cfg = _config(model.config)
    meta = mim_metadata(model, COLLECTIONS)
    assert meta['Epochs'] == cfg.train_cfg.max_epochs
    per_gpu = cfg.train_dataloader.batch_size
    if cfg.get('auto_scale_lr'):
        assert meta['Batch Size'] == cfg.auto_scale_lr.base_batch_size
    assert meta['Batch Size'] % per_gpu == 0
    # the name's NxbM part: N GPUs x M images each
    gpus, _, per = next(
        part for part in model.name.replace('_', '-').split('-')
        if 'xb' in part).partition('xb')
    assert int(per) == per_gpu
    assert int(gpus) * per_gpu == meta['Batch Size']
    assert meta.get('Paper Row'), 'say which paper row, or none'
    # Architecture, Training Data and Training Techniques are the config's
    assert metadata_problems(meta, cfg) == []
    # modelindex merges a collection's lists into the model's, mim shows
    # the model's own: both read the same only when the collection lists
    # none of them
    full = model.full_model.metadata.data
    for key in ('Architecture', 'Training Data', 'Training Techniques'):
        assert _as_list(full.get(key)) == _as_list(meta.get(key)), key


@pytest.mark.parametrize('method', METHODS)
def test_readme_names_every_model(method):
    text = (ROOT / 'configs' / method / 'README.md').read_text()
    for model in METAFILES[f'configs/{method}/metafile.yml']['Models']:
        assert model['Name'] in text, model['Name']


def _write_index(tmp_path: Path, models: Sequence[dict],
                 collection: Optional[dict] = None) -> Path:
    col = dict(Name='Bad', Metadata={'Training Resources': '1x GPU'},
               Paper={'URL': 'https://arxiv.org/abs/2003.08770',
                      'Title': 'x'},
               README='configs/elixirnet/README.md')
    col.update(collection or {})
    meta = tmp_path / 'configs' / 'bad' / 'metafile.yml'
    meta.parent.mkdir(parents=True)
    meta.write_text(yaml.safe_dump(dict(Collections=[col],
                                        Models=list(models))))
    index = tmp_path / 'model-index.yml'
    index.write_text('Import:\n  - configs/bad/metafile.yml\n')
    return index


def test_checks_can_fail(tmp_path):
    """Today's faults, in a synthetic index: a paper's numbers as Results
    (with ``Results Source``), a made-up code URL, a C4 baseline that
    inherits FPN / TRPN / ALB, a config that does not exist."""
    c4 = 'configs/elixirnet/faster-rcnn_r50_c4_4xb2-1x_deeplesion-3slice.py'
    index = _write_index(tmp_path, [
        {
            'Name': 'c4', 'In Collection': 'Bad', 'Config': c4,
            'Metadata': {'Epochs': 12, 'Batch Size': 8},
            'Results': [{'Task': 'Lesion Detection', 'Dataset': 'DeepLesion',
                         'Metrics': {'sens@3': 79.17}}],
            'Results Source': 'paper'
        },
        {
            'Name': 'gone', 'In Collection': 'Bad',
            'Config': 'configs/elixirnet/no-such-config.py',
        },
    ], dict(Code={'URL': 'https://github.com/mmlesion/mmlesion',
                  'Version': 'v0.1.0'},
            Metadata={'Architecture': ['ResNet', 'FPN', 'TruncatedRPN',
                                       'Auto-lesion Block']}))
    mi = load_index(index)
    assert result_problems(mi) == ['c4: Results without Weights']
    assert code_problems(mi) == [
        'Bad: Code URL https://github.com/mmlesion/mmlesion does not exist'
    ]
    assert config_problems(mi, ROOT) == [
        'gone: no config configs/elixirnet/no-such-config.py'
    ]
    bad = schema_problems(tmp_path / 'configs' / 'bad' / 'metafile.yml')
    assert len(bad) == 1 and "'Results Source'" in bad[0]
    # the C4 model shows its collection's FPN, TRPN and ALB in mim search
    cols = {c.name: c for c in mi.collections}
    meta = mim_metadata(mi.models[0], cols)
    problems = metadata_problems(meta, _config(c4))
    for name in ('FPN', 'TruncatedRPN', 'Auto-lesion Block'):
        assert f"Architecture {name!r}: not in the config" in problems
    assert "Architecture 'RPN': the config has it, not listed" in problems
    # the same model with its own list is right
    meta['Architecture'] = config_architecture(_config(c4).model)
    assert meta['Architecture'] == ['ResNet', 'RPN', 'RoIAlign']
    assert not [p for p in metadata_problems(meta, _config(c4))
                if p.startswith('Architecture')]
    # a component nobody named yet is refused, not skipped
    with pytest.raises(KeyError, match='CascadeRoIHead'):
        config_architecture(dict(type='FasterRCNN',
                                 roi_head=dict(type='CascadeRoIHead')))


def test_mmengine_reads_the_index(tmp_path):
    """mmengine looks a ``mmlesion::`` base up in the installed model
    index first (as for ``mmdet::``): the index and every metafile must
    load, and the base resolve to the file in ``configs/``."""
    import mmlesion  # noqa: F401  (mmlesion:: lookups)
    from mmengine.config import Config
    from mmengine.config.utils import _get_cfg_metainfo
    from mmlesion.utils.configs.lookup import _PKG_DIR
    name = 'elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py'
    meta = _get_cfg_metainfo(_PKG_DIR, name)
    assert meta['Config'] == 'configs/' + name
    user = tmp_path / 'mine.py'
    user.write_text(f"_base_ = 'mmlesion::{name}'\n")
    assert Config.fromfile(str(user)).model.rpn_head.type == \
        'TruncatedRPNHead'
