# Copyright (c) mmlesion contributors. All rights reserved.
"""Every config of configs/retinanet_lesion builds; Table 1 rows differ as
the paper's ablation says (Improved RetinaNet, Sec. 2-3, Table 1)."""
import copy
import math
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS, TASK_UTILS, TRANSFORMS
from mmdet.testing import demo_mm_inputs
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

import mmlesion  # noqa: F401
from mmlesion.testing import get_config, repo_root

init_default_scope('mmdet')

CONFIG_DIR = 'retinanet_lesion'
FULL_ROWS = [
    'retinanet_r50_fpn_adam-plateau_deeplesion.py',
    'retinanet-optanchors_r50_fpn_adam-plateau_deeplesion.py',
    'improved-retinanet_r50_densefpn_adam-plateau_deeplesion.py',
    'improved-retinanet_r50_densefpn-ag_adam-plateau_deeplesion.py',
]
DEMO_ROWS = [
    'retinanet_r18-tiny_fpn_1x_demo_deeplesion.py',
    'retinanet-optanchors_r18-tiny_fpn_1x_demo_deeplesion.py',
    'improved-retinanet_r18-tiny_densefpn_1x_demo_deeplesion.py',
    'improved-retinanet_r18-tiny_densefpn-ag_1x_demo_deeplesion.py',
]
VGG_FULL = 'improved-retinanet_vgg19_densefpn-ag_adam-plateau_deeplesion.py'
ALL_CONFIGS = sorted(
    p.name for p in (repo_root() / 'configs' / CONFIG_DIR).glob('*.py'))
PAPER_RATIOS = [1 / 3.27, 1 / 1.78, 1.0, 1.78, 3.27]
PAPER_SCALES = [0.425, 0.540, 0.680]

_CFG_CACHE = {}


def _cfg(name):
    if name not in _CFG_CACHE:
        _CFG_CACHE[name] = get_config(f'{CONFIG_DIR}/{name}')
    return copy.deepcopy(_CFG_CACHE[name])


def test_config_list_is_complete():
    assert sorted(FULL_ROWS + DEMO_ROWS + [VGG_FULL]) == ALL_CONFIGS


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_config_builds(name):
    cfg = _cfg(name)
    assert 'mmlesion' in cfg.custom_imports['imports']
    assert cfg.default_scope == 'mmdet'
    parts = Path(name).stem.split('_')
    assert len(parts) >= 5, 'name must be {algo}_{backbone}_{neck}_' \
        '{schedule}_{data}'
    prep = cfg.model.data_preprocessor
    assert prep.mean == [0.] * 3 and prep.std == [1.] * 3
    assert prep.bgr_to_rgb is False
    assert cfg.model.bbox_head.num_classes == 1
    if name in DEMO_ROWS:
        assert cfg.model.backbone.init_cfg is None
        model = MODELS.build(cfg.model)
    else:
        assert cfg.model.backbone.init_cfg.type == 'Pretrained'
        with torch.device('meta'):  # full size: shapes only, no memory
            model = MODELS.build(cfg.model)
        model.eval()
        outs = model._forward(torch.empty(1, 3, 512, 512, device='meta'))
        first_stride = cfg.model.bbox_head.anchor_generator.strides[0]
        assert outs[0][0].shape[-1] == 512 // first_stride
        if cfg.model.get('seg_head'):
            assert outs[2].shape == (1, 1, 512, 512)
    assert model.bbox_head.prior_generator.num_levels == 5


@pytest.mark.parametrize('rows', [FULL_ROWS, DEMO_ROWS])
def test_table1_ablation_steps(rows):
    row1, row2, row3, row4 = (_cfg(r) for r in rows)
    # row 1: mmdet RetinaNet defaults, P3-P7, 9 anchors
    assert row1.model.type == 'RetinaNet'
    gen1 = row1.model.bbox_head.anchor_generator
    assert gen1.octave_base_scale == 4 and gen1.ratios == [0.5, 1.0, 2.0]
    assert gen1.strides == [8, 16, 32, 64, 128]
    # row 2: + the paper's anchors, still P3-P7
    assert row2.model.type == 'RetinaNet'
    gen2 = row2.model.bbox_head.anchor_generator
    assert gen2.strides == [8, 16, 32, 64, 128]
    assert gen2.base_sizes == [32, 64, 128, 256, 512]
    assert gen2.ratios == pytest.approx(PAPER_RATIOS)
    assert gen2.scales == pytest.approx(PAPER_SCALES)
    anchors = TASK_UTILS.build(gen2).base_anchors[0]
    widths = anchors[:, 2] - anchors[:, 0]
    assert float(widths.min()) == pytest.approx(
        32 * 0.425 / math.sqrt(3.27), rel=1e-4)
    # row 3: + dense supervision on P2-P6, no gates
    assert row3.model.type == 'ImprovedRetinaNet'
    gen3 = row3.model.bbox_head.anchor_generator
    assert gen3.strides == [4, 8, 16, 32, 64]
    assert gen3.base_sizes == gen2.base_sizes
    assert gen3.ratios == gen2.ratios and gen3.scales == gen2.scales
    assert row3.model.neck.type == 'DenseFPN'
    assert row3.model.neck.attention_gates is False
    assert row3.model.seg_head.type == 'LesionSegHead'
    assert row3.model.seg_head.loss_seg.type == 'FocalLoss'
    assert row3.model.score_calibration is not None
    # row 4: + attention gates, nothing else changes in the model
    assert row4.model.neck.attention_gates is True
    row4.model.neck.attention_gates = False
    assert row4.model == row3.model
    # the rows train on the same schedule
    for other in (row2, row3, row4):
        assert other.train_cfg == row1.train_cfg
        assert other.optim_wrapper == row1.optim_wrapper
        assert other.param_scheduler == row1.param_scheduler


