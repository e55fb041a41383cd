# Copyright (c) mmlesion contributors. All rights reserved.
"""Every config of configs/lens builds its model; the paper's settings are
where they should be; Table I rows differ only where the table says."""
import copy
import functools

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
from mmlesion.testing import get_config, repo_root

CONFIG_DIR = repo_root() / 'configs' / 'lens'
CONFIGS = sorted(str(p.relative_to(CONFIG_DIR)) for p in CONFIG_DIR.rglob('*.py')
                 if 'alb-search' not in p.name)
FULL = 'densenet121-2.5d_fpn_1xb4-radam-8e'
MULTI = '_deeplesion-luna16-lits-nihln-9slice.py'


@functools.lru_cache(maxsize=None)
def _load_cached(name: str) -> Config:
    return get_config(f'lens/{name}')


def _load(name: str) -> Config:
    return copy.deepcopy(_load_cached(name))


def _build(cfg: Config):
    cfg = copy.deepcopy(cfg.model)
    # the model's backbone, or each member's (Table IV's separate models)
    for model in (cfg, cfg.get('detector') or {}):
        if model.get('backbone', {}).get('init_cfg'):
            model.backbone.init_cfg = None  # no download in tests
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg)


def test_table1_rows_exist():
    rows = [
        f'mulan_{FULL}_deeplesion-9slice.py',
        f'lens-afp_{FULL}_deeplesion-9slice.py',
        f'lens-afp-multi_{FULL}{MULTI}',
        f'lens-afp-multi-fusion_{FULL}{MULTI}',
        f'lens-afp-multi-fusion-mining_{FULL}{MULTI}',
    ]
    assert set(rows) <= set(CONFIGS)
    assert sum('demo' in n for n in CONFIGS) >= 5


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name):
    cfg = _load(name)
    model = _build(cfg)
    assert cfg.default_scope == 'mmdet'
    assert 'mmlesion' in cfg.custom_imports['imports']
    ds = cfg.train_dataloader.dataset
    assert cfg.optim_wrapper.optimizer.type == 'RAdam'
    if name.split('/')[-1].startswith('lens-fpr'):
        assert type(model).__name__ == 'LENSFPR'
        assert ds.type == 'LENSFPRPatchDataset'
        assert cfg.train_dataloader.batch_sampler.pos_neg_ratio == 0.5
        return
    assert ds.type == 'LENSMultiDataset'
    assert cfg.train_dataloader.batch_sampler.type == \
        'LENSDatasetBatchSampler'
    assert cfg.optim_wrapper.optimizer.type == 'RAdam'
    if type(model).__name__ == 'LENS':
        # one LENS dataset per dataset, or per id where datasets are pooled
        ids = ds.get('dataset_ids') or range(len(ds.datasets))
        assert model.num_datasets == len(set(ids)) == len(ds.dataset_names)
        assert list(model.dataset_names) == list(ds.dataset_names)
        assert cfg.train_cfg.max_epochs in (8, 12)
    if 'demo' in name:
        assert cfg.model.backbone.init_cfg is None


def test_fpr_paper_settings():
    cfg = _load('lens-fpr_resnet18-3d_1xb32-radam-6e_deeplesion.py')
    assert cfg.model.backbone.z_kernels == (1, 1, 1, 3)
    assert 'resnet18' in cfg.model.backbone.init_cfg.checkpoint
    assert cfg.optim_wrapper.optimizer.lr == 2e-4
    assert cfg.train_cfg.max_epochs == 6
    assert cfg.param_scheduler[0].milestones == [2, 4]
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.model.loss_cls.type == 'FocalLoss'


