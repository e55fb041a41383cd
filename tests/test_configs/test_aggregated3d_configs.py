# Copyright (c) mmlesion contributors. All rights reserved.
"""Every configs/aggregated3d config loads, builds its model, pipelines and
(when registered) its evaluator; the tiny demo model runs a forward pass."""
from pathlib import Path

import pytest
import torch
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
from mmdet.registry import METRICS, MODELS, TRANSFORMS
from mmlesion.testing import get_config, repo_root
from tests.helpers.aggregated3d import volume_sample

CONFIGS = sorted(
    str(p.relative_to(repo_root() / 'configs' / 'aggregated3d'))
    for p in (repo_root() / 'configs' / 'aggregated3d').rglob('*.py'))


def _datasets(cfg):
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[key]['dataset']
        while 'dataset' in ds:  # RepeatDataset etc.
            ds = ds['dataset']
        yield key, ds


def test_found_configs():
    assert len(CONFIGS) >= 15
    assert 'aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py' in CONFIGS


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name):
    cfg = get_config(f'aggregated3d/{name}')
    model = MODELS.build(cfg.model)
    assert model.with_fprn == (cfg.model.fprn_head is not None)
    for key, ds in _datasets(cfg):
        assert ds['type'] in ('CrossValVolumeDataset',
                              'CTVolumeDataset'), key
        # mmcv's Compose (the augmentation) builds in the default scope
        with DefaultScope.overwrite_default_scope('mmdet'):
            for step in ds['pipeline']:
                TRANSFORMS.build(step)
    if METRICS.get(cfg.val_evaluator['type']) is not None:
        METRICS.build(cfg.val_evaluator)


def test_table_rows_differ_as_the_paper_says():
    base = get_config(
        'aggregated3d/aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py').model
    assert base.fprn_head.use_diameter_alignment and base.fprn_head.use_magnify
    # Table I's 5^3 Local Magnification output; 12^3 only in the variant
    assert base.fprn_head.magnify_stride == 1
    assert get_config('aggregated3d/aggregated3d-magnify12_denseunet3d_anchor1_4xb2-50e_luna16.py').model.fprn_head.magnify_stride \
        == 2
    assert base.rpn_head.anchor_generator.sizes == [[4, 6], [8, 12],
                                                    [16, 24]]
    wo_da = get_config(
        'aggregated3d/aggregated3d-wo-da_denseunet3d_anchor1_4xb2-50e_luna16.py')
    assert not wo_da.model.fprn_head.use_diameter_alignment
    alt = get_config('aggregated3d/aggregated3d-alternating_denseunet3d_anchor1_4xb2-50e_luna16.py')
    assert alt.model.train_cfg.mode == 'alternating'
    ohem = get_config(
        'aggregated3d/rpn3d-ohem-single-scale_denseunet3d_anchor1_4xb2-50e_luna16.py').model
    assert ohem.rpn_head.loss_cls.type == 'OHEMBinaryLoss'
    assert ohem.rpn_head.anchor_generator.sizes == [[4, 6, 8, 12, 16, 24]]
    assert ohem.fprn_head is None
    dl = get_config('aggregated3d/aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d.py')
    assert dl.model.rpn_head.anchor_generator.sizes[2] == [22., 30., 40.]
    assert dl.train_dataloader.dataset.pipeline[1].crop_size == (64, 128,
                                                                 128)
    a2 = get_config(
        'aggregated3d/rpn3d-focal_denseunet3d_anchor2_4xb2-50e_luna16.py').model
    assert a2.rpn_head.anchor_generator.sizes == [[5, 10], [15, 20],
                                                  [25, 35]]


def test_demo_model_forward():
    cfg = get_config(
        'aggregated3d/demo/aggregated3d_denseunet3d-tiny_luna16-demo.py')
    model = MODELS.build(cfg.model)
    losses = model.loss(torch.randn(1, 1, 64, 64, 64), [
        volume_sample((64, 64, 64), [[20., 20., 20., 28., 28., 28.]])
    ])
    assert all(torch.isfinite(v) for v in losses.values())
    assert Path(repo_root() / 'configs/aggregated3d/README.md').is_file()


