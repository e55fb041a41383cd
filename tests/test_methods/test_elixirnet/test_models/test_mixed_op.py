# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch

from mmlesion.methods.elixirnet.models import ALB_OP_NAMES, MixedOp


@pytest.mark.parametrize('stride', [1, 2])
def test_mixed_op_shape_and_gradients(stride):
    torch.manual_seed(0)
    op = MixedOp(8, stride)
    assert op.op_names == ALB_OP_NAMES and len(op.ops) == 9
    x = torch.randn(5, 8, 7, 7, requires_grad=True)
    alpha = torch.zeros(len(ALB_OP_NAMES), requires_grad=True)
    out = op(x, alpha.softmax(0), [3, 2])
    expected = 7 if stride == 1 else 4
    assert out.shape == (5, 8, expected, expected)
    (out * torch.randn_like(out)).sum().backward()
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0
    # every operation receives gradient through the mixture
    for name, sub in zip(op.op_names, op.ops):
        for p in sub.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_mixed_op_is_weighted_sum():
    torch.manual_seed(0)
    op = MixedOp(4, 1, op_names=('skip_connect', 'avg_pool_3x3', 'none'))
    op.eval()
    x = torch.randn(3, 4, 5, 5)
    w = torch.tensor([0.2, 0.5, 0.3])
    expected = 0.2 * x + 0.5 * op.ops[1](x, None)
    assert torch.allclose(op(x, w, [3]), expected, atol=1e-6)
    one_hot = torch.tensor([1., 0., 0.])
    assert torch.allclose(op(x, one_hot, [3]), x)


def test_mixed_op_search_norms_are_affine_free():
    op = MixedOp(4, 1)
    for module in op.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert not module.affine
    # DARTS: pooling is followed by a norm in the mixture
    pool = op.ops[op.op_names.index('avg_pool_3x3')]
    assert isinstance(pool.norm, torch.nn.BatchNorm2d)


def test_mixed_op_checks_weights():
    op = MixedOp(4, 1, op_names=('skip_connect', 'none'))
    with pytest.raises(ValueError, match='expects 2 weights'):
        op(torch.randn(1, 4, 3, 3), torch.ones(3), [1])
