# Copyright (c) mmlesion contributors. All rights reserved.
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.runner.checkpoint import load_state_dict

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.elixirnet.models import (DEFAULT_ALB_GENOTYPES,
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


def _train_step_losses(head, labels):
    head.train()
    cls_score, bbox_pred = head(_feats(), num_rois=[3, 2])
    n = labels.numel()
    rois = torch.zeros(n, 5)
    return head.loss(cls_score, bbox_pred, rois, labels, torch.ones(n),
                     torch.zeros(n, 4), torch.zeros(n, 4))


def test_single_class_binary_classifier_is_supervised():
    """Single-class "+RTM" rows: the learnt FC 2-cls (M, Gamma_s) gets its
    own lesion-vs-background loss and gradients from it."""
    torch.manual_seed(0)
    head = MODELS.build(_cfg(num_classes=1, freeze_binary_cls=False))
    head.init_weights()
    labels = torch.tensor([0, 1, 0, 1, 1])  # 1 = background
    losses = _train_step_losses(head, labels)
    assert 'loss_binary_cls' in losses
    loss = losses['loss_binary_cls']
    assert torch.isfinite(loss) and loss > 0
    # At initialisation (std 0.01 classifier) the loss is about ln 2.
    assert abs(float(loss) - 0.693) < 0.05
    head.zero_grad()
    loss.backward()
    grad = head.rtm.binary_cls.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    # The scores were consumed: nothing with a graph stays on the module.
    assert head._binary_score is None
    copy.deepcopy(head)


def test_binary_loss_targets_are_lesion_vs_background():
    """Multi-type labels collapse to lesion (0) vs background (1): a
    classifier that separates them perfectly has ~zero loss."""
    head = MODELS.build(_cfg(num_classes=8, freeze_binary_cls=False))
    labels = torch.tensor([0, 8, 3, 8, 7])
    head.train()
    cls_score, bbox_pred = head(_feats(), num_rois=[3, 2])
    is_bg = (labels == 8).float()
    head._binary_score = torch.stack([(1 - is_bg) * 20, is_bg * 20], dim=1)
    n = labels.numel()
    losses = head.loss(cls_score, bbox_pred, torch.zeros(n, 5), labels,
                       torch.ones(n), torch.zeros(n, 4), torch.zeros(n, 4))
    assert float(losses['loss_binary_cls']) < 1e-6
    head._binary_score = torch.stack([is_bg * 20, (1 - is_bg) * 20], dim=1)
    losses = head.loss(cls_score, bbox_pred, torch.zeros(n, 5), labels,
                       torch.ones(n), torch.zeros(n, 4), torch.zeros(n, 4))
    assert float(losses['loss_binary_cls']) > 10


def test_no_binary_loss_when_frozen_or_disabled():
    labels = torch.tensor([0, 8, 3, 8, 7])
    frozen = MODELS.build(_cfg())  # multi-type fine-tuning: frozen M
    assert 'loss_binary_cls' not in _train_step_losses(frozen, labels)
    off = MODELS.build(_cfg(freeze_binary_cls=False, loss_binary_cls=None))
    assert 'loss_binary_cls' not in _train_step_losses(off, labels)
    off.eval()
    off(_feats(), num_rois=[3, 2])
    assert off._binary_score is None
    with pytest.raises(ValueError, match='num_embeddings'):
        MODELS.build(_cfg(freeze_binary_cls=False, num_embeddings=3))
