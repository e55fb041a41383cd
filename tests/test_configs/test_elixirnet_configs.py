# Copyright (c) mmlesion contributors. All rights reserved.
"""Every config of configs/elixirnet builds its model; demo configs also run
loss and predict on a fake batch; the paper's settings are where they should
be."""
import copy
import functools
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.hub import get_config as get_mim_config
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
from mmlesion.testing import get_config, repo_root
from mmlesion.testing.det_batches import det_sample

CONFIG_DIR = repo_root() / 'configs' / 'elixirnet'
CONFIGS = sorted(str(p.relative_to(CONFIG_DIR)) for p in CONFIG_DIR.rglob('*.py')
                 if 'alb-search' not in p.name)
DEMO_CONFIGS = [name for name in CONFIGS if 'demo' in name]


@functools.lru_cache(maxsize=None)
def _load_cached(name: str) -> Config:
    return get_config(f'elixirnet/{name}')


def _load(name: str) -> Config:
    """Parse each config once per session (parsing dominates the time)."""
    return copy.deepcopy(_load_cached(name))


def _build(cfg: Config):
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(copy.deepcopy(cfg.model))


def _built(name: str):
    return _build(_load(name))


def _num_slices(cfg: Config) -> int:
    loads = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t['type'] == 'LoadDeepLesionSlices'
    ]
    assert len(loads) == 1
    return loads[0]['num_slices']


def _fake_batch(num_channels: int, num_classes: int, size: int = 128):
    gen = torch.Generator().manual_seed(0)
    boxes = [[[20., 24., 44., 52.]], [[70., 30., 90., 46.],
                                        [30., 80., 60., 100.]]]
    inputs, samples = [], []
    for i, bxs in enumerate(boxes):
        inputs.append(
            torch.rand(num_channels, size, size, generator=gen) * 2 - 1)
        samples.append(
            det_sample(i, size, bxs, [j % num_classes
                                      for j in range(len(bxs))]))
    return dict(inputs=inputs, data_samples=samples)