RPN_STAGE = 'rpn3d-focal_denseunet3d_anchor1_4xb2-50e_luna16'
TABLE3_ROWS = [  # (config, crop, DA, Magnify, mode) as in Table III
    ('aggregated3d-wo-magnify_denseunet3d_anchor1_4xb2-50e_luna16-crop96.py', 96,
     True, False, 'joint'),
    ('aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16-crop96.py', 96, True,
     True, 'joint'),
    ('aggregated3d-alternating_denseunet3d_anchor1_4xb2-50e_luna16.py', 96, True,
     True, 'alternating'),
    ('aggregated3d-wo-magnify_denseunet3d_anchor1_4xb2-50e_luna16.py', 128, True,
     False, 'joint'),
    ('aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py', 128, True, True,
     'joint'),
    ('aggregated3d-wo-da_denseunet3d_anchor1_4xb2-50e_luna16.py', 128, False,
     False, 'joint'),
]


@pytest.mark.parametrize('name, crop, da, magnify, mode', TABLE3_ROWS)
def test_table3_rows_start_from_the_rpn_stage(name, crop, da, magnify, mode):
    """Sec. III-E: each Table III row is a second stage that loads the RPN
    stage of its fold (FPRN keys may be missing, nothing else)."""
    from mmlesion.utils import apply_cv_fold
    cfg = get_config(f'aggregated3d/{name}')
    assert cfg.load_from == f'work_dirs/{RPN_STAGE}_fold0/epoch_50.pth'
    assert cfg.load_from_allowed_missing == ['fprn_head.']
    head = cfg.model.fprn_head
    assert (head.use_diameter_alignment, head.use_magnify) == (da, magnify)
    assert cfg.model.train_cfg.mode == mode
    assert _datasets_crop(cfg) == crop == cfg.model.test_cfg.window_size
    # the RPN stage is the same model without the FPRN: its checkpoint fits
    stage = get_config(f'aggregated3d/{RPN_STAGE}.py')
    assert stage.model.fprn_head is None and stage.load_from is None
    assert stage.max_epochs == 50
    for key in ('backbone', 'rpn_head'):
        assert stage.model[key] == cfg.model[key], key
    apply_cv_fold(cfg, 3)
    assert cfg.load_from == f'work_dirs/{RPN_STAGE}_fold3/epoch_50.pth'


def _datasets_crop(cfg):
    ds = dict(_datasets(cfg))['train_dataloader']
    return next(t['crop_size'] for t in ds['pipeline']
                if 'crop_size' in t)


def test_stage_one_and_abs_configs_load_everything():
    for name in (RPN_STAGE + '.py',
                 'rpn3d-focal_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d.py',
                 'aggregated3d-rpn-first_denseunet3d_anchor1_4xb2-50e_luna16.py'):
        cfg = get_config(f'aggregated3d/{name}')
        assert cfg.load_from is None
        assert not cfg.get('load_from_allowed_missing')
    for name in CONFIGS:
        if '-abs_' in name:
            assert not get_config(f'aggregated3d/{name}').get(
                'load_from_allowed_missing'), name
    dl = get_config('aggregated3d/aggregated3d_denseunet3d_deeplesion-anchors_4xb2-50e_deeplesion3d.py')
    assert dl.load_from == ('work_dirs/rpn3d-focal_denseunet3d_deeplesion-'
                            'anchors_4xb2-50e_deeplesion3d/epoch_50.pth')


