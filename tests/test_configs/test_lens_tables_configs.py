# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS Tables II-IV: each row's config is Table I row (a) or (d) (or the row
before it in Table III) with exactly the change its paper row names, and
nothing else (schedule, test settings, test data and the other datasets
as the reference row's)."""
import copy
import functools
from typing import Dict, List

import pytest
from mmengine.config import Config

from mmlesion.testing import get_config

FULL = 'densenet121-2.5d_fpn_1xb4-radam-8e'
MULTI = f'{FULL}_deeplesion-luna16-lits-nihln-9slice'
ONE = f'{FULL}_deeplesion-9slice'
A = f'lens-afp_{ONE}'
C = f'lens-afp-multi-fusion_{MULTI}'
D = f'lens-afp-multi-fusion-mining_{MULTI}'
MULAN = f'mulan_{ONE}'


@functools.lru_cache(maxsize=None)
def _load(stem: str) -> Config:
    return get_config(f'lens/{stem}.py')


def _dict(stem: str) -> dict:
    return copy.deepcopy(_load(stem).to_dict())


def _flat(node, prefix: str = '') -> Dict[str, object]:
    """Dotted key -> leaf value (lists of scalars are leaves)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            out.update(_flat(v, f'{prefix}.{k}' if prefix else str(k)))
        return out
    if isinstance(node, (list, tuple)) and any(
            isinstance(v, (dict, list, tuple)) for v in node):
        out = {}
        for i, v in enumerate(node):
            out.update(_flat(v, f'{prefix}.{i}'))
        return out
    return {prefix: node}


def _changed(a: dict, b: dict) -> List[str]:
    """The dotted keys whose values differ (or exist in one only)."""
    fa, fb = _flat(a), _flat(b)
    return sorted(k for k in set(fa) | set(fb)
                  if fa.get(k, '<absent>') != fb.get(k, '<absent>'))


def _without(cfg: dict, *keys: str) -> dict:
    """``cfg`` without the top-level ``keys``."""
    return {k: v for k, v in cfg.items() if k not in keys}


def _same_dataset(a: dict, b: dict) -> bool:
    """Equal but for ``test_mode=False`` written out (its default)."""
    a, b = dict(a), dict(b)
    for d in (a, b):
        if d.get('test_mode') is False:
            del d['test_mode']
    return a == b


@pytest.mark.parametrize('head', ['rpn', 'centernet', 'fcos'])
def test_table2_two_stage_rows_change_the_proposal_network_only(head):
    """Table II: "The AFP in LENS (row (d) in Table I) was replaced with
    other parts unchanged": only the proposal network (and the FPN
    returning its finest level alone, the one map (d) reads) differs."""
    row, d = _dict(f'lens-{head}-multi-fusion-mining_{MULTI}'), _dict(D)
    changed = _changed(d, row)
    allowed = ('model.neck.type', 'model.neck.out_indices', 'model.rpn_head.',
               'model.train_cfg.rpn')
    assert [k for k in changed if not k.startswith(allowed)] == []
    assert row['model']['neck']['type'] == 'LevelSelectFPN'
    assert row['model']['neck']['out_indices'] == (0, )
    assert row['model']['rpn_head']['in_channels'] == 256
    if head == 'rpn':  # the Table I baseline's RPN, anchors and sampling
        mulan = _dict(MULAN)['model']
        assert row['model']['rpn_head'] == mulan['rpn_head']
        assert row['model']['train_cfg']['rpn'] == mulan['train_cfg']['rpn']
    else:
        assert row['model']['train_cfg']['rpn'] is None
    if head == 'fcos':  # one level, every box size
        assert row['model']['rpn_head']['strides'] == [4]
        assert row['model']['rpn_head']['regress_ranges'] == ((-1, 1e8), )


def test_table2_one_stage_fcos_removes_the_detection_head_only():
    """FCOS, one stage: the two-stage FCOS row without LENS's detection
    head; the FCOS heads detect with the test settings of the head they
    replace."""
    one = _dict(f'lens-fcos-onestage-multi-fusion-mining_{MULTI}')
    two = _dict(f'lens-fcos-multi-fusion-mining_{MULTI}')
    assert _without(one, 'model') == _without(two, 'model')
    m1, m2 = one['model'], two['model']
    assert m1['type'] == 'LENSOneStage'
    for key in ('backbone', 'neck', 'data_preprocessor', 'num_datasets',
                'dataset_names'):
        assert m1[key] == m2[key], key
    assert m1['bbox_head'] == m2['rpn_head']
    assert 'roi_head' not in m1 and 'rpn_head' not in m1
    test, d = m1['test_cfg'], _dict(D)['model']['test_cfg']
    for key in ('score_thr', 'nms', 'max_per_img'):
        assert test[key] == d['rcnn'][key], key
    assert test['nms_pre'] == d['rpn']['nms_pre']
    assert test['expert_fusion'] == d['expert_fusion']


#: Table III, in order: each row adds one step to the one before
TABLE3 = [A, f'lens-afp-mining-propagation_{ONE}',
          f'lens-afp-mining-propagation-intrapatient_{ONE}',
          f'lens-afp-mining-lesion-slices_{ONE}', f'lens-afp-mining_{ONE}']
#: what each row changes in its DeepLesion dataset against the row before
TABLE3_STEPS = [
    dict(type='DeepLesionMinedDataset',
         mined_ann_file='lens_mined_propagation.json', use_negatives=False),
    dict(mined_ann_file='lens_mined_propagation_intrapatient.json'),
    dict(mined_ann_file='lens_mined.json'),
    dict(use_negatives=True),
]


@pytest.mark.parametrize('step', range(4))
def test_table3_rows_add_one_step(step):
    """Table III ("we trained LENS on DeepLesion alone"): row (a)'s model
    and schedule; each row changes its DeepLesion set as its step says."""
    before, after = _dict(TABLE3[step]), _dict(TABLE3[step + 1])
    assert after['model'] == _dict(A)['model']
    drop = ('train_dataloader', 'deeplesion_mined_train')
    assert _without(after, *drop) == _without(before, *drop)
    (b, ), (a, ) = (before['train_dataloader']['dataset']['datasets'],
                    after['train_dataloader']['dataset']['datasets'])
    assert _same_dataset(dict(b, **TABLE3_STEPS[step]), a)


def test_table3_unlabeled_is_row_d_deeplesion_set():
    """"+ Unlabeled" trains on row (d)'s DeepLesion set (the same mining,
    every processed slice), only without the other datasets."""
    last = _dict(TABLE3[-1])['train_dataloader']['dataset']['datasets'][0]
    d = _dict(D)['train_dataloader']['dataset']['datasets'][0]
    assert last == dict(d, use_negatives=True)  # (d): the default, True


def _four_sets() -> List[dict]:
    return _dict(C)['train_dataloader']['dataset']['datasets']


def test_table4_pooling_is_row_a_on_the_pooled_sets():
    """Data pooling: row (a)'s model, the four sets of row (c) as one LENS
    dataset; positive data pooling leaves the single-type sets' negative
    slices out, nothing else."""
    a, pooled = _dict(A), _dict(f'lens-afp-pooled_{MULTI}')
    positive = _dict(f'lens-afp-pooled-positive_{MULTI}')
    assert dict(pooled['model'], dataset_names=['deeplesion']) == a['model']
    assert pooled['model']['dataset_names'] == ['pooled']
    for cfg in (pooled, positive):
        train = cfg['train_dataloader']
        assert _without(train, 'dataset') == _without(
            a['train_dataloader'], 'dataset')
        assert train['dataset']['dataset_names'] == ['pooled']
        assert train['dataset']['dataset_ids'] == [0, 0, 0, 0]
        assert _without(cfg, 'model', 'train_dataloader') == _without(
            a, 'model', 'train_dataloader')
    assert pooled['train_dataloader']['dataset']['datasets'] == _four_sets()
    sets = positive['train_dataloader']['dataset']['datasets']
    assert sets[0] == _four_sets()[0]
    for have, want in zip(sets[1:], _four_sets()[1:]):
        assert _same_dataset(have, dict(want, use_negatives=False))


def test_table4_separate_models_are_row_a_per_dataset():
    """Separate models: row (a)'s model, one per dataset of row (c),
    fused as LENS fuses its experts; schedule and test data as (a)."""
    a, sep = _dict(A), _dict(f'lens-afp-separate_{MULTI}')
    model = sep['model']
    assert model['type'] == 'LENSSeparateModels'
    assert model['detector'] == a['model']
    assert model['data_preprocessor'] == a['model']['data_preprocessor']
    assert model['test_cfg']['expert_fusion'] == a['model']['test_cfg'][
        'expert_fusion']
    assert model['dataset_names'] == ['deeplesion', 'luna16', 'lits',
                                      'nih_ln']
    train = sep['train_dataloader']['dataset']
    assert train['datasets'] == _four_sets()
    assert train['dataset_names'] == model['dataset_names']
    assert _without(sep, 'model', 'train_dataloader') == _without(
        a, 'model', 'train_dataloader')


def test_table4_ignored_as_gt_changes_the_uncertain_lesions_only():
    """Ignored as GT: row (d) with its uncertain lesions as ground truth."""
    d = _dict(D)
    row = _dict(f'lens-afp-multi-fusion-mining-uncertain-gt_{MULTI}')
    assert _changed(d, row) == [
        'deeplesion_mined_train.uncertain_as_gt',
        'train_dataloader.dataset.datasets.0.uncertain_as_gt']
    assert row['deeplesion_mined_train']['uncertain_as_gt'] is True