def test_paper_settings():
    cfg = _load(f'lens-afp-multi-fusion_{FULL}{MULTI}')
    m = cfg.model
    assert m.rpn_head.center_ratio == 0.2 and m.rpn_head.ignore_ratio == 0.5
    assert m.rpn_head.loss_bbox.loss_weight == 0.1  # lambda_1
    assert m.roi_head.bbox_head.loss_bbox.loss_weight == 10.  # lambda_2
    assert m.train_cfg.rcnn.assigner.ignore_iof_thr == 0.5
    assert m.backbone.num_slices == 9 and m.backbone.slices_per_group == 3
    assert 'densenet121' in m.backbone.init_cfg.checkpoint
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.train_cfg.max_epochs == 8
    (sched, ) = cfg.param_scheduler
    assert sched.milestones == [4, 6] and sched.gamma == 0.1
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.train_dataloader.batch_sampler.pos_neg_ratio == 2.0
    assert list(m.dataset_names) == ['deeplesion', 'luna16', 'lits',
                                     'nih_ln']
    assert m.test_cfg.expert_fusion.experts is None
    b = _load(f'lens-afp-multi_{FULL}{MULTI}')
    assert b.model.test_cfg.expert_fusion.experts == [0]
    d = _load(f'lens-afp-multi-fusion-mining_{FULL}{MULTI}')
    d0 = d.train_dataloader.dataset.datasets[0]
    assert d0.type == 'DeepLesionMinedDataset'
    assert d0.mined_ann_file == 'lens_mined.json'
    assert d0.data_root == 'data/DeepLesion/'
    assert d0.pipeline == d.train_dataloader.dataset.datasets[1].pipeline
    demo = _load('demo/lens-afp-multi-fusion-mining_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py').train_dataloader.dataset.datasets
    assert demo[0].type == 'DeepLesionMinedDataset'
    assert demo[0].pipeline == demo[1].pipeline
    assert demo[0].data_root == 'data/demo_deeplesion/'
    a = _load(f'lens-afp_{FULL}_deeplesion-9slice.py')
    assert a.model.num_datasets == 1


@pytest.mark.parametrize('baseline, row_a', [
    (f'mulan_{FULL}_deeplesion-9slice.py', f'lens-afp_{FULL}_deeplesion-9slice.py'),
    ('demo/mulan_densenet-tiny_fpn_radam-12e_deeplesion-demo-partial.py',
     'demo/lens-afp_densenet-tiny_fpn_radam-12e_deeplesion-demo-partial.py'),
])
def test_row_a_changes_only_the_proposal_network_at_test(baseline, row_a):
    """Table I row (a) "replaced the region proposal network (RPN) in MULAN
    with our proposed anchor-free proposal network (AFP)" and nothing else:
    the proposals kept and the R-CNN test settings (score threshold, NMS,
    boxes per slice) are the baseline's, in the full configs and in the
    synthetic study's. LENS's own keys (``proposal_fusion`` of the d AFPs'
    proposals, ``expert_fusion``) have no counterpart in MULAN."""
    base, a = _load(baseline).model.test_cfg, _load(row_a).model.test_cfg
    assert a.rpn.to_dict() == base.rpn.to_dict()
    assert a.rcnn.to_dict() == base.rcnn.to_dict()
    assert set(a) - set(base) == {'proposal_fusion', 'expert_fusion'}
    # one AFP: the pooled proposals are kept as many as the AFP keeps
    assert a.proposal_fusion.max_per_img == a.rpn.max_per_img
    # the settings of the whole table (README "Choices the paper leaves open")
    if 'demo' not in baseline:
        assert a.rpn.max_per_img == 300 and a.rcnn.score_thr == 0.01


@pytest.mark.parametrize('name', [n for n in CONFIGS if '/' not in n
                                  and not n.startswith('lens-fpr')])
def test_test_pipeline_clips_the_border_as_training(name):
    """Sec. VI-A: "The black borders in images were clipped for computation
    efficiency", a preprocessing step of every image: a config whose
    training clips the border clips it at test too, without looking at the
    annotations, and its detector maps boxes back through the crop."""
    cfg = _load(name)
    train = [t.type for d in cfg.train_dataloader.dataset.datasets
             for t in d.pipeline]
    test = [t for t in cfg.test_dataloader.dataset.pipeline
            if t.type == 'ClipBlackBorder']
    assert ('ClipBlackBorder' in train) == bool(test)
    assert all(not t.get('keep_annotations', True) for t in test)
    if test:
        assert cfg.model.type in ('LENS', 'LENSOneStage',
                                  'LENSSeparateModels',
                                  'UncroppedFasterRCNN')