def test_luna16_pipelines_crop_lungs_and_augment():
    """Sec. IV-A lung crop in both pipelines of every LUNA16 row; training
    augmentation and several crops per scan (the paper is silent)."""
    for name in CONFIGS:
        if not name.endswith('_luna16.py') and 'luna16-crop' not in name:
            continue
        cfg = get_config(f'aggregated3d/{name}')
        train = cfg.train_dataloader.dataset
        types = [t.type for t in train.pipeline]
        assert types[:2] == ['LoadCTVolume', 'CropToLungs'], name
        assert types.index('Compose') == 3, name  # after the random crop
        aug = [t.type for t in train.pipeline[3].transforms]
        assert aug == ['RandomFlip3D', 'RandomRot90Axial', 'RandomZoom3D']
        assert train.crops_per_scan == 6, name
        test = [t.type for t in cfg.test_dataloader.dataset.pipeline]
        assert test[:2] == ['LoadCTVolume', 'CropToLungs'], name
        assert cfg.test_dataloader.dataset.pipeline[1].mask_dir.endswith(
            'seg-lungs-LUNA16/')


#: the variant that reads Sec. IV-F's threshold on the mean score
MEAN_THR = 'aggregated3d-mean-thr_denseunet3d_anchor1_4xb2-50e_luna16.py'
PAPER_3DAG = 'aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py'


@pytest.mark.parametrize(
    'name', [n for n in CONFIGS if 'demo' not in n and n != MEAN_THR])
def test_paper_rows_use_the_papers_score_threshold(name):
    """Sec. IV-F: "We set the probability threshold to be 0.269
    (Sigmoid(-1))": every paper row tests with it, on the RPN score (a
    logit cut at -1; README "Choices the paper leaves open"); the mean of
    both branches is not cut again."""
    test_cfg = get_config(f'aggregated3d/{name}').model.test_cfg
    assert test_cfg.rpn.score_thr == 0.269
    assert test_cfg.score_thr == 0.0


def test_mean_threshold_variant_differs_only_in_the_threshold():
    """The other reading of Sec. IV-F, a named variant of the 3D-AG row:
    0.269 on the mean of the RPN and FPRN scores, none on the RPN's."""
    row = get_config(f'aggregated3d/{PAPER_3DAG}')
    variant = get_config(f'aggregated3d/{MEAN_THR}')
    assert variant.model.test_cfg.rpn.score_thr == 0.0
    assert variant.model.test_cfg.score_thr == 0.269
    variant.model.test_cfg.rpn.score_thr = row.model.test_cfg.rpn.score_thr
    variant.model.test_cfg.score_thr = row.model.test_cfg.score_thr
    assert variant.to_dict() == row.to_dict()


def _threshold_model(name):
    """The tiny model with the test thresholds of config ``name``; the RPN
    and FPRN outputs are replaced by two proposals of known scores."""
    from tests.helpers.aggregated3d import tiny_aggregated3d_cfg
    row = get_config(f'aggregated3d/{name}').model.test_cfg
    cfg = tiny_aggregated3d_cfg(window_size=32)
    cfg.test_cfg.rpn.score_thr = row.rpn.score_thr
    cfg.test_cfg.score_thr = row.score_thr
    model = MODELS.build(cfg).eval()
    real_rpn = model.rpn_head.forward

    def rpn(feats):
        cls_scores, bbox_preds = real_rpn(feats)
        # every anchor at probability 0 except two far apart on level 0:
        # A (RPN 0.30, FPRN 0.10: mean 0.20), B (RPN 0.20, FPRN 0.90:
        # mean 0.55); zero deltas, so each box is its anchor
        cls_scores = [torch.full_like(c, -1e4) for c in cls_scores]
        cls_scores[0][0, 2, 2, 2, 0] = torch.logit(torch.tensor(0.3))
        cls_scores[0][0, 5, 5, 5, 0] = torch.logit(torch.tensor(0.2))
        return cls_scores, [torch.zeros_like(p) for p in bbox_preds]

    def fprn(feats, rois, levels):
        # rois: [batch, x1, y1, z1, x2, y2, z2]; A lies at x < 16, B beyond
        return torch.where(rois[:, 1] < 16, torch.logit(torch.tensor(0.1)),
                           torch.logit(torch.tensor(0.9)))

    model.rpn_head.forward = rpn
    model.fprn_head.forward = fprn
    return model


