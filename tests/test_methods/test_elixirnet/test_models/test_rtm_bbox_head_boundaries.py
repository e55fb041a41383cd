# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundary tests of :class:`RTMBBoxHead` (ElixirNet, "Relation Transfer
Module": ``f_E = E Gamma_s M W_E`` concatenated to the region features ``f``),
written for mutation testing: each pins one choice of the head exactly."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.elixirnet.models import (DEFAULT_ALB_GENOTYPES,
                                               RTMBBoxHead)

_TWO_GRAPHS = [('non_local', 0), ('non_local', 0), ('skip_connect', 0),
               ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 2),
               ('skip_connect', 0), ('skip_connect', 3)]


def _cfg(type='RTMBBoxHead', num_classes=8, **kwargs):
    cfg = dict(
        type=type,
        in_channels=8,
        roi_feat_size=5,
        conv_out_channels=8,
        num_classes=num_classes)
    if type == 'RTMBBoxHead':
        cfg.update(rtm_channels=4)
    cfg.update(kwargs)
    return cfg


def _feats(num_rois=(3, 2)):
    torch.manual_seed(0)
    # RoIs differ as wholes (as real proposals do), not only pixel by pixel
    num = sum(num_rois)
    return torch.randn(num, 8, 5, 5) + 2 * torch.randn(num, 8, 1, 1)


def _randomize_binary_cls(head):
    """A classifier far from the std-0.01 init, so that Gamma_s is not
    about uniform."""
    torch.manual_seed(1)
    with torch.no_grad():
        head.rtm.binary_cls.weight.normal_()
        head.rtm.binary_cls.bias.normal_()


def _paper_f_e(head, feats, graphs):
    """``f_E = E Gamma_s M W_E`` written from the paper, image by image."""
    weight, bias = head.rtm.binary_cls.weight, head.rtm.binary_cls.bias
    embeddings = torch.cat([weight, bias[:, None]], dim=1)  # M: K x (P + 1)
    gamma = torch.softmax(feats @ weight.t() + bias, dim=1)  # Gamma_s
    out, start = [], 0
    for graph in graphs:
        n = graph.shape[0]
        out.append(graph @ gamma[start:start + n] @ embeddings
                   @ head.rtm.transform.weight.t())
        start += n
    return torch.cat(out)


@pytest.mark.parametrize('normal_ops', [None, _TWO_GRAPHS])
def test_predictors_see_f_concat_paper_f_e(normal_ops):
    """Paper "Relation Transfer Module": ``f_E = E Gamma_s M W_E`` is
    concatenated after the region feature ``f``; ``E`` is the ALB's graph
    (the mean of its Non-local operations' graphs when it has several)."""
    genotypes = copy.deepcopy(DEFAULT_ALB_GENOTYPES)
    if normal_ops is not None:
        genotypes['normal']['ops'] = normal_ops
    head = MODELS.build(_cfg(genotypes=genotypes)).eval()
    _randomize_binary_cls(head)
    x = _feats()
    with torch.no_grad():
        cls_score, bbox_pred = head(x, num_rois=[3, 2])
        graphs = [g.clone() for g in head.last_adjacency]
        ops = head.graph_ops
        assert len(ops) == (1 if normal_ops is None else 2)
        if normal_ops is not None:
            for i in range(2):
                assert torch.allclose(
                    graphs[i], (ops[0].last_adjacency[i] +
                                ops[1].last_adjacency[i]) / 2)
        feats = head.forward_features(x, [3, 2])
        head._live_graphs()  # consume the graphs of this extra forward
        f_e = _paper_f_e(head, feats, graphs)
        assert f_e.shape == (5, 4)
        want = torch.cat([feats, f_e], dim=1)
        assert torch.allclose(cls_score, head.fc_cls(want), atol=1e-5)
        assert torch.allclose(bbox_pred, head.fc_reg(want), atol=1e-5)
        # f_E is not 0: the order [f, f_E] and the graph matter
        swapped = torch.cat([f_e, feats], dim=1)
        assert not torch.allclose(cls_score, head.fc_cls(swapped), atol=1e-3)


def test_every_graph_op_keeps_live_graphs():
    """Paper "Relation Transfer Module": ``E`` is "learned by ALB": every
    Non-local op keeps its graph with gradient, consumed by each forward."""
    head = MODELS.build(_cfg(genotypes=dict(
        normal=dict(ops=_TWO_GRAPHS, concat=[1, 2, 3, 4]),
        reduce=DEFAULT_ALB_GENOTYPES['reduce'])))
    assert len(head.graph_ops) == 2
    assert all(op.keep_live_graph for op in head.graph_ops)
    head(_feats(), num_rois=[3, 2])
    assert all(op.live_adjacency is None for op in head.graph_ops)


