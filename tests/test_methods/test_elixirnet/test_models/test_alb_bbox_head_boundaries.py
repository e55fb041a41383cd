# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundary tests of :class:`ALBBBoxHead` (ElixirNet, "Auto-lesion Block",
"Search Space for ALB", "Differentiable Search Strategy"), written for
mutation testing: each pins one choice of the head exactly."""
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

import mmlesion  # noqa: F401  (registers)
from mmlesion.methods.elixirnet.models.alb_ops import ALB_OP_NAMES
from mmlesion.methods.elixirnet.models import (DEFAULT_ALB_GENOTYPES,
                                               ALBBBoxHead)

#: ops of a search head kept small (the paper's 9 would be slow here)
_SEARCH_OPS = ('none', 'skip_connect', 'sep_conv_3x3', 'non_local')


def _head_cfg(**kwargs):
    cfg = dict(
        type='ALBBBoxHead',
        in_channels=8,
        roi_feat_size=5,
        conv_out_channels=8,
        num_classes=1)
    cfg.update(kwargs)
    return cfg


def _feats(num_rois=(3, 2), size=5, channels=8):
    torch.manual_seed(0)
    num = sum(num_rois)
    return (torch.randn(num, channels, size, size) +
            2 * torch.randn(num, channels, 1, 1))


def _genotypes(normal_ops=None, reduce_ops=None):
    genotypes = copy.deepcopy(DEFAULT_ALB_GENOTYPES)
    if normal_ops is not None:
        genotypes['normal']['ops'] = normal_ops
    if reduce_ops is not None:
        genotypes['reduce']['ops'] = reduce_ops
    return genotypes


_NO_GRAPH = [('sep_conv_3x3', 0), ('skip_connect', 0), ('skip_connect', 0),
             ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 2),
             ('skip_connect', 0), ('skip_connect', 3)]
_TWO_GRAPHS = [('non_local', 0), ('non_local', 0), ('skip_connect', 0),
               ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 2),
               ('skip_connect', 0), ('skip_connect', 3)]
_ONE_GRAPH_REDUCE = [('non_local', 0), ('skip_connect', 0),
                     ('skip_connect', 0), ('skip_connect', 1),
                     ('skip_connect', 0), ('skip_connect', 2),
                     ('skip_connect', 0), ('skip_connect', 3)]


#: B = 2 genotypes for the small search head: branch 1 reads the cell
#: input twice, branch 2 the input and branch 1
_B2_GRAPH = dict(
    ops=[('non_local', 0), ('sep_conv_3x3', 0), ('non_local', 0),
         ('skip_connect', 1)],
    concat=[1, 2])
_B2_NO_GRAPH = dict(
    ops=[('sep_conv_3x3', 0), ('skip_connect', 0), ('skip_connect', 0),
         ('skip_connect', 1)],
    concat=[1, 2])


@pytest.fixture(scope='module')
def search_head():
    torch.manual_seed(0)
    return MODELS.build(
        _head_cfg(
            search=True,
            num_branches=2,
            conv_out_channels=4,
            op_names=_SEARCH_OPS)).eval()


def test_forward_is_stem_alb_albr_pool_then_predictors():
    """Paper "Auto-lesion Block", Figures 2 and 3: RoI -> 3x3 conv -> ALB ->
    ALBr x2 -> global average pooling -> fc_cls / fc_reg; the graphs kept
    are the ALB's, one per image."""
    head = MODELS.build(_head_cfg(num_classes=3)).eval()
    x = _feats()
    with torch.no_grad():
        cls_score, bbox_pred = head(x, num_rois=[3, 2])
        y = head.stem(x)
        assert y.shape == (5, 8, 5, 5)  # 3x3 conv, padding 1
        y = head.normal_cell(y, [3, 2])
        assert y.shape == (5, 8, 5, 5)  # ALB keeps size and channels
        graphs = [g.clone() for g in head.normal_cell.nonlocal_ops()[0]
                  .last_adjacency]
        for cell in head.reduce_cells:
            y = cell(y, [3, 2])
        assert y.shape == (5, 32, 2, 2)  # ALBr: halve size, double channels
        feats = y.mean(dim=(2, 3))
    assert torch.allclose(cls_score, head.fc_cls(feats), atol=1e-6)
    assert torch.allclose(bbox_pred, head.fc_reg(feats), atol=1e-6)
    assert cls_score.shape == (5, 4) and bbox_pred.shape == (5, 12)
    assert len(head.last_adjacency) == 2
    for got, want in zip(head.last_adjacency, graphs):
        assert torch.equal(got, want)
    assert torch.allclose(
        head.forward_features(x, [3, 2]), feats, atol=1e-6)