def test_paper_threshold_applies_to_the_rpn_score():
    """Through the model's predict code: the 3D-AG row drops B at the RPN
    (0.20 < 0.269) before the FPRN, and keeps A although its mean score
    0.20 is below 0.269; the mean-score variant does the opposite."""
    volume = torch.zeros(1, 32, 32, 32)
    with torch.no_grad():
        paper = _threshold_model(PAPER_3DAG).predict_volume(volume)
        mean = _threshold_model(MEAN_THR).predict_volume(volume)
    assert paper.rpn_scores.tolist() == pytest.approx([0.3])
    assert paper.fprn_scores.tolist() == pytest.approx([0.1])
    assert paper.scores.tolist() == pytest.approx([0.2])
    assert mean.rpn_scores.tolist() == pytest.approx([0.2])
    assert mean.scores.tolist() == pytest.approx([0.55])


def test_demo_rows_keep_every_candidate():
    cfg = get_config('aggregated3d/demo/aggregated3d_denseunet3d-tiny_'
                     'luna16-demo.py')
    assert cfg.model.test_cfg.score_thr == 0.0
    assert cfg.model.test_cfg.rpn.score_thr == 0.0


RESCUE = {  # low-quality rescue variant -> the paper row it varies
    'rpn3d-focal-lowq-rescue_denseunet3d_anchor1_4xb2-50e_luna16.py':
    RPN_STAGE + '.py',
    'aggregated3d-lowq-rescue_denseunet3d_anchor1_4xb2-50e_luna16.py':
    'aggregated3d_denseunet3d_anchor1_4xb2-50e_luna16.py',
}


@pytest.mark.parametrize(
    'name', [n for n in CONFIGS if 'demo' not in n and n not in RESCUE])
def test_rows_use_the_papers_rpn_labelling(name):
    """Sec. IV-B: "IoU_+ = 0.5 and IoU_- = 0.02 ... larger than IoU_+,
    smaller than IoU_- and in between will be assigned as positive,
    negative and ignored": no best-anchor rescue below IoU_+."""
    assigner = get_config(f'aggregated3d/{name}').model.train_cfg.rpn.assigner
    assert assigner.type == 'IgnoreRegionMaxIoUAssigner'
    assert assigner.pos_iou_thr == 0.5
    assert assigner.neg_iou_thr == 0.02
    assert not assigner.match_low_quality
    assert assigner.min_pos_iou >= 0.5


@pytest.mark.parametrize('name, row', sorted(RESCUE.items()))
def test_lowq_rescue_variants_differ_only_in_the_rescue(name, row):
    """The named variants make each nodule's best anchor positive at any
    IoU (mmdet's low-quality matching); the rest of the model is the paper
    row's, and the 3D-AG variant starts from the rescued RPN stage."""
    import copy
    cfg = get_config(f'aggregated3d/{name}')
    ref = get_config(f'aggregated3d/{row}')
    got = cfg.model.train_cfg.rpn.assigner
    assert got.match_low_quality and got.min_pos_iou == 0.0
    assert (got.pos_iou_thr, got.neg_iou_thr) == (0.5, 0.02)
    model = copy.deepcopy(cfg.model.to_dict())
    model['train_cfg']['rpn']['assigner'].update(
        min_pos_iou=ref.model.train_cfg.rpn.assigner.min_pos_iou,
        match_low_quality=False)
    assert model == ref.model.to_dict()
    assert cfg.optim_wrapper == ref.optim_wrapper
    assert cfg.train_dataloader == ref.train_dataloader
    if ref.load_from is None:
        assert cfg.load_from is None
    else:
        stage = Path(name.replace('aggregated3d-', 'rpn3d-focal-')).stem
        assert cfg.load_from == f'work_dirs/{stage}_fold0/epoch_50.pth'
        assert stage + '.py' in RESCUE
        assert cfg.load_from_allowed_missing == ['fprn_head.']
