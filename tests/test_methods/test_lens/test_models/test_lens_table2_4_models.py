# Copyright (c) mmlesion contributors. All rights reserved.
"""The models of LENS Tables II and IV, built from their full-size configs
shrunk to a tiny 2.5D DenseNet: mmdet's RPN, CenterNet and FCOS heads as
LENS's proposal networks, the one-stage FCOS ensemble (LENSOneStage) and the
separate models (LENSSeparateModels). A batch of one dataset trains only
that dataset's parts; the test-time fusion pools the experts."""
import copy
import functools

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope

import mmlesion  # noqa: F401
from mmlesion.testing import get_config
from tests.helpers.lens_ddp import lens_batch

FULL = 'densenet121-2.5d_fpn_1xb4-radam-8e'
MULTI = '_deeplesion-luna16-lits-nihln-9slice.py'
#: the tiny DenseNet of the demo configs, and 32 channels after it
TINY_BACKBONE = dict(growth_rate=8, block_config=(2, 2, 2),
                     num_init_features=16, bn_size=2, init_cfg=None)


def _tiny(model: dict) -> dict:
    """A LENS-like model config with the tiny backbone and 32 channels."""
    model = copy.deepcopy(model)
    model['backbone'].update(TINY_BACKBONE)
    model['neck'].update(in_channels=[32, 32, 32], out_channels=32)
    for key in ('rpn_head', 'bbox_head'):
        if key in model:
            model[key].update(in_channels=32, feat_channels=32)
    if 'roi_head' in model:
        model['roi_head']['bbox_roi_extractor']['out_channels'] = 32
        model['roi_head']['bbox_head'].update(in_channels=32,
                                              fc_out_channels=64)
    return model


@functools.lru_cache(maxsize=None)
def _cfg(name: str) -> Config:
    return get_config(f'lens/{name}')


def _build(model_cfg: dict):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(ConfigDict(model_cfg))
    model.init_weights()
    return model


def _model(name: str):
    cfg = _cfg(name).model.to_dict()
    if cfg['type'] == 'LENSSeparateModels':
        cfg['detector'] = _tiny(cfg['detector'])
        return _build(cfg)
    return _build(_tiny(cfg))


def _step(model, dataset_id: int, seed: int = 0) -> dict:
    data = model.data_preprocessor(lens_batch(dataset_id, seed), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(sum(t.sum() for t in (v if isinstance(v, list) else [v]))
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    model.zero_grad()
    total.backward()
    return losses


def _has_grad(module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0
               for p in module.parameters())


@pytest.mark.parametrize('head', ['rpn', 'centernet', 'fcos'])
def test_proposal_network_trains_its_dataset_only_and_proposes(head):
    """Table II, two stages: dataset 2's batch trains proposal network 2
    (and the shared parts), never another dataset's; at test time the
    four networks' proposals feed the detection head and the four
    experts are fused."""
    model = _model(f'lens-{head}-multi-fusion-mining_{FULL}{MULTI}')
    assert model.num_datasets == 4
    losses = _step(model, 2)
    assert any(k.startswith('loss_afp_') for k in losses)
    assert [_has_grad(h) for h in model.rpn_heads] == [False, False, True,
                                                       False]
    assert _has_grad(model.backbone)
    model.eval()
    data = model.data_preprocessor(lens_batch(0, 1), False)
    with torch.no_grad():
        (res, _) = model.predict(data['inputs'], data['data_samples'])
    pred = res.pred_instances
    assert len(pred) <= 100 and set(pred.expert_ids.tolist()) <= set(
        range(4))
    if len(pred):
        assert (pred.bboxes[:, 2:] >= pred.bboxes[:, :2]).all()


def test_centernet_proposals_follow_the_proposal_config():
    """mmdet's CenterNet head as an RPN: the proposal config's peak count,
    NMS and box count; boxes at the input scale unless asked."""
    model = _model(f'lens-centernet-multi-fusion-mining_{FULL}{MULTI}')
    model.eval()
    data = model.data_preprocessor(lens_batch(0, 1, num_images=1), False)
    metas = [s.metainfo for s in data['data_samples']]
    head = model.rpn_heads[0]
    x = model.extract_feat(data['inputs'])
    cfg = dict(nms_pre=40, min_bbox_size=0, max_per_img=7,
               nms=dict(type='nms', iou_threshold=0.7))
    with torch.no_grad():
        (props, ) = head.predict_by_feat(*head(x), batch_img_metas=metas,
                                         cfg=ConfigDict(cfg))
    assert 0 < len(props) <= 7
    assert (props.scores[:-1] >= props.scores[1:]).all()
    assert ((props.bboxes[:, 2:] - props.bboxes[:, :2]) > 0).all()
    with pytest.raises(ValueError, match='one feature level'):
        head.predict_by_feat(*head(x + x), batch_img_metas=metas,
                             cfg=ConfigDict(cfg))


def test_one_stage_fcos_experts():
    """Table II, "FCOS, one stage": no RoI head; head i is expert i, trained
    by its dataset's batches only; the experts' detections are fused."""
    model = _model(f'lens-fcos-onestage-multi-fusion-mining_{FULL}{MULTI}')
    assert type(model).__name__ == 'LENSOneStage'
    assert not hasattr(model, 'roi_head')
    losses = _step(model, 1)
    assert {'loss_cls', 'loss_bbox', 'loss_centerness'} <= set(losses)
    assert [_has_grad(h) for h in model.bbox_heads] == [False, True, False,
                                                        False]
    model.eval()
    data = model.data_preprocessor(lens_batch(0, 1), False)
    with torch.no_grad():
        experts = model.predict_experts(data['inputs'], data['data_samples'],
                                        experts=[0, 3])
        (res, _) = model.predict(data['inputs'], data['data_samples'])
    assert [set(e[0].expert_ids.tolist()) <= {k}
            for e, k in zip(experts, (0, 3))] == [True, True]
    assert len(res.pred_instances) <= 100
    with pytest.raises(ValueError, match='expert 4 does not exist'):
        model.predict_experts(data['inputs'], data['data_samples'], [4])
    bad = lens_batch(0, 0)
    bad['data_samples'][1].set_metainfo(dict(dataset_id=1))
    with pytest.raises(ValueError, match='one dataset'):
        model.loss(*model.data_preprocessor(bad, True).values())


def test_separate_models_share_nothing():
    """Table IV, "Separate models": one whole one-dataset detector per
    dataset (4x the parameters of one), a batch trains only its dataset's
    member, the members' detections are fused at test time."""
    model = _model(f'lens-afp-separate_{FULL}{MULTI}')
    single = _build(_tiny(
        _cfg(f'lens-afp_{FULL}_deeplesion-9slice.py').model.to_dict()))
    count = sum(p.numel() for p in single.parameters())
    assert sum(p.numel() for p in model.parameters()) == 4 * count
    assert [m.dataset_names for m in model.detectors] == [
        ('deeplesion', ), ('luna16', ), ('lits', ), ('nih_ln', )]
    _step(model, 3)
    assert [_has_grad(m) for m in model.detectors] == [False, False, False,
                                                       True]
    model.eval()
    data = model.data_preprocessor(lens_batch(2, 1), False)
    with torch.no_grad():
        res = model.predict(data['inputs'], data['data_samples'])
    assert all(len(r.pred_instances) <= 100 for r in res)
    assert all(set(r.pred_instances.expert_ids.tolist()) <= set(range(4))
               for r in res)
    with pytest.raises(ValueError, match='one-dataset'):
        _build(dict(type='LENSSeparateModels', dataset_names=['a'],
                    detector=dict(type='LENS', num_datasets=2)))