def test_constructor_wires_the_rtm():
    """Paper "Relation Transfer Module": ``W_E`` maps the ``P + 1``
    embedding to ``E = rtm_channels``; ``M`` has ``num_embeddings`` rows;
    the predictors read ``P + E`` inputs."""
    head = MODELS.build(_cfg(rtm_channels=6, num_embeddings=3))
    assert head.rtm_channels == 6
    assert head.rtm.in_channels == head.out_channels == 32
    assert head.rtm.out_channels == 6
    assert head.rtm.num_embeddings == 3
    assert head.rtm.binary_cls.out_features == 3
    assert head.rtm.transform.weight.shape == (6, 33)
    assert head.rtm.freeze_classifier is True
    assert not head.rtm.binary_cls.weight.requires_grad
    assert head.fc_cls.in_features == head.fc_reg.in_features == 38
    assert head.fc_cls.out_features == 9
    assert head.fc_reg.out_features == 32
    assert head.loss_binary_cls is None
    assert head._binary_score is None
    head = MODELS.build(_cfg(freeze_binary_cls=False))
    assert head.rtm.freeze_classifier is False
    assert head.rtm.binary_cls.weight.requires_grad
    assert head.rtm.num_embeddings == 2
    assert head.rtm_channels == 4


def test_default_binary_loss_is_softmax_ce():
    """Paper "Relation Transfer Module" ("FC 2-cls"): a trainable binary
    classifier is supervised by a softmax CE by default; only a 2-way one."""
    head = MODELS.build(_cfg(freeze_binary_cls=False))
    loss = head.loss_binary_cls
    assert type(loss).__name__ == 'CrossEntropyLoss'
    assert loss.use_sigmoid is False and loss.loss_weight == 1.0
    assert MODELS.build(_cfg()).loss_binary_cls is None  # frozen
    # a non-2 classifier is fine without the binary loss
    head = MODELS.build(
        _cfg(freeze_binary_cls=False, num_embeddings=3, loss_binary_cls=None))
    assert head.loss_binary_cls is None
    with pytest.raises(
            ValueError,
            match=r'^RTMBBoxHead: loss_binary_cls supervises a lesion-vs-'
            r'background classifier \(num_embeddings=2\), got '
            r'num_embeddings=3; set loss_binary_cls=None$'):
        MODELS.build(_cfg(freeze_binary_cls=False, num_embeddings=3))


def test_needs_a_nonlocal_op_message():
    """Paper "Relation Transfer Module": ``E`` comes from a Non-local
    operation; a genotype without one is refused."""
    genotypes = copy.deepcopy(DEFAULT_ALB_GENOTYPES)
    genotypes['normal']['ops'][0] = ('sep_conv_3x3', 0)
    with pytest.raises(
            ValueError,
            match=r'^RTMBBoxHead needs the relation graph E of a non_local '
            r'operation, but the genotypes have none; add a non_local op '
            r"to genotypes\['normal'\]$"):
        MODELS.build(_cfg(genotypes=genotypes))


def test_binary_scores_kept_only_to_train_the_classifier():
    """Paper "Relation Transfer Module": ``s`` (the FC 2-cls scores of
    ``f``) is kept for ``loss_binary_cls`` only in training with a
    trainable classifier."""
    head = MODELS.build(_cfg(freeze_binary_cls=False))
    _randomize_binary_cls(head)
    head.train()
    head(_feats(), num_rois=[3, 2])
    score = head._binary_score
    assert score is not None and score.requires_grad
    feats = head.forward_features(_feats(), [3, 2])
    head._live_graphs()
    assert torch.allclose(score, head.rtm.binary_cls(feats), atol=1e-5)
    head.eval()
    head(_feats(), num_rois=[3, 2])
    assert head._binary_score is None
    frozen = MODELS.build(_cfg()).train()
    frozen(_feats(), num_rois=[3, 2])
    assert frozen._binary_score is None


def _scores_and_loss(head, labels, weights, binary_score,
                     reduction_override=None):
    head.train()
    cls_score, bbox_pred = head(_feats(), num_rois=[3, 2])
    head._binary_score = binary_score
    n = labels.numel()
    return head.loss(
        cls_score,
        bbox_pred,
        torch.zeros(n, 5),
        labels,
        weights,
        torch.zeros(n, 4),
        torch.zeros(n, 4),
        reduction_override=reduction_override)