def test_config_list_complete():
    """The rows the paper reports all have a config."""
    expected = {
        # Table 1 / 2 / 5: three detectors x 3 and 9 slices, with baselines
        *(f'{algo}_{bb}_4xb2-1x_deeplesion-{s}slice.py'
          for algo in ('elixirnet-fig3geno', 'faster-rcnn')
          for bb in ('r50_c4', 'r50_fpn', 'r50-dcnv2_fpn') for s in (3, 9)),
        # Table 5 ablation (baseline and full rows are listed above)
        'elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
        'elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py',
        'elixirnet-alb-rtm-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py',
        'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py',
        'elixirnet-trpn-noaux_r50_fpn_4xb2-1x_deeplesion-3slice.py',
        'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice.py',
        # Table 5: TRPN against "replacing the cross-entropy loss in RPN" by
        # the focal loss (on the FPN baseline)
        'elixirnet-rpnfocal_r50_fpn_4xb2-1x_deeplesion-3slice.py',
        # Table 3: KiTS19
        *(f'{algo}_{bb}_4xb2-1x_kits19-3slice.py'
          for algo in ('elixirnet-fig3geno', 'faster-rcnn')
          for bb in ('r50_fpn', 'r50-dcnv2_fpn')),
        # Table 4 multi-type fine-tuning
        'elixirnet-fig3geno_r50_fpn_4xb2-ft-6e_deeplesion-3slice-multitype.py',
        'elixirnet-wo-rtm-fig3geno_r50_fpn_4xb2-ft-6e_deeplesion-3slice-multitype.py',
        'faster-rcnn_r50_fpn_4xb2-ft-6e_deeplesion-3slice-multitype.py',
        # demo
        'demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py',
        'demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py',
        'demo/elixirnet-alb-random_r18-tiny_fpn_1x_deeplesion-demo.py',
    }
    assert expected <= set(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name):
    cfg = _load(name)
    assert cfg.default_scope == 'mmdet'
    assert 'mmlesion' in cfg.custom_imports['imports']
    model = _built(name)
    slices = _num_slices(cfg)
    assert slices == (9 if '9slice' in name else 3)
    backbone = model.backbone
    if type(backbone).__name__ == 'SliceGroupResNet':
        # 3DCE / MULAN: groups of 3 slices through the pretrained stem.
        assert backbone.conv1.in_channels == 3
        assert 3 * backbone.num_slice_groups == slices
        assert 'demo' not in name and '9ch' not in name
    else:
        assert backbone.conv1.in_channels == slices
        # Pretrained 9-slice configs use slice groups unless named 9ch.
        assert slices == 3 or 'demo' in name or '9ch' in name
    head = model.roi_head.bbox_head
    num_classes = 8 if 'multitype' in name else 1
    assert head.num_classes == num_classes
    # A searched config (tools/search_alb.py) is its target with another
    # genotype.
    algo = name.split('/')[-1].split('_')[0].replace('-searched', '')
    algo = algo.replace('-fig3geno', '')
    with_trpn = algo.startswith('elixirnet') and (
        algo in ('elixirnet', 'elixirnet-wo-rtm') or 'trpn' in algo)
    with_alb = algo.startswith('elixirnet') and (
        algo in ('elixirnet', 'elixirnet-wo-rtm') or 'alb' in algo)
    with_rtm = algo in ('elixirnet', 'elixirnet-alb-rtm')
    assert (type(model.rpn_head).__name__ == 'TruncatedRPNHead') == with_trpn
    if with_trpn:
        # Paper-pure Eq. (1) (no auxiliary location loss) only where named.
        assert (model.rpn_head.loss_loc is None) == ('noaux' in algo)
    if with_trpn:
        gen = model.rpn_head.prior_generator
        assert list(gen.scales.tolist()) == [2, 3, 4, 6, 12]
        assert list(gen.ratios.tolist()) == [0.5, 1.0, 2.0]
        assert model.rpn_head.truncate_thr == 'mean'
    assert (type(model.roi_head).__name__ == 'ALBRoIHead') == with_alb
    assert (type(head).__name__ == 'RTMBBoxHead') == with_rtm
    if 'dcnv2' in name:
        assert model.backbone.stage_with_dcn == (False, True, True, True)
    # The focal-loss RPN row: the RPN's loss is the focal loss over every
    # anchor (no sampler).
    rpn_loss = type(model.rpn_head.loss_cls).__name__
    assert (rpn_loss == 'FocalLoss') == ('rpnfocal' in name)
    if 'rpnfocal' in name:
        assert type(model.rpn_head.sampler).__name__ == 'PseudoSampler'
    # KiTS19 rows (Table 3) read the KiTS19 export and never validate
    # (the paper has no validation split).
    roots = {cfg[k].dataset.data_root for k in ('train_dataloader',
                                                'test_dataloader')}
    if 'kits19' in name:
        assert roots == {'data/kits19_2d/'} and cfg.val_dataloader is None
    elif 'demo' not in name:
        assert roots == {'data/DeepLesion/'}
    if 'demo' not in name:
        assert model.backbone.depth == 50
    else:
        assert cfg.model.backbone.init_cfg is None


def test_paper_sizes_of_full_elixirnet():
    """3x3 conv to 128, 1 ALB + 2 ALBr (P = 512), RTM E = 128, RoI 14."""
    cfg = _load('elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py')
    head = _build(cfg).roi_head.bbox_head
    assert head.conv_out_channels == 128
    assert len(head.reduce_cells) == 2 and head.out_channels == 512
    assert head.num_branches == 4 and head.rtm_channels == 128
    assert cfg.model.roi_head.bbox_roi_extractor.roi_layer.output_size == 14
    assert cfg.optim_wrapper.optimizer.lr == 0.02
    assert cfg.optim_wrapper.optimizer.weight_decay == 1e-4
    assert cfg.train_cfg.max_epochs == 12


