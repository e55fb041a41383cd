# Copyright (c) mmlesion contributors. All rights reserved.
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.runner.checkpoint import load_state_dict

import mmlesion  # noqa: F401  (registers)
from mmlesion.models.roi_heads.bbox_heads import (DEFAULT_ALB_GENOTYPES,
                                                  RTMBBoxHead)


def _cfg(type='RTMBBoxHead', num_classes=8, **kwargs):
    cfg = dict(
        type=type,
        in_channels=16,
        roi_feat_size=7,
        conv_out_channels=16,
        num_classes=num_classes)
    if type == 'RTMBBoxHead':
        cfg.update(rtm_channels=8)
    cfg.update(kwargs)
    return cfg


def _feats(num_rois=(3, 2)):
    torch.manual_seed(0)
    # RoIs differ as wholes (as real proposals do), not only pixel by pixel
    num = sum(num_rois)
    return torch.randn(num, 16, 7, 7) + 2 * torch.randn(num, 16, 1, 1)


def test_multi_type_output_shapes():
    head = MODELS.build(_cfg())
    assert isinstance(head, RTMBBoxHead)
    head.init_weights()
    assert head.fc_cls.in_features == 64 + 8  # [f, f_E]
    cls_score, bbox_pred = head(_feats(), num_rois=[3, 2])
    assert cls_score.shape == (5, 9)  # 8 lesion types + background
    assert bbox_pred.shape == (5, 32)
    assert not head.rtm.binary_cls.weight.requires_grad
    # the live graphs were consumed: no non-leaf tensor stays on the module
    assert all(op.live_adjacency is None for op in head.graph_ops)
    copy.deepcopy(head)


def test_rtm_uses_alb_graph():
    head = MODELS.build(_cfg()).eval()
    x = _feats()
    cls_score, bbox_pred = head(x, num_rois=[3, 2])
    original = head._live_graphs
    head._live_graphs = lambda: [torch.eye(3), torch.eye(2)]
    try:
        cls_eye, bbox_eye = head(x, num_rois=[3, 2])
    finally:
        head._live_graphs = original
    assert not torch.allclose(cls_score, cls_eye)
    assert not torch.allclose(bbox_pred, bbox_eye)


def test_multi_type_loss_trains_the_graph():
    torch.manual_seed(0)
    head = MODELS.build(_cfg())
    cls_score, _ = head(_feats(), num_rois=[3, 2])
    torch.nn.functional.cross_entropy(cls_score, torch.tensor([0, 8, 3, 8,
                                                               7])).backward()
    phi = head.graph_ops[0].phi.weight
    assert phi.grad is not None and phi.grad.abs().sum() > 0
    assert head.rtm.transform.weight.grad.abs().sum() > 0
    assert head.rtm.binary_cls.weight.grad is None  # frozen


def test_needs_a_nonlocal_op():
    genotypes = copy.deepcopy(DEFAULT_ALB_GENOTYPES)
    genotypes['normal']['ops'][0] = ('sep_conv_3x3', 0)
    with pytest.raises(ValueError, match='non_local'):
        MODELS.build(_cfg(genotypes=genotypes))


def test_loads_binary_classifier_from_single_class_checkpoint():
    pretrained = MODELS.build(_cfg(type='ALBBBoxHead', num_classes=1))
    pretrained.init_weights()
    with torch.no_grad():
        pretrained.fc_cls.weight.normal_()
        pretrained.fc_cls.bias.normal_()
    head = MODELS.build(_cfg())
    fc_cls_before = head.fc_cls.weight.clone()
    state = {'bbox_head.' + k: v for k, v in pretrained.state_dict().items()}
    wrapper = torch.nn.Module()
    wrapper.bbox_head = head
    load_state_dict(wrapper, state, strict=False)
    assert torch.equal(head.rtm.binary_cls.weight, pretrained.fc_cls.weight)
    assert torch.equal(head.rtm.binary_cls.bias, pretrained.fc_cls.bias)
    assert torch.equal(head.fc_cls.weight, fc_cls_before)
    assert torch.equal(head.stem.conv.weight, pretrained.stem.conv.weight)
    # an RTM checkpoint loads as is
    head2 = MODELS.build(_cfg())
    head2.load_state_dict(head.state_dict())
    assert torch.equal(head2.fc_cls.weight, head.fc_cls.weight)