def test_binary_loss_value_and_average():
    """Paper "Relation Transfer Module" ("FC 2-cls"): softmax CE of ``s``
    against lesion (label < num_classes) = 0 vs background = 1, weighted
    and averaged over the RoIs of positive weight."""
    head = MODELS.build(_cfg(freeze_binary_cls=False))
    labels = torch.tensor([0, 8, 7, 8, 3])
    torch.manual_seed(2)
    score = torch.randn(5, 2)
    target = torch.tensor([0, 1, 0, 1, 0])
    ce = F.cross_entropy(score, target, reduction='none')
    weights = torch.tensor([1.0, 0.5, 0.0, 2.0, 1.0])
    losses = _scores_and_loss(head, labels, weights, score)
    want = (ce * weights).sum() / 4  # 4 RoIs of positive weight
    assert torch.allclose(losses['loss_binary_cls'], want)
    assert head._binary_score is None  # consumed
    # a single RoI of positive weight: divided by 1
    weights = torch.tensor([0.0, 0.0, 0.0, 3.0, 0.0])
    losses = _scores_and_loss(head, labels, weights, score)
    assert torch.allclose(losses['loss_binary_cls'], 3 * ce[3])
    # no RoI of positive weight: 0, not nan
    losses = _scores_and_loss(head, labels, torch.zeros(5), score)
    assert float(losses['loss_binary_cls']) == 0.0
    # reduction_override reaches the loss
    weights = torch.tensor([1.0, 0.5, 0.0, 2.0, 1.0])
    losses = _scores_and_loss(head, labels, weights, score, 'none')
    assert torch.allclose(losses['loss_binary_cls'], ce * weights)
    assert losses['loss_cls'].shape == (5, )
    # the loss config is used (weight 2)
    head2 = MODELS.build(
        _cfg(
            freeze_binary_cls=False,
            loss_binary_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0)))
    losses = _scores_and_loss(head2, labels, weights, score)
    assert torch.allclose(losses['loss_binary_cls'],
                          2 * (ce * weights).sum() / 4)


def test_binary_loss_of_the_training_forward():
    """Paper "Relation Transfer Module": the binary loss uses the scores of
    the training forward, once."""
    head = MODELS.build(_cfg(freeze_binary_cls=False))
    _randomize_binary_cls(head)
    head.train()
    x = _feats()
    cls_score, bbox_pred = head(x, num_rois=[3, 2])
    scores = head._binary_score  # (5, 2) scores of f
    labels = torch.tensor([0, 8, 7, 8, 3])
    n = 5
    args = (cls_score, bbox_pred, torch.zeros(n, 5), labels, torch.ones(n),
            torch.zeros(n, 4), torch.zeros(n, 4))
    losses = head.loss(*args)
    want = F.cross_entropy(scores, torch.tensor([0, 1, 0, 1, 0]))
    assert torch.allclose(losses['loss_binary_cls'], want)
    assert set(losses) == {'loss_cls', 'acc', 'loss_bbox', 'loss_binary_cls'}
    assert 'loss_binary_cls' not in head.loss(*args)


def test_binary_loss_needs_the_same_rois():
    """Paper "Relation Transfer Module": the binary scores and the RoI
    targets must be of the same RoIs."""
    head = MODELS.build(_cfg(freeze_binary_cls=False))
    head.train()
    cls_score, bbox_pred = head(_feats(), num_rois=[3, 2])
    labels = torch.tensor([0, 8, 7, 8])
    with pytest.raises(
            ValueError,
            match=r'^RTMBBoxHead: 5 binary scores from the last forward but '
            r'4 RoI targets; call loss\(\) right after the training forward '
            r'of the same RoIs$'):
        head.loss(cls_score[:4], bbox_pred[:4], torch.zeros(4, 5), labels,
                  torch.ones(4), torch.zeros(4, 4), torch.zeros(4, 4))


def _single_class_state(with_reg=True, **kwargs):
    torch.manual_seed(3)
    pretrained = MODELS.build(
        _cfg(type='ALBBBoxHead', num_classes=1, with_reg=with_reg, **kwargs))
    with torch.no_grad():
        for p in pretrained.parameters():
            p.normal_()
    return pretrained, dict(pretrained.state_dict())