def test_constructor_attributes_and_cells():
    """Paper "Auto-lesion Block": the ALB keeps the channels, each ALBr
    doubles them (P = C * 2 ** n); the ALBr cells share one genotype."""
    head = MODELS.build(
        _head_cfg(
            conv_out_channels=12,
            num_reduction_cells=1,
            num_branches=3,
            genotypes=dict(
                normal=dict(
                    ops=[('non_local', 0), ('skip_connect', 0),
                         ('skip_connect', 1), ('skip_connect', 0),
                         ('skip_connect', 2), ('skip_connect', 0)],
                    concat=[1, 2, 3]),
                reduce=dict(
                    ops=[('skip_connect', 0), ('avg_pool_3x3', 0),
                         ('skip_connect', 1), ('skip_connect', 0),
                         ('skip_connect', 2), ('skip_connect', 0)],
                    concat=[1, 2, 3]))))
    assert head.conv_out_channels == 12
    assert head.num_reduction_cells == 1
    assert head.num_branches == 3
    assert head.search is False
    assert head.op_names == ALB_OP_NAMES
    assert isinstance(head.op_names, tuple)
    assert head.out_channels == 24
    assert head.fc_cls.in_features == head.fc_reg.in_features == 24
    assert head.with_avg_pool is False
    assert head.roi_feat_size == (5, 5)
    assert head.in_channels == 8
    assert head.sampled_genotypes is None
    assert head.last_adjacency == []
    assert head.stem.conv.in_channels == 8
    assert head.stem.conv.out_channels == 12
    assert head.stem.conv.kernel_size == (3, 3)
    assert head.stem.conv.padding == (1, 1)
    assert head.stem.with_norm
    cell = head.normal_cell
    assert (cell.in_channels, cell.out_channels) == (12, 12)
    assert cell.reduction is False and cell.num_branches == 3
    assert cell.op_names == head.op_names
    assert len(head.reduce_cells) == 1
    rcell = head.reduce_cells[0]
    assert (rcell.in_channels, rcell.out_channels) == (12, 24)
    assert rcell.reduction is True and rcell.num_branches == 3
    assert rcell.op_names == head.op_names
    # the reduce cells share one genotype, the ALB has its own
    assert rcell.genotype()['ops'][1] == ('avg_pool_3x3', 0)
    assert cell.genotype()['ops'][0] == ('non_local', 0)
    out = head(_feats(size=4), num_rois=[3, 2])
    assert out[0].shape == (5, 2) and out[1].shape == (5, 4)


def test_paper_defaults():
    """Paper "Implementation Details": 256-channel RoI features, a 3x3
    conv to 128, 1 ALB and 2 ALBr (P = 512), B = 4 branches, 7x7 RoIs."""
    head = ALBBBoxHead(num_classes=1)
    assert head.in_channels == 256 and head.roi_feat_size == (7, 7)
    assert head.conv_out_channels == 128 and head.out_channels == 512
    assert head.num_reduction_cells == 2 and head.num_branches == 4
    assert head.stem.conv.in_channels == 256
    assert head.fc_cls.in_features == 512


def test_out_channels_double_per_reduction_cell():
    """Paper "Auto-lesion Block": every ALBr halves the size and doubles
    the channels; without ALBr the ALB's channels are P."""
    for num, out in [(0, 8), (1, 16), (2, 32), (3, 64)]:
        head = MODELS.build(_head_cfg(num_reduction_cells=num))
        assert head.out_channels == out
        assert len(head.reduce_cells) == num
        assert [(c.in_channels, c.out_channels)
                for c in head.reduce_cells] == [(8 * 2**i, 16 * 2**i)
                                                for i in range(num)]
        assert head.fc_cls.in_features == out


def test_norm_cfg_reaches_stem_and_discrete_cells_only():
    """Paper "Search Space for ALB" (ReLU-Conv-BN): discrete cells and the
    3x3 conv use ``norm_cfg``; search cells affine-free BN (DARTS)."""
    gn = dict(type='GN', num_groups=1)
    head = MODELS.build(_head_cfg(norm_cfg=gn))
    assert isinstance(head.stem.norm, torch.nn.GroupNorm)
    for cell in (head.normal_cell, *head.reduce_cells):
        assert cell.norm_cfg == gn
    head = MODELS.build(
        _head_cfg(norm_cfg=gn, search=True, op_names=_SEARCH_OPS))
    assert isinstance(head.stem.norm, torch.nn.GroupNorm)
    for cell in (head.normal_cell, *head.reduce_cells):
        assert cell.norm_cfg == dict(type='BN', affine=False)
        assert cell.search and cell.own_arch_alpha is False