def test_parameter_ratio_matches_paper():
    """Paper: ElixirNet has about 60-70 % of the baseline's parameters."""

    def count(name):
        return sum(p.numel() for p in _built(name).parameters())

    ratio = count('elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py') / count(
        'faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py')
    assert 0.6 <= ratio <= 0.7


def test_dcnv2_matches_mmdet_config():
    mmdet_cfg = get_mim_config(
        'mmdet::dcnv2/faster-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py')
    for name in CONFIGS:
        if 'dcnv2' not in name:
            continue
        backbone = _load(name).model.backbone
        assert backbone.dcn == mmdet_cfg.model.backbone.dcn
        assert tuple(backbone.stage_with_dcn) == tuple(
            mmdet_cfg.model.backbone.stage_with_dcn)


@pytest.mark.parametrize('name', [n for n in CONFIGS if 'multitype' in n])
def test_multitype_fine_tuning_recipe(name):
    cfg = _load(name)
    assert cfg.load_from
    train_ds = cfg.train_dataloader.dataset
    test_ds = cfg.test_dataloader.dataset
    assert (train_ds.split, train_ds.label_mode) == ('val', 'coarse_type')
    assert (test_ds.split, test_ds.label_mode) == ('test', 'coarse_type')
    assert cfg.train_cfg.max_epochs == 6
    assert cfg.optim_wrapper.optimizer.lr == 0.002
    keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    for frozen in ('neck', 'rpn_head'):
        assert keys[frozen]['lr_mult'] == 0
    assert cfg.model.backbone.frozen_stages == 4
    model = _built(name)
    frozen = [p.requires_grad for p in model.backbone.parameters()]
    assert not any(frozen)
    if name.split('/')[-1].startswith('elixirnet_'):
        assert not model.roi_head.bbox_head.rtm.binary_cls.weight.requires_grad


def test_demo_rows_share_data_and_schedule():
    base = _load('demo/faster-rcnn_r18-tiny_fpn_1x_deeplesion-demo.py')
    keys = ('train_cfg', 'optim_wrapper', 'param_scheduler')
    for name in DEMO_CONFIGS:
        if 'multitype' in name or '9slice' in name:
            continue
        cfg = _load(name)
        for key in keys:
            assert cfg[key] == base[key], (name, key)
        assert cfg.train_dataloader == base.train_dataloader, name
        assert cfg.test_dataloader == base.test_dataloader, name
        assert cfg.model.backbone == base.model.backbone, name
        assert cfg.model.neck == base.model.neck, name


def test_random_genotype_differs_from_default():
    random = _load(
        'demo/elixirnet-alb-random_r18-tiny_fpn_1x_deeplesion-demo.py')
    g1 = _built('demo/elixirnet-alb_r18-tiny_fpn_1x_deeplesion-demo.py'
                ).roi_head.bbox_head.genotypes()
    g2 = _built('demo/elixirnet-alb-random_r18-tiny_fpn_1x_deeplesion-demo.py'
                ).roi_head.bbox_head.genotypes()
    assert g1 != g2
    assert [tuple(o) for o in g2['normal']['ops']] == [
        tuple(o) for o in random.random_genotypes['normal']['ops']
    ]


@pytest.mark.parametrize('name', DEMO_CONFIGS)
def test_demo_config_loss_and_predict(name):
    cfg = _load(name)
    model = _build(cfg)
    num_classes = model.roi_head.bbox_head.num_classes
    data = _fake_batch(_num_slices(cfg), num_classes)
    model.train()
    batch = model.data_preprocessor(data, True)
    losses = model(**batch, mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    head = model.roi_head.bbox_head
    if type(head).__name__ == 'RTMBBoxHead':
        # Single-class "+RTM": the learnt FC 2-cls has its own loss;
        # multi-type fine-tuning: frozen, no loss.
        learnt = head.rtm.binary_cls.weight.requires_grad
        assert ('loss_binary_cls' in losses) == learnt
        if learnt:
            assert head.rtm.binary_cls.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(data, False),
                        mode='predict')
    assert len(results) == 2
    for res in results:
        pred = res.pred_instances
        assert pred.bboxes.shape[1] == 4
        assert len(pred.scores) == len(pred.labels) == len(pred.bboxes)
        if len(pred.labels):
            assert int(pred.labels.max()) < num_classes


