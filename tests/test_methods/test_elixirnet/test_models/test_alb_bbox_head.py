# Copyright (c) mmlesion contributors. All rights reserved.
import copy

import pytest
import torch
from mmdet.registry import MODELS

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.elixirnet.models import ALBCell
from mmlesion.methods.elixirnet.models import (DEFAULT_ALB_GENOTYPES,
                                               ALBBBoxHead)


def _head_cfg(**kwargs):
    cfg = dict(
        type='ALBBBoxHead',
        in_channels=16,
        roi_feat_size=7,
        conv_out_channels=16,
        num_classes=1)
    cfg.update(kwargs)
    return cfg


def _feats(num_rois=(3, 2), size=7):
    torch.manual_seed(0)
    return torch.randn(sum(num_rois), 16, size, size)


@pytest.mark.parametrize('size', [7, 14])
def test_forward_shapes_and_graphs(size):
    head = MODELS.build(_head_cfg())
    assert isinstance(head, ALBBBoxHead)
    assert head.out_channels == 64  # 16 -> ALB 16 -> ALBr 32 -> ALBr 64
    assert head.fc_cls.in_features == head.fc_reg.in_features == 64
    assert isinstance(head.normal_cell, ALBCell)
    assert not head.normal_cell.reduction
    assert all(cell.reduction for cell in head.reduce_cells)
    head.init_weights()
    cls_score, bbox_pred = head(_feats(size=size), num_rois=[3, 2])
    assert cls_score.shape == (5, 2) and bbox_pred.shape == (5, 4)
    assert [tuple(g.shape) for g in head.last_adjacency] == [(3, 3), (2, 2)]
    for graph in head.last_adjacency:
        assert torch.allclose(graph.sum(1), torch.ones(len(graph)))
    assert head.genotypes() == {
        key:
        dict(ops=[tuple(op) for op in value['ops']], concat=value['concat'])
        for key, value in DEFAULT_ALB_GENOTYPES.items()
    }


def test_loss_backpropagates_to_all_cells():
    head = MODELS.build(_head_cfg(num_classes=3, reg_class_agnostic=True))
    cls_score, bbox_pred = head(_feats(), num_rois=[3, 2])
    labels = torch.tensor([0, 3, 2, 3, 1])
    losses = head.loss(
        cls_score,
        bbox_pred,
        rois=torch.zeros(5, 5),
        labels=labels,
        label_weights=torch.ones(5),
        bbox_targets=torch.randn(5, 4),
        bbox_weights=(labels < 3).float()[:, None].expand(5, 4))
    (losses['loss_cls'] + losses['loss_bbox']).backward()
    for module in (head.stem, head.normal_cell, *head.reduce_cells):
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_needs_num_rois():
    head = MODELS.build(_head_cfg())
    with pytest.raises(ValueError, match='ALBRoIHead'):
        head(_feats())
    with pytest.raises(ValueError, match='sum to the number'):
        head(_feats(), num_rois=[3, 3])


def test_bad_genotypes():
    with pytest.raises(ValueError, match='normal=..., reduce=...'):
        MODELS.build(_head_cfg(genotypes=dict(normal=None)))
    bad = copy.deepcopy(DEFAULT_ALB_GENOTYPES)
    bad['reduce']['ops'][0] = ('conv_7x7', 0)
    with pytest.raises(ValueError, match=r"genotypes\['reduce'\]"):
        MODELS.build(_head_cfg(genotypes=bad))
    with pytest.raises(ValueError, match='not both'):
        MODELS.build(_head_cfg(genotypes=DEFAULT_ALB_GENOTYPES, search=True))


def test_search_mode_alphas_and_derived_genotypes_build():
    head = MODELS.build(_head_cfg(search=True))
    alpha_names = [
        name for name, _ in head.named_parameters() if 'arch_alpha' in name
    ]
    assert alpha_names == ['arch_alpha_normal', 'arch_alpha_reduce']
    assert head.arch_parameters() == [
        head.arch_alpha_normal, head.arch_alpha_reduce
    ]
    cls_score, bbox_pred = head(_feats(), num_rois=[3, 2])
    (cls_score.pow(2).sum() + bbox_pred.pow(2).sum()).backward()
    assert head.arch_alpha_normal.grad.abs().sum() > 0
    assert head.arch_alpha_reduce.grad.abs().sum() > 0
    # the cells own no alpha: the ALBr cells share arch_alpha_reduce
    for cell in (head.normal_cell, *head.reduce_cells):
        assert not [n for n, _ in cell.named_parameters() if 'alpha' in n]
    genotypes = head.genotypes()
    discrete = MODELS.build(_head_cfg(genotypes=genotypes))
    assert discrete.genotypes() == genotypes
    out = discrete(_feats(), num_rois=[3, 2])
    assert out[0].shape == (5, 2)


def test_no_nonlocal_means_no_graph():
    genotypes = copy.deepcopy(DEFAULT_ALB_GENOTYPES)
    genotypes['normal']['ops'][0] = ('sep_conv_3x3', 0)
    head = MODELS.build(_head_cfg(genotypes=genotypes))
    head(_feats(), num_rois=[3, 2])
    assert head.graph_ops == [] and head.last_adjacency == []


def test_builds_from_config_text_round_trip():
    """Genotypes are plain config: a dumped and reloaded config builds."""
    from mmengine.config import Config
    cfg = Config(dict(bbox_head=_head_cfg(genotypes=DEFAULT_ALB_GENOTYPES)))
    reloaded = Config.fromstring(cfg.pretty_text, '.py')
    head = MODELS.build(reloaded.bbox_head)
    assert head.genotypes() == MODELS.build(cfg.bbox_head).genotypes()