def test_with_avg_pool_is_refused():
    """Paper "Auto-lesion Block": the head always pools globally after the
    cells, so mmdet's ``with_avg_pool`` is refused."""
    with pytest.raises(
            ValueError,
            match=r'^ALBBBoxHead always pools globally after the cells; do '
            r'not set with_avg_pool$'):
        MODELS.build(_head_cfg(with_avg_pool=True))
    head = MODELS.build(_head_cfg(with_avg_pool=False))
    assert head.with_avg_pool is False


def test_both_genotypes_and_search_is_refused():
    """Paper "Differentiable Search Strategy": a head is either searched or
    built from a derived genotype pair (ALB, ALBr), not both."""
    with pytest.raises(
            ValueError,
            match=r'^ALBBBoxHead: give genotypes or search=True, not both$'):
        MODELS.build(
            _head_cfg(genotypes=DEFAULT_ALB_GENOTYPES, search=True))
    with pytest.raises(ValueError, match=r'^ALBBBoxHead genotypes must be '
                       r'dict\(normal=\.\.\., reduce=\.\.\.\), got'):
        MODELS.build(_head_cfg(genotypes=[1]))
    with pytest.raises(ValueError, match='normal=..., reduce=...'):
        MODELS.build(
            _head_cfg(genotypes=dict(
                normal=DEFAULT_ALB_GENOTYPES['normal'],
                reduce=DEFAULT_ALB_GENOTYPES['reduce'],
                extra=None)))


def test_genotype_error_names_the_cell():
    """Paper "Search Space for ALB": each genotype is checked against the
    head's candidate operations and branch count, named by its cell."""
    bad = copy.deepcopy(DEFAULT_ALB_GENOTYPES)
    bad['normal']['ops'][0] = ('conv_7x7', 0)
    with pytest.raises(ValueError, match=r"genotypes\['normal'\]"):
        MODELS.build(_head_cfg(genotypes=bad))
    # checked against op_names, not against all known operations
    with pytest.raises(ValueError, match=r"genotypes\['normal'\]"):
        MODELS.build(
            _head_cfg(op_names=('none', 'skip_connect', 'sep_conv_3x3'),
                      genotypes=dict(
                          normal=dict(ops=_TWO_GRAPHS, concat=[1, 2, 3, 4]),
                          reduce=dict(ops=_NO_GRAPH, concat=[1, 2, 3, 4]))))
    # num_branches is passed to the check
    with pytest.raises(ValueError, match=r"genotypes\['normal'\]"):
        MODELS.build(_head_cfg(num_branches=2))


def test_genotypes_returns_a_copy():
    """Paper "Search Space for ALB": the genotypes handed out are copies."""
    head = MODELS.build(_head_cfg())
    got = head.genotypes()
    got['normal']['ops'].clear()
    assert len(head.genotypes()['normal']['ops']) == 8


def test_predictor_sizes():
    """Paper "Auto-lesion Block" (Figure 2): mmdet's predictors on P
    features: num_classes + 1 scores (or the loss's own count), 4 deltas
    per class unless class agnostic."""
    head = MODELS.build(_head_cfg(num_classes=3))
    assert head.fc_cls.out_features == 4
    assert head.fc_reg.out_features == 12
    assert head.fc_cls.in_features == head.fc_reg.in_features == 32
    head = MODELS.build(_head_cfg(num_classes=3, reg_class_agnostic=True))
    assert head.fc_reg.out_features == 4
    head = MODELS.build(
        _head_cfg(
            num_classes=3,
            loss_cls=dict(type='SeesawLoss', num_classes=3, loss_weight=1.0)))
    assert head.fc_cls.out_features == 5  # Seesaw: num_classes + 2
    # the predictor configs are copied, not filled in place
    assert head.cls_predictor_cfg == dict(type='Linear')
    assert head.reg_predictor_cfg == dict(type='Linear')


def test_predictor_sizes_from_a_config_file():
    """Paper "Auto-lesion Block": a config file's predictor cfg (a
    ConfigDict) gets the P inputs too."""
    cfg = Config(dict(head=_head_cfg(num_classes=3)))
    cfg = Config.fromstring(cfg.pretty_text, '.py')
    head = MODELS.build(cfg.head)
    assert head.fc_reg.in_features == 32
    assert head.fc_reg.out_features == 12