def test_paper_schedule_and_augmentation():
    cfg = _cfg(FULL_ROWS[3])
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    plateau = cfg.param_scheduler[0]
    assert plateau.type == 'ReduceOnPlateauLR' and plateau.factor == 0.1
    assert plateau.patience == 2
    stop = cfg.custom_hooks[0]
    assert stop.type == 'EarlyStoppingHook' and stop.patience == 4
    assert stop.monitor == plateau.monitor == 'froc/coco_bbox_mAP'
    assert cfg.val_evaluator.with_coco_map is True
    assert cfg.train_dataloader.batch_size == 4
    for name in FULL_ROWS + DEMO_ROWS:
        pipeline = _cfg(name).train_dataloader.dataset.pipeline
        types = [t['type'] for t in pipeline]
        window = pipeline[types.index('WindowHU')]
        assert tuple(window['window']) == (-1024., 1050.)
        assert tuple(window['out_range']) == (-1., 1.)
        load = pipeline[types.index('LoadDeepLesionSlices')]
        assert load['num_slices'] == 3 and load['interval_mm'] == 2.0
        flips = [t['direction'] for t in pipeline if t['type'] == 'RandomFlip']
        assert sorted(flips) == ['horizontal', 'vertical']
        affine = pipeline[types.index('MultiSliceRandomAffine')]
        assert affine['max_rotate_degree'] == pytest.approx(
            math.degrees(0.1), abs=0.01)
        assert affine['max_shear_degree'] == pytest.approx(
            math.degrees(0.1), abs=0.01)
        assert affine['max_translate_ratio'] == 0.1
        assert tuple(affine['scaling_ratio_range']) == (0.9, 1.1)
        dense = _cfg(name).model.get('seg_head') is not None
        assert ('RecistToMask' in types) == dense
        if dense:  # masks made before any geometric transform
            assert types.index('RecistToMask') < types.index('Resize')
            assert types.index('LoadRecistPoints') < types.index(
                'RecistToMask')


@pytest.mark.parametrize('name', FULL_ROWS + DEMO_ROWS + [VGG_FULL])
def test_pipelines_build(name):
    cfg = _cfg(name)
    pipelines = [
        cfg.train_dataloader.dataset.pipeline,
        cfg.test_dataloader.dataset.pipeline
    ]
    missing = sorted({
        t['type']
        for p in pipelines
        for t in p if TRANSFORMS.get(t['type']) is None
    })
    if missing:
        pytest.skip(f'transforms {missing} are not registered in mmlesion '
                    'yet (RecistToMask is the GrabCut teammate\'s)')
    for pipeline in pipelines:
        Compose(pipeline)


@pytest.mark.parametrize('name', DEMO_ROWS)
def test_demo_rows_train_step_and_predict(name):
    cfg = _cfg(name)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    packed = demo_mm_inputs(
        2, [(3, 64, 64), (3, 64, 48)],
        num_items=[1, 2],
        num_classes=2,
        with_mask=True)
    for sample in packed['data_samples']:
        sample.gt_instances.labels *= 0
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    expected = {'loss_cls', 'loss_bbox'}
    if cfg.model.get('seg_head'):
        expected.add('loss_seg')
    assert set(losses) == expected
    total = sum(sum(v) if isinstance(v, list) else v for v in losses.values())
    total.backward()
    model.eval()
    with torch.no_grad():
        out = model(**model.data_preprocessor(packed, False), mode='predict')
    assert len(out) == 2 and all('pred_instances' in o for o in out)


def test_dense_demo_row_on_real_key_slices():
    """Real pipeline (GrabCut masks, flips, affine) into the full demo model:
    masks stay aligned with their boxes and every loss is finite."""
    import numpy as np
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    from mmlesion.testing import shared_data_root
    data = shared_data_root()
    if data is None or not (data / 'deeplesion' / 'annotations').is_dir():
        pytest.skip('../shared/data/deeplesion (real DeepLesion key slices) '
                    'is absent')
    if TRANSFORMS.get('RecistToMask') is None:
        pytest.skip('RecistToMask (GrabCut teammate) is not registered yet')
    cfg = _cfg(DEMO_ROWS[3])
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.update(
        data_root=str(data / 'deeplesion'),
        ann_file='annotations/DL_info_val.csv',
        split='val',
        skip_missing_key_slices=True,
        indices=2)
    dataset = DATASETS.build(dataset_cfg)
    items = [dataset[i] for i in range(len(dataset))]
    for item in items:
        gt = item['data_samples'].gt_instances
        assert item['inputs'].shape[0] == 3
        assert len(gt.masks) == len(gt.bboxes) > 0
        for mask, box in zip(gt.masks.masks, gt.bboxes.tensor):
            ys, xs = np.nonzero(mask)
            assert len(xs) > 0
            x1, y1, x2, y2 = box.tolist()
            assert xs.min() >= x1 - 2 and xs.max() + 1 <= x2 + 2
            assert ys.min() >= y1 - 2 and ys.max() + 1 <= y2 + 2
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    data_batch = model.data_preprocessor(pseudo_collate(items), True)
    losses = model(**data_batch, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_seg'}
    for value in losses.values():
        value = sum(value) if isinstance(value, list) else value
        assert torch.isfinite(value.detach())