def test_config_files_live_where_tests_expect():
    assert Path(CONFIG_DIR).is_dir() and len(CONFIGS) >= 20


def test_multitype_fine_tuning_loads_the_binary_classifier(tmp_path):
    """The multi-type configs start from the single-class TRPN + ALB model:
    its fc_cls becomes RTM's frozen binary classifier (M, Gamma_s); the ALB
    weights carry over; the 8-type predictors are new."""
    from mmengine.runner import load_checkpoint, save_checkpoint
    source = _build(
        _load('demo/elixirnet-trpn-alb_r18-tiny_fpn_1x_deeplesion-demo.py'))
    ckpt = str(tmp_path / 'single_class.pth')
    save_checkpoint(dict(state_dict=source.state_dict()), ckpt)
    src_head = source.roi_head.bbox_head

    rtm_cfg = _load(
        'demo/elixirnet_r18-tiny_fpn_ft-6e_deeplesion-demo-multitype.py')
    assert 'elixirnet-trpn-alb_r18-tiny' in rtm_cfg.load_from
    target = _build(rtm_cfg)
    load_checkpoint(target, ckpt, map_location='cpu', strict=False)
    head = target.roi_head.bbox_head
    torch.testing.assert_close(head.rtm.binary_cls.weight,
                               src_head.fc_cls.weight)
    torch.testing.assert_close(head.stem.conv.weight,
                               src_head.stem.conv.weight)
    assert head.fc_cls.out_features == 9

    plain = _build(
        _load('demo/elixirnet-wo-rtm_r18-tiny_fpn_ft-6e_deeplesion-demo-multitype'
              '.py'))
    load_checkpoint(plain, ckpt, map_location='cpu', strict=False)
    torch.testing.assert_close(plain.roi_head.bbox_head.stem.conv.weight,
                               src_head.stem.conv.weight)
    assert plain.roi_head.bbox_head.fc_cls.out_features == 9


def test_shipped_searched_config():
    """The demo search's result: written by tools/search_alb.py, with its
    provenance, and differing from the paper-text genotype."""
    name = 'demo/elixirnet-searched_r18-tiny_fpn_1x_deeplesion-demo.py'
    text = (CONFIG_DIR / name).read_text()
    for field in ('search config:', 'baseline checkpoint', 'command:',
                  'finished:'):
        assert field in text
    searched = _built(name).roi_head.bbox_head.genotypes()
    paper = _built('demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py'
                   ).roi_head.bbox_head.genotypes()
    assert searched != paper
    components = (CONFIG_DIR.parent / '_base_' / 'models' /
                  'elixirnet_components.py').read_text()
    assert 'PAPER-TEXT GENOTYPE, NOT A SEARCH RESULT' in components


def _model_parts(name):
    """A config's model as plain dicts, one entry per component."""
    model = _load(name).model.to_dict()
    return {k: v for k, v in model.items() if k != 'type'}