def test_branches_can_be_disabled():
    """Paper "Auto-lesion Block" (Figure 2): either predictor may be
    switched off; its output is then None."""
    head = MODELS.build(_head_cfg(with_cls=False))
    cls_score, bbox_pred = head(_feats(), num_rois=[3, 2])
    assert cls_score is None and bbox_pred.shape == (5, 4)
    assert not hasattr(head, 'fc_cls')
    head = MODELS.build(_head_cfg(with_reg=False))
    cls_score, bbox_pred = head(_feats(), num_rois=[3, 2])
    assert bbox_pred is None and cls_score.shape == (5, 2)
    assert not hasattr(head, 'fc_reg')


def test_num_rois_checks():
    """Paper "Non-local Operator": the graph is built per image, so the
    RoIs per image are required, non-negative and summing to the RoIs."""
    head = MODELS.build(_head_cfg()).eval()
    with pytest.raises(
            ValueError,
            match=r'^ALBBBoxHead\.forward needs num_rois \(RoIs per image\) '
            r"for the Non-local graphs; use roi_head=dict\(type='ALBRoIHead',"
            r" \.\.\.\) instead of mmdet's StandardRoIHead$"):
        head(_feats())
    with pytest.raises(
            ValueError,
            match=r'^num_rois=\[6, -1\] must be non-negative and sum to the '
            r'number of RoI features \(5\)$'):
        head(_feats(), num_rois=[6, -1])
    with pytest.raises(ValueError, match='must be non-negative'):
        head(_feats(), num_rois=[4, 2])
    # an image without RoIs is fine; counts may be tensors
    assert ALBBBoxHead._check_num_rois(_feats(), [5, 0]) == [5, 0]
    counts = ALBBBoxHead._check_num_rois(_feats(), torch.tensor([3, 2]))
    assert counts == [3, 2] and all(type(n) is int for n in counts)
    cls_score, _ = head(_feats(), num_rois=[0, 5])
    assert cls_score.shape == (5, 2)
    assert [g.shape for g in head.last_adjacency] == [(0, 0), (5, 5)]


def test_mean_graph_of_several_ops():
    """Paper "Non-local Operator" (Eq. 2): each graph is row-stochastic, so
    is the image-by-image mean over several Non-local operations."""
    a = [torch.eye(2), torch.full((1, 1), 1.0)]
    b = [torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.full((1, 1), 1.0)]
    c = [torch.tensor([[0.5, 0.5], [0.25, 0.75]]), torch.full((1, 1), 1.0)]
    mean = ALBBBoxHead._mean_graph([a, b, c])
    assert len(mean) == 2
    assert torch.allclose(mean[0],
                          torch.tensor([[0.5, 0.5], [0.4166667, 0.5833333]]))
    assert torch.equal(mean[1], torch.ones(1, 1))
    two = ALBBBoxHead._mean_graph([a, b])
    assert torch.allclose(two[0], torch.full((2, 2), 0.5))
    one = ALBBBoxHead._mean_graph([c])
    assert one[0] is c[0] and one[1] is c[1]
    assert ALBBBoxHead._mean_graph([]) == []


def test_graph_is_mean_over_alb_nonlocal_ops():
    """Paper "Non-local Operator": with several Non-local ops in the ALB,
    ``last_adjacency`` is the mean of their graphs."""
    # a fixed draw: in about 1 of 5 random draws both graphs of an image
    # come out uniform (1/3 each), equal, and the check below would fail
    torch.manual_seed(0)
    head = MODELS.build(
        _head_cfg(genotypes=_genotypes(normal_ops=_TWO_GRAPHS))).eval()
    ops = head.graph_ops
    assert len(ops) == 2 and ops == head.normal_cell.nonlocal_ops()
    assert head.graph_ops is not head._graph_ops
    head(_feats(), num_rois=[3, 2])
    for i in range(2):
        want = (ops[0].last_adjacency[i] + ops[1].last_adjacency[i]) / 2
        assert torch.allclose(head.last_adjacency[i], want)
        assert not torch.allclose(ops[0].last_adjacency[i],
                                  ops[1].last_adjacency[i])