def test_load_moves_fc_cls_and_drops_fc_reg(monkeypatch):
    """Paper "Relation Transfer Module": the original binary classifier's
    weights are ``M``: a single-class head's ``fc_cls`` (2 x P) becomes
    ``rtm.binary_cls``; its ``fc_reg``, whose input lacks ``f_E``, is
    dropped; it is logged."""
    logged = []
    monkeypatch.setattr(
        'mmlesion.methods.elixirnet.models.rtm_bbox_head.print_log',
        lambda msg, logger=None, **kw: logged.append((msg, logger)))
    pretrained, state = _single_class_state()
    head = MODELS.build(_cfg())
    fc_reg = head.fc_reg.weight.clone()
    missing, unexpected = head.load_state_dict(state, strict=False)
    assert unexpected == []
    assert sorted(missing) == [
        'fc_cls.bias', 'fc_cls.weight', 'fc_reg.bias', 'fc_reg.weight',
        'rtm.transform.weight'
    ]
    assert torch.equal(head.rtm.binary_cls.weight, pretrained.fc_cls.weight)
    assert torch.equal(head.rtm.binary_cls.bias, pretrained.fc_cls.bias)
    assert torch.equal(head.fc_reg.weight, fc_reg)
    assert logged == [(
        'RTMBBoxHead: loaded the binary classifier fc_cls of the checkpoint '
        'into rtm.binary_cls (M and Gamma_s of the Relation Transfer '
        'Module); the multi-type fc_cls/fc_reg keep their initialisation.',
        'current')]


def test_load_keeps_a_fitting_fc_reg_and_a_lone_weight():
    """Paper "Relation Transfer Module" (``M`` from a checkpoint): only a
    ``fc_reg`` tensor that does not fit is dropped; a checkpoint without
    ``fc_cls.bias`` moves the weight alone."""
    head = MODELS.build(_cfg())
    _, state = _single_class_state()
    torch.manual_seed(4)
    reg_w = torch.randn_like(head.fc_reg.weight)
    reg_b = torch.randn_like(head.fc_reg.bias)
    state['fc_reg.weight'], state['fc_reg.bias'] = reg_w, reg_b
    weight = state['fc_cls.weight']
    del state['fc_cls.bias']
    bias = head.rtm.binary_cls.bias.clone()
    _, unexpected = head.load_state_dict(state, strict=False)
    assert unexpected == []
    assert torch.equal(head.fc_reg.weight, reg_w)
    assert torch.equal(head.fc_reg.bias, reg_b)
    assert torch.equal(head.rtm.binary_cls.weight, weight)
    assert torch.equal(head.rtm.binary_cls.bias, bias)
    # only the bias of fc_reg misfits: only it is dropped
    head = MODELS.build(_cfg())
    _, state = _single_class_state()
    state['fc_reg.weight'] = reg_w
    missing, unexpected = head.load_state_dict(state, strict=False)
    assert unexpected == [] and 'fc_reg.bias' in missing
    assert torch.equal(head.fc_reg.weight, reg_w)


def test_load_into_a_head_without_fc_reg():
    """Paper "Relation Transfer Module" (``M`` from a checkpoint): with
    ``with_reg=False`` the checkpoint's ``fc_reg`` has nowhere to go."""
    head = MODELS.build(_cfg(with_reg=False))
    pretrained, state = _single_class_state()
    _, unexpected = head.load_state_dict(state, strict=False)
    assert unexpected == []
    assert torch.equal(head.rtm.binary_cls.weight, pretrained.fc_cls.weight)


def test_load_leaves_other_checkpoints_alone():
    """Paper "Relation Transfer Module" (``M`` from a checkpoint): an RTM
    checkpoint, or a ``fc_cls`` of another shape, is loaded as is."""
    torch.manual_seed(5)
    src = MODELS.build(_cfg())
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    head = MODELS.build(_cfg())
    head.load_state_dict(src.state_dict())
    for (name, p), q in zip(head.state_dict().items(),
                            src.state_dict().values()):
        assert torch.equal(p, q), name
    # rtm.binary_cls present but fc_cls of the binary shape: not moved
    head = MODELS.build(_cfg(num_classes=1))
    src = MODELS.build(_cfg(num_classes=1))
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    head.load_state_dict(src.state_dict())
    assert torch.equal(head.fc_cls.weight, src.fc_cls.weight)
    assert torch.equal(head.rtm.binary_cls.weight, src.rtm.binary_cls.weight)
    # a multi-type ALB checkpoint: fc_cls (9 x P) is not the classifier
    head = MODELS.build(_cfg())
    _, state = _single_class_state()
    state['fc_cls.weight'] = torch.randn(9, 32)
    binary = head.rtm.binary_cls.weight.clone()
    with pytest.raises(RuntimeError, match='size mismatch for fc_cls'):
        head.load_state_dict(state, strict=False)
    assert torch.equal(head.rtm.binary_cls.weight, binary)


