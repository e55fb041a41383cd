# Copyright (c) mmlesion contributors. All rights reserved.
import copy

import pytest
import torch

from mmlesion.methods.elixirnet.models import (ALB_OP_NAMES, ALBCell, MixedOp,
                                               NonLocalGraph,
                                               normalize_genotype)

GENOTYPE = dict(
    ops=[('non_local', 0), ('dil_conv_3x3_d3', 0), ('dil_conv_3x3_d5', 0),
         ('sep_conv_3x3', 1), ('sep_conv_1x3_3x1', 1), ('skip_connect', 0),
         ('avg_pool_3x3', 2), ('skip_connect', 3)],
    concat=[1, 2, 3, 4])


def _x(num_rois=(2, 3), channels=16, size=7):
    torch.manual_seed(0)
    return torch.randn(sum(num_rois), channels, size, size)


@pytest.mark.parametrize('size', [7, 14])
def test_discrete_alb_keeps_shape(size):
    cell = ALBCell(16, 16, reduction=False, genotype=GENOTYPE)
    assert cell.branch_channels == 4 and cell.project is None
    out = cell(_x(size=size), [2, 3])
    assert out.shape == (5, 16, size, size)
    assert len(cell.nonlocal_ops()) == 1
    assert [tuple(g.shape)
            for g in cell.nonlocal_ops()[0].last_adjacency] == [(2, 2), (3, 3)]


@pytest.mark.parametrize('size,expected', [(7, 4), (14, 7), (4, 2)])
def test_discrete_albr_halves_size_doubles_channels(size, expected):
    cell = ALBCell(16, 32, reduction=True, genotype=GENOTYPE)
    x = _x(size=size).requires_grad_(True)
    out = cell(x, [2, 3])
    assert out.shape == (5, 32, expected, expected)
    out.sum().backward()
    assert x.grad.abs().sum() > 0
    # ops reading the cell input are strided, the others are not
    strides = {
        (name, index): getattr(op, 'stride', None)
        for (name, index), op in zip(cell.genotype()['ops'], cell.ops)
    }
    assert strides[('non_local', 0)] == 2
    assert strides[('avg_pool_3x3', 2)] is None  # plain stride-1 pooling
    assert cell.ops[6].pool.stride == 1


def test_concat_subset_gets_projection():
    genotype = dict(GENOTYPE, concat=[3, 4])
    cell = ALBCell(16, 16, genotype=genotype)
    assert cell.project is not None
    assert cell(_x(), [2, 3]).shape == (5, 16, 7, 7)


def test_genotype_accepts_lists_and_validates():
    as_lists = dict(
        ops=[list(op) for op in GENOTYPE['ops']], concat=[1, 2, 3, 4])
    assert normalize_genotype(as_lists) == GENOTYPE
    assert normalize_genotype(
        dict(ops=GENOTYPE['ops']))['concat'] == [1, 2, 3, 4]
    bad = copy.deepcopy(GENOTYPE)
    bad['ops'][3] = ('conv_9x9', 1)
    with pytest.raises(ValueError, match=r"\['ops'\]\[3\]: unknown operation"):
        ALBCell(16, 16, genotype=bad)
    bad = copy.deepcopy(GENOTYPE)
    bad['ops'][2] = ('skip_connect', 2)  # branch 2 may read 0 or 1
    with pytest.raises(ValueError, match='branch 2 may only read'):
        normalize_genotype(bad)
    with pytest.raises(ValueError, match='2 entries per branch'):
        normalize_genotype(dict(ops=GENOTYPE['ops'][:6]))
    with pytest.raises(ValueError, match='concat'):
        normalize_genotype(dict(GENOTYPE, concat=[0, 1]))
    with pytest.raises(ValueError, match='exactly one'):
        ALBCell(16, 16)
    with pytest.raises(ValueError, match='divisible'):
        ALBCell(16, 18, genotype=GENOTYPE)


@pytest.mark.parametrize('reduction', [False, True])
def test_search_cell_forward_and_alpha_gradient(reduction):
    cell = ALBCell(16, 32 if reduction else 16, reduction, search=True)
    assert len(cell.edges) == cell.num_edges == 10
    assert all(isinstance(e, MixedOp) for e in cell.edges)
    names = [n for n, _ in cell.named_parameters() if 'arch_alpha' in n]
    assert names == ['arch_alpha']
    assert cell.arch_alpha.shape == (10, len(ALB_OP_NAMES))
    out = cell(_x(), [2, 3])
    assert out.shape == ((5, 32, 4, 4) if reduction else (5, 16, 7, 7))
    out.pow(2).mean().backward()
    assert cell.arch_alpha.grad is not None
    assert cell.arch_alpha.grad.abs().sum() > 0
    # one graph per edge (each mixed edge has a non_local path)
    assert len(cell.nonlocal_ops()) == 10


def _alpha_with_known_genotype():
    idx = {name: k for k, name in enumerate(ALB_OP_NAMES)}
    alpha = torch.zeros(10, len(ALB_OP_NAMES))
    alpha[:, idx['none']] = 10.  # 'none' is never chosen
    alpha[0, idx['sep_conv_3x3']] = 5.  # branch 1, single edge: top-2 ops
    alpha[0, idx['non_local']] = 4.
    alpha[1, idx['dil_conv_3x3_d3']] = 3.  # branch 2: edges 1 (0) and 2 (1)
    alpha[2, idx['skip_connect']] = 6.
    alpha[3, idx['avg_pool_3x3']] = 1.  # branch 3: edges 3..5, keep 4 and 5
    alpha[4, idx['sep_conv_5x5']] = 4.
    alpha[5, idx['dil_conv_3x3_d5']] = 5.
    alpha[6, idx['sep_conv_1x3_3x1']] = 7.  # branch 4: edges 6..9
    alpha[9, idx['non_local']] = 6.
    expected = dict(
        ops=[('sep_conv_3x3', 0), ('non_local', 0), ('dil_conv_3x3_d3', 0),
             ('skip_connect', 1), ('sep_conv_5x5', 1), ('dil_conv_3x3_d5', 2),
             ('sep_conv_1x3_3x1', 0), ('non_local', 3)],
        concat=[1, 2, 3, 4])
    return alpha, expected