def test_graph_falls_back_to_albr_nonlocal_ops():
    """Paper "Non-local Operator": without a Non-local op in the ALB, the
    ALBr cells' graphs are used; an ALB op wins over them."""
    head = MODELS.build(
        _head_cfg(
            genotypes=_genotypes(
                normal_ops=_NO_GRAPH, reduce_ops=_ONE_GRAPH_REDUCE))).eval()
    ops = head.graph_ops
    assert len(ops) == 2
    assert ops[0] is head.reduce_cells[0].nonlocal_ops()[0]
    assert ops[1] is head.reduce_cells[1].nonlocal_ops()[0]
    head(_feats(), num_rois=[3, 2])
    for i in range(2):
        want = (ops[0].last_adjacency[i] + ops[1].last_adjacency[i]) / 2
        assert torch.allclose(head.last_adjacency[i], want)
    # an ALB op wins over the ALBr ones
    head = MODELS.build(
        _head_cfg(genotypes=_genotypes(reduce_ops=_ONE_GRAPH_REDUCE)))
    assert head.graph_ops == head.normal_cell.nonlocal_ops()
    assert len(head.graph_ops) == 1


def test_search_alphas_shape_scale_and_sharing():
    """Paper "Differentiable Search Strategy" (Eq. 3): alpha has shape
    (B (B + 1) / 2, |OP|), is small at init; one alpha for the ALB, one
    shared by all ALBr cells."""
    torch.manual_seed(0)
    head = MODELS.build(
        _head_cfg(
            search=True,
            num_branches=3,
            conv_out_channels=6,
            num_reduction_cells=1,
            op_names=_SEARCH_OPS))
    assert head.arch_alpha_normal.shape == (6, 4)
    assert head.arch_alpha_reduce.shape == (6, 4)
    for alpha in head.arch_parameters():
        assert 0 < alpha.abs().max() < 1e-2
    assert head.genotype_cfg is None
    assert head.normal_cell.search and head.reduce_cells[0].search
    assert head.op_names == _SEARCH_OPS
    assert head.normal_cell.op_names == _SEARCH_OPS
    assert len(head.normal_cell.edges) == 6
    assert len(head.normal_cell.edges[0].ops) == 4
    assert MODELS.build(_head_cfg()).arch_parameters() == []


def test_search_forward_uses_each_alpha(search_head):
    """Paper "Differentiable Search Strategy" (Eq. 3): the ALB mixes with
    ``arch_alpha_normal``, every ALBr with ``arch_alpha_reduce``."""
    head = search_head
    x = _feats()
    with torch.no_grad():
        got = head.forward_features(x, [3, 2])
        y = head.stem(x)
        y = head.normal_cell(y, [3, 2], head.arch_alpha_normal)
        graphs = [g.clone() for g in head.last_adjacency]
        for cell in head.reduce_cells:
            y = cell(y, [3, 2], head.arch_alpha_reduce)
        want = y.mean(dim=(2, 3))
    assert torch.allclose(got, want, atol=1e-6)
    # every mixed edge of the ALB has a Non-local op: 3 graphs averaged
    assert len(head.graph_ops) == 3
    for got_g, want_g in zip(head.last_adjacency, graphs):
        assert torch.allclose(got_g, want_g)


def test_search_genotypes_use_their_own_alpha(search_head):
    """Paper "Differentiable Search Strategy": the argmax genotype of the
    ALB comes from its alpha, the ALBr's from the shared reduce alpha."""
    head = search_head
    saved = [a.detach().clone() for a in head.arch_parameters()]
    try:
        with torch.no_grad():
            head.arch_alpha_normal.zero_()
            head.arch_alpha_reduce.zero_()
            head.arch_alpha_normal[:, 3] = 5.0  # non_local everywhere
            head.arch_alpha_reduce[:, 2] = 5.0  # sep_conv_3x3 everywhere
        genotypes = head.genotypes()
    finally:
        with torch.no_grad():
            for alpha, value in zip(head.arch_parameters(), saved):
                alpha.copy_(value)
    # branch 2 keeps its two strongest edges, each with its best op
    assert genotypes['normal']['ops'][2:] == [('non_local', 0),
                                              ('non_local', 1)]
    assert genotypes['reduce']['ops'][2:] == [('sep_conv_3x3', 0),
                                              ('sep_conv_3x3', 1)]