#: Table 5 (and its Table 1 / 6 neighbours): each row against the row it
#: extends, and the one component it may change (the paper: "unless
#: otherwise noted, settings are the same for all experiments").
ABLATION_STEPS = [
    ('faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
     'elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice.py', 'rpn_head'),
    ('elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
     'elixirnet-trpn-noaux_r50_fpn_4xb2-1x_deeplesion-3slice.py', 'rpn_head'),
    ('faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
     'elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py', 'roi_head'),
    ('elixirnet-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py',
     'elixirnet-alb-rtm-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py', 'roi_head'),
    ('elixirnet-trpn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
     'elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py', 'roi_head'),
    ('elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py',
     'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py', 'roi_head'),
    # Table 5's 9-slice row (+ TRPN + ALB) and its variant with the RTM
    ('elixirnet-trpn-alb-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice.py',
     'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-9slice.py', 'roi_head'),
    ('faster-rcnn_r50_c4_4xb2-1x_deeplesion-3slice.py',
     'elixirnet-fig3geno_r50_c4_4xb2-1x_deeplesion-3slice.py', None),
    # the focal-loss RPN that TRPN outperforms: only the RPN's loss changes
    # (Lin et al.'s, over every anchor: the RPN's sampler goes with it)
    ('faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
     'elixirnet-rpnfocal_r50_fpn_4xb2-1x_deeplesion-3slice.py',
     ['rpn_head', 'train_cfg']),
    # Table 3 (KiTS19): the same models as on DeepLesion
    ('faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py',
     'faster-rcnn_r50_fpn_4xb2-1x_kits19-3slice.py', []),
    ('faster-rcnn_r50-dcnv2_fpn_4xb2-1x_deeplesion-3slice.py',
     'faster-rcnn_r50-dcnv2_fpn_4xb2-1x_kits19-3slice.py', []),
    ('elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py',
     'elixirnet-fig3geno_r50_fpn_4xb2-1x_kits19-3slice.py', []),
    ('elixirnet-fig3geno_r50-dcnv2_fpn_4xb2-1x_deeplesion-3slice.py',
     'elixirnet-fig3geno_r50-dcnv2_fpn_4xb2-1x_kits19-3slice.py', []),
]


@pytest.mark.parametrize('before, after, changed', ABLATION_STEPS)
def test_ablation_row_changes_one_component(before, after, changed):
    a, b = _model_parts(before), _model_parts(after)
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if isinstance(changed, list):
        assert differ == changed, (before, after)
    elif changed is not None:
        assert differ == [changed], (before, after)
    else:  # C4: TRPN and the ALB / RTM head together (Table 1)
        assert differ == ['roi_head', 'rpn_head'], (before, after)
    # the anchors are the paper's in every row (TRPN rows included)
    for parts in (a, b):
        gen = parts['rpn_head']['anchor_generator']
        assert (gen['scales'], gen['ratios']) == ([2, 3, 4, 6, 12],
                                                  [0.5, 1.0, 2.0])
    rpn_a, rpn_b = a['rpn_head'], b['rpn_head']
    if changed == 'rpn_head':
        assert rpn_a['anchor_generator'] == rpn_b['anchor_generator']
    if 'rpnfocal' in after:
        assert sorted(k for k in rpn_a if rpn_a[k] != rpn_b.get(k)) == [
            'loss_cls']
        train_a, train_b = a['train_cfg'], b['train_cfg']
        assert train_b['rpn']['sampler'] is None
        assert dict(train_a['rpn'], sampler=None) == train_b['rpn']
        assert train_a['rcnn'] == train_b['rcnn']


def test_paper_figure_genotype_is_named():
    """A full-size config whose ALB runs the genotype drawn from the paper's
    Fig. 3 (not a searched one) says so in its name (``-fig3geno``)."""
    figure = Config.fromfile(
        str(CONFIG_DIR.parent / '_base_' / 'models' /
            'elixirnet_components.py')).alb_genotypes
    named = 0
    for name in CONFIGS:
        if 'demo' in name or '/' in name:
            continue
        head = _load(name).model.roi_head.get('bbox_head', {})
        uses_figure = head.get('genotypes') == figure
        assert uses_figure == ('fig3geno' in name), name
        named += uses_figure
    assert named >= 14  # the focal-loss RPN row is FPN: no ALB