def test_genotype_derivation_darts_rule_and_build():
    cell = ALBCell(16, 32, reduction=True, search=True)
    alpha, expected = _alpha_with_known_genotype()
    with torch.no_grad():
        cell.arch_alpha.copy_(alpha)
    genotype = cell.genotype()
    assert genotype == expected
    discrete = ALBCell(16, 32, reduction=True, genotype=genotype)
    assert discrete(_x(), [2, 3]).shape == (5, 32, 4, 4)
    assert discrete.genotype() == expected
    assert sum(isinstance(op, NonLocalGraph) for op in discrete.ops) == 2


def test_shared_alpha_cells():
    cell = ALBCell(16, 32, True, search=True, own_arch_alpha=False)
    assert not [n for n, _ in cell.named_parameters() if 'arch_alpha' in n]
    alpha, expected = _alpha_with_known_genotype()
    assert cell(_x(), [2, 3], arch_alpha=alpha).shape == (5, 32, 4, 4)
    assert cell.genotype(alpha) == expected
    with pytest.raises(ValueError, match='own_arch_alpha=False'):
        cell(_x(), [2, 3])
    with pytest.raises(ValueError, match='shape'):
        cell.genotype(torch.zeros(3, 9))


def _edge_op(cell, branch, index, op):
    """The shared module of ``op`` on the mixed edge ``index -> branch``."""
    offset = branch * (branch + 1) // 2
    return cell.edges[offset + index].ops[cell.op_names.index(op)]


def test_search_cell_runs_a_genotype_on_shared_weights():
    """genotype= (random search with weight sharing, Table 6 "random ALB")
    equals the discrete cell holding the same edge weights; alpha and the
    operations outside the genotype get no gradient."""
    torch.manual_seed(0)
    cell = ALBCell(16, 32, reduction=True, search=True)
    discrete = ALBCell(16, 32, reduction=True, genotype=GENOTYPE,
                       norm_cfg=dict(type='BN', affine=False))
    shared = {f'preprocess.{k}': v
              for k, v in cell.preprocess.state_dict().items()}
    for k, (op, index) in enumerate(GENOTYPE['ops']):
        src = _edge_op(cell, k // 2, index, op)
        shared.update(
            {f'ops.{k}.{n}': v for n, v in src.state_dict().items()})
    target = discrete.state_dict()
    assert set(target) <= set(shared)
    discrete.load_state_dict({k: shared[k] for k in target})
    cell.eval()
    discrete.eval()
    x = _x()
    out = cell(x, [2, 3], genotype=GENOTYPE)
    assert torch.allclose(out, discrete(x, [2, 3]), rtol=1e-4, atol=1e-5)

    cell.train()
    cell(x, [2, 3], genotype=GENOTYPE).pow(2).mean().backward()
    assert cell.arch_alpha.grad is None
    used = {id(p) for k, (op, index) in enumerate(GENOTYPE['ops'])
            for p in _edge_op(cell, k // 2, index, op).parameters()}
    for name, p in cell.edges.named_parameters():
        assert (p.grad is not None) == (id(p) in used), name
    with pytest.raises(ValueError, match='not both'):
        cell(x, [2, 3], arch_alpha=cell.arch_alpha.detach(),
             genotype=GENOTYPE)
    with pytest.raises(ValueError, match='all branches'):
        cell(x, [2, 3], genotype=dict(GENOTYPE, concat=[1, 2]))
    with pytest.raises(ValueError, match='only used by search'):
        discrete(x, [2, 3], genotype=GENOTYPE)


def test_cells_with_the_darts_operation_set():
    """Table 6 "ALB w/o our search space": search and discrete cells over
    DARTS_OP_NAMES; the paper's set rejects DARTS' operations."""
    from mmlesion.methods.elixirnet.models.alb_ops import DARTS_OP_NAMES
    cell = ALBCell(16, 32, True, search=True, op_names=DARTS_OP_NAMES)
    assert cell.arch_alpha.shape == (10, 8)
    assert cell(_x(), [2, 3]).shape == (5, 32, 4, 4)
    assert not cell.nonlocal_ops()
    genotype = cell.genotype()
    assert all(op in DARTS_OP_NAMES and op != 'none'
               for op, _ in genotype['ops'])
    darts = dict(ops=[('darts_sep_conv_3x3', 0), ('max_pool_3x3', 0),
                      ('darts_dil_conv_5x5', 1), ('skip_connect', 0),
                      ('darts_sep_conv_5x5', 2), ('avg_pool_3x3', 1),
                      ('darts_dil_conv_3x3', 3), ('none', 0)])
    discrete = ALBCell(16, 16, genotype=darts, op_names=DARTS_OP_NAMES)
    assert discrete(_x(), [2, 3]).shape == (5, 16, 7, 7)
    with pytest.raises(ValueError, match='unknown operation'):
        ALBCell(16, 16, genotype=darts)  # default op_names: the paper's 9
    with pytest.raises(ValueError, match='Unknown operations'):
        ALBCell(16, 16, search=True, op_names=('conv_7x1_1x7', ))