def test_sampled_genotypes_run_on_shared_weights(search_head):
    """Paper Table 6 "random ALB": a sampled discrete genotype runs on the
    mixed edges' weights; only the graphs of the Non-local ops that ran
    count."""
    head = search_head
    x = _feats()
    head.forward_features(x, [3, 2])  # mixture: every Non-local op ran
    sampled = dict(normal=_B2_GRAPH, reduce=_B2_NO_GRAPH)
    head.set_sampled_genotypes(sampled)
    try:
        assert head.sampled_genotypes['normal']['ops'][0] == ('non_local',
                                                              0)
        with torch.no_grad():
            got = head.forward_features(x, [3, 2])
            graphs = [g.clone() for g in head.last_adjacency]
            y = head.stem(x)
            y = head.normal_cell(y, [3, 2], genotype=sampled['normal'])
            for cell in head.reduce_cells:
                y = cell(y, [3, 2], genotype=sampled['reduce'])
        assert torch.allclose(got, y.mean(dim=(2, 3)), atol=1e-6)
        # branch 1's op from input 0 (edge 0) and branch 2's from input 0
        # (edge 1) ran; the one from branch 1 (edge 2) did not
        cell_ops = head.normal_cell.nonlocal_ops()
        ran = [op for op in cell_ops if op.last_adjacency]
        assert len(ran) == 2
        assert len(graphs) == 2
        for i in range(2):
            want = (ran[0].last_adjacency[i] + ran[1].last_adjacency[i]) / 2
            assert torch.allclose(graphs[i], want)
            assert graphs[i].shape == ((3, 3), (2, 2))[i]
        # the other Non-local ops did not run: their graphs were reset
        others = [
            op for cell in (head.normal_cell, *head.reduce_cells)
            for op in cell.nonlocal_ops() if all(op is not r for r in ran)
        ]
        assert len(others) == 7
        assert all(op.last_adjacency == [] for op in others)

        # no Non-local op in the ALB: the ALBr ones that ran
        head.set_sampled_genotypes(
            dict(normal=_B2_NO_GRAPH, reduce=_B2_GRAPH))
        head.forward_features(x, [3, 2])
        ran = [
            op for cell in head.reduce_cells for op in cell.nonlocal_ops()
            if op.last_adjacency
        ]
        assert len(ran) == 4
        for i in range(2):
            want = sum(op.last_adjacency[i] for op in ran) / 4
            assert torch.allclose(head.last_adjacency[i], want)

        # none at all: no graph
        head.set_sampled_genotypes(
            dict(normal=_B2_NO_GRAPH, reduce=_B2_NO_GRAPH))
        head.forward_features(x, [3, 2])
        assert head.last_adjacency == []
        with pytest.raises(ValueError, match=r"genotypes\['reduce'\]"):
            head.set_sampled_genotypes(
                dict(normal=_B2_GRAPH, reduce=dict(ops=[], concat=[1, 2])))
    finally:
        head.set_sampled_genotypes(None)
    assert head.sampled_genotypes is None
    # back to the mixture
    with torch.no_grad():
        got = head.forward_features(x, [3, 2])
        y = head.normal_cell(head.stem(x), [3, 2], head.arch_alpha_normal)
        for cell in head.reduce_cells:
            y = cell(y, [3, 2], head.arch_alpha_reduce)
    assert torch.allclose(got, y.mean(dim=(2, 3)), atol=1e-6)


def test_sampled_genotypes_are_checked():
    """Paper Table 6 "random ALB": sampling needs a search head; None
    returns to the mixture."""
    head = MODELS.build(_head_cfg())
    with pytest.raises(
            ValueError,
            match=r'^set_sampled_genotypes needs a search head '
            r'\(search=True\)$'):
        head.set_sampled_genotypes(DEFAULT_ALB_GENOTYPES)
    head.set_sampled_genotypes(None)
    assert head.sampled_genotypes is None


class _RecordingLinear(torch.nn.Linear):
    """A predictor that records its builds in a list of its config."""

    def __init__(self, in_features, out_features, builds):
        super().__init__(in_features, out_features)
        builds.append(in_features)


def test_predictor_configs_are_deep_copied():
    """Paper "Auto-lesion Block": rebuilding the predictors for P inputs
    leaves the head's predictor configs as given."""
    head = MODELS.build(
        _head_cfg(
            cls_predictor_cfg=dict(type=_RecordingLinear, builds=[]),
            reg_predictor_cfg=dict(type=_RecordingLinear, builds=[])))
    assert head.fc_cls.in_features == head.fc_reg.in_features == 32
    # the rebuild for P = 32 inputs went to a copy (mmdet's own first
    # build, for 8 x 5 x 5 inputs, shares the list)
    assert 32 not in head.cls_predictor_cfg['builds']
    assert 32 not in head.reg_predictor_cfg['builds']