def test_defaults_and_positional_alb_arguments():
    """Paper "Implementation Details": ``E = 128`` in RTM; positional
    arguments are the ALB head's."""
    head = RTMBBoxHead(8, 5, 8, num_classes=2)
    assert head.rtm_channels == 128 and head.rtm.out_channels == 128
    assert head.in_channels == 8 and head.roi_feat_size == (5, 5)
    assert head.conv_out_channels == 8
    assert head.fc_cls.in_features == 32 + 128


def test_an_rtm_checkpoint_is_never_rewritten():
    """Paper "Relation Transfer Module" (``M`` from a checkpoint): a
    checkpoint with its own ``rtm.binary_cls`` keeps its ``fc_cls``, even
    one of the binary classifier's shape (here it does not fit)."""
    head = MODELS.build(_cfg(num_classes=1))
    state = dict(head.state_dict())
    state['fc_cls.weight'] = torch.randn(2, 32)  # binary shape, not (2, 36)
    with pytest.raises(RuntimeError, match='size mismatch for fc_cls'):
        head.load_state_dict(state, strict=False)


def test_rtm_branches_can_be_disabled():
    """Paper "Relation Transfer Module": either predictor on ``[f, f_E]``
    may be switched off; its output is then None."""
    head = MODELS.build(_cfg(with_cls=False))
    cls_score, bbox_pred = head(_feats(), num_rois=[3, 2])
    assert cls_score is None and bbox_pred.shape == (5, 32)
    head = MODELS.build(_cfg(with_reg=False))
    cls_score, bbox_pred = head(_feats(), num_rois=[3, 2])
    assert bbox_pred is None and cls_score.shape == (5, 9)


def test_loss_passes_the_rois_on():
    """Paper "Relation Transfer Module" ("improve both classification and
    localization"): with ``reg_decoded_bbox`` the RoIs reach the box loss."""
    head = MODELS.build(
        _cfg(reg_decoded_bbox=True, loss_bbox=dict(type='L1Loss')))
    head.train()
    cls_score, bbox_pred = head(_feats(), num_rois=[3, 2])
    labels = torch.tensor([0, 8, 7, 8, 3])
    rois = torch.tensor([[0, 0, 0, 10, 10]] * 5, dtype=torch.float)
    targets = torch.tensor([[0, 0, 10, 10]] * 5, dtype=torch.float)
    args = (labels, torch.ones(5), targets, torch.ones(5, 4))
    near = head.loss(cls_score, bbox_pred, rois, *args)['loss_bbox']
    far = head.loss(cls_score, bbox_pred, rois + 50, *args)['loss_bbox']
    assert float(far) > float(near) + 10


class _WeightOnlyLinear(torch.nn.Module):
    """A box predictor without any ``bias`` attribute."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(out_features,
                                                     in_features))

    def forward(self, x):
        return x @ self.weight.t()


def test_load_drops_a_bias_the_predictor_does_not_have():
    """Paper "Relation Transfer Module" (``M`` from a checkpoint): a
    ``fc_reg.bias`` that the head's predictor lacks is dropped as well."""
    head = MODELS.build(
        _cfg(num_classes=1, reg_predictor_cfg=dict(type=_WeightOnlyLinear)))
    assert not hasattr(head.fc_reg, 'bias')
    pretrained, state = _single_class_state()
    _, unexpected = head.load_state_dict(state, strict=False)
    assert unexpected == []
    assert torch.equal(head.rtm.binary_cls.weight, pretrained.fc_cls.weight)


def test_load_from_state_dict_keyword_arguments():
    """Paper "Relation Transfer Module" (``M`` from a checkpoint): the hook
    passes keyword arguments on to torch's loader."""
    pretrained, state = _single_class_state()
    head = MODELS.build(_cfg())
    missing, unexpected, errors = [], [], []
    head._load_from_state_dict(
        state,
        '',
        local_metadata={},
        strict=False,
        missing_keys=missing,
        unexpected_keys=unexpected,
        error_msgs=errors)
    assert errors == [] and unexpected == []
    assert 'fc_cls.weight' not in state and 'fc_reg.weight' not in state
    assert torch.equal(state['rtm.binary_cls.weight'],
                       pretrained.fc_cls.weight)
