# Copyright (c) mmlesion contributors. All rights reserved.
"""Tests of the LENS detector (Sec. IV-C): dataset-specific updates, proposal
and expert fusion, expert outputs and embeddings."""
import copy
import functools

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import mmlesion  # noqa: F401
from mmlesion.methods.lens.models.lens import fuse_instances
from mmlesion.testing import get_config

CFG = 'lens/demo/lens-afp-multi-fusion_densenet-tiny_fpn_radam-12e_deeplesion-demo-2sets.py'


@functools.lru_cache(maxsize=None)
def _cfg():
    return get_config(CFG)


def _model():
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(copy.deepcopy(_cfg().model))
    model.init_weights()
    return model


def _batch(dataset_ids, size=64):
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for i, d in enumerate(dataset_ids):
        inputs.append(torch.rand(9, size, size, generator=gen) * 2 - 1)
        s = DetDataSample(metainfo=dict(
            img_id=i, img_shape=(size, size), ori_shape=(size, size),
            scale_factor=(1., 1.), pad_shape=(size, size), dataset_id=d))
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[10., 12., 30., 34.]]),
            labels=torch.zeros(1, dtype=torch.long))
        s.ignored_instances = InstanceData(
            bboxes=torch.tensor([[40., 40., 56., 56.]]),
            labels=torch.zeros(1, dtype=torch.long))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def _expert_params(model, d):
    head = model.roi_head.bbox_head
    return (list(model.rpn_heads[d].parameters()) +
            list(head.fc_cls.experts[d].parameters()) +
            list(head.fc_reg.experts[d].parameters()))


def test_batch_of_dataset0_leaves_dataset1_untouched():
    model = _model()
    model.train()
    optim = build_optim_wrapper(model, copy.deepcopy(_cfg().optim_wrapper))
    assert type(optim.optimizer).__name__ == 'RAdam'
    before = [p.detach().clone() for p in _expert_params(model, 1)]
    before0 = [p.detach().clone() for p in _expert_params(model, 0)]
    batch = model.data_preprocessor(_batch([0, 0]), True)
    losses = model(**batch, mode='loss')
    assert {'loss_afp_centerness', 'loss_afp_size', 'loss_cls',
            'loss_bbox'} <= set(losses)
    total, _ = model.parse_losses(losses)
    optim.backward(total)
    for p in _expert_params(model, 1):
        assert p.grad is None
    assert model.roi_head.bbox_head.shared_fcs[0].weight.grad is not None
    assert all(p.grad is not None for p in _expert_params(model, 0))
    optim.step()
    for p, q in zip(_expert_params(model, 1), before):
        torch.testing.assert_close(p.detach(), q)
    # dataset 0's own layers and the shared layers did learn
    assert any(not torch.equal(p.detach(), q)
               for p, q in zip(_expert_params(model, 0), before0))


def test_mixed_or_missing_dataset_ids_are_refused():
    model = _model()
    model.train()
    with pytest.raises(ValueError, match='one dataset'):
        model(**model.data_preprocessor(_batch([0, 1]), True), mode='loss')
    data = _batch([0])
    data['data_samples'][0] = DetDataSample(metainfo=dict(
        img_id=0, img_shape=(64, 64), pad_shape=(64, 64)))
    data['data_samples'][0].gt_instances = InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    with pytest.raises(KeyError, match='dataset_id'):
        model(**model.data_preprocessor(data, True), mode='loss')


def test_predict_fuses_selected_experts():
    model = _model()
    model.eval()
    data = model.data_preprocessor(_batch([0, 0]), False)
    with torch.no_grad():
        per_expert = model.predict_experts(
            data['inputs'], data['data_samples'], with_embeddings=True)
        assert len(per_expert) == 2 and len(per_expert[0]) == 2
        for e, res in enumerate(per_expert):
            for r in res:
                assert (r.expert_ids == e).all()
                if len(r):
                    torch.testing.assert_close(
                        r.embeddings.norm(dim=1), torch.ones(len(r)))
        model.test_cfg.expert_fusion = dict(experts=[1], max_per_img=5)
        out = model(**data, mode='predict')
        pred = out[0].pred_instances
        assert len(pred) <= 5 and (pred.expert_ids == 1).all()
        model.test_cfg.expert_fusion = dict(experts=None, max_per_img=50)
        out = model(**data, mode='predict')
        assert set(out[0].pred_instances.expert_ids.tolist()) <= {0, 1}
        model.test_cfg.expert_fusion = dict(experts=[2])
        with pytest.raises(ValueError, match='expert 2'):
            model(**data, mode='predict')


def test_fuse_instances_pools_and_suppresses():
    a = InstanceData(bboxes=torch.tensor([[0., 0., 10., 10.],
                                          [50., 50., 60., 60.]]),
                     scores=torch.tensor([0.9, 0.3]),
                     expert_ids=torch.tensor([0, 0]))
    b = InstanceData(bboxes=torch.tensor([[1., 1., 10., 10.],
                                          [20., 20., 30., 30.]]),
                     scores=torch.tensor([0.8, 0.6]),
                     expert_ids=torch.tensor([1, 1]))
    fused = fuse_instances([a, b], dict(type='nms', iou_threshold=0.5), 0)
    assert fused.scores.tolist() == pytest.approx([0.9, 0.6, 0.3])
    assert fused.expert_ids.tolist() == [0, 1, 0]
    top = fuse_instances([a, b], dict(type='nms', iou_threshold=0.5), 2)
    assert len(top) == 2
