# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch

from mmlesion.methods.elixirnet.models import ALB_OP_NAMES, build_alb_op
from mmlesion.methods.elixirnet.models.alb_ops import (
    DARTS_OP_NAMES, KNOWN_OP_NAMES, DartsDilConv, DartsSepConv,
    FactorizedReduce, MaxPool3x3, SepConv)

PAPER_OPS = ('none', 'skip_connect', 'avg_pool_3x3', 'sep_conv_3x3',
             'sep_conv_5x5', 'sep_conv_1x3_3x1', 'dil_conv_3x3_d3',
             'dil_conv_3x3_d5', 'non_local')


def test_op_names_are_the_papers_nine():
    assert ALB_OP_NAMES == PAPER_OPS


@pytest.mark.parametrize('name', ALB_OP_NAMES)
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('size', [7, 14])
def test_op_shape_and_gradient(name, stride, size):
    torch.manual_seed(0)
    op = build_alb_op(name, 8, stride)
    x = torch.randn(5, 8, size, size, requires_grad=True)
    x_before = x.detach().clone()
    out = op(x, [2, 3])
    expected = size if stride == 1 else (size + 1) // 2
    assert out.shape == (5, 8, expected, expected)
    # the input feeds other operations of the cell: it must not be modified
    assert torch.equal(x.detach(), x_before)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    params = [p for p in op.parameters() if p.requires_grad]
    if name == 'none':
        assert torch.count_nonzero(out) == 0
        assert torch.count_nonzero(x.grad) == 0
    else:
        assert x.grad.abs().sum() > 0
    for p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all()
    if name in ('sep_conv_3x3', 'sep_conv_5x5', 'sep_conv_1x3_3x1',
                'dil_conv_3x3_d3', 'dil_conv_3x3_d5', 'non_local'):
        assert params and any(p.grad.abs().sum() > 0 for p in params)


@pytest.mark.parametrize('name', ALB_OP_NAMES)
def test_op_handles_no_rois(name):
    op = build_alb_op(name, 8, 2)
    out = op(torch.randn(0, 8, 7, 7), [0, 0])
    assert out.shape == (0, 8, 4, 4)


def test_parameter_free_ops_ignore_num_rois():
    x = torch.randn(3, 4, 6, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(build_alb_op('skip_connect', 4, 1)(x, None), x)
    pooled = build_alb_op('avg_pool_3x3', 4, 1)(x, None)
    # 3x3 mean excluding padding at the top-left corner (2x2 valid taps);
    # the pooling kernel and Tensor.mean sum in another order, so a mean
    # near 0 may differ by float32 rounding (1.5e-8 seen), over allclose's
    # default 1e-8
    assert torch.allclose(pooled[:, :, 0, 0], x[:, :, :2, :2].mean((2, 3)),
                          atol=1e-6)


def test_convolutional_ops_use_relu_conv_bn_order():
    op = build_alb_op('dil_conv_3x3_d5', 4, 1)
    assert op.conv.order == ('act', 'conv', 'norm')
    assert op.conv.conv.dilation == (5, 5)
    assert op.conv.conv.groups == 1  # atrous conv is dense, as in the paper
    sep = build_alb_op('sep_conv_5x5', 4, 1)
    assert sep.conv.depthwise_conv.conv.groups == 4
    assert sep.conv.depthwise_conv.conv.kernel_size == (5, 5)
    assert sep.conv.pointwise_conv.with_norm


def test_factorized_reduce_odd_size_and_channels():
    op = FactorizedReduce(5)
    out = op(torch.randn(2, 5, 7, 7), None)
    assert out.shape == (2, 5, 4, 4)
    with pytest.raises(ValueError, match='at least 2 channels'):
        FactorizedReduce(1)


def test_strided_none_is_zero_of_reduced_size():
    out = build_alb_op('none', 4, 2)(torch.randn(2, 4, 5, 5), None)
    assert out.shape == (2, 4, 3, 3) and torch.count_nonzero(out) == 0


def test_bad_name_or_stride():
    with pytest.raises(ValueError, match='Unknown ALB operation'):
        build_alb_op('conv_7x1_1x7', 4, 1)
    with pytest.raises(ValueError, match='stride'):
        build_alb_op('sep_conv_3x3', 4, 3)


# --------------------------------------------------------------------------
# DARTS' operation set (ElixirNet Table 6, "ALB w/o our search space")
DARTS_ONLY = [n for n in DARTS_OP_NAMES if n not in ALB_OP_NAMES]


def test_darts_op_names_are_darts_primitives():
    """DARTS' 8 CNN primitives in their order; the convolutions that differ
    from ours carry a ``darts_`` prefix, the shared names are the identical
    parameter-free operations."""
    assert DARTS_OP_NAMES == ('none', 'max_pool_3x3', 'avg_pool_3x3',
                              'skip_connect', 'darts_sep_conv_3x3',
                              'darts_sep_conv_5x5', 'darts_dil_conv_3x3',
                              'darts_dil_conv_5x5')
    shared = set(DARTS_OP_NAMES) & set(ALB_OP_NAMES)
    assert shared == {'none', 'avg_pool_3x3', 'skip_connect'}
    assert KNOWN_OP_NAMES[:len(ALB_OP_NAMES)] == ALB_OP_NAMES
    assert set(KNOWN_OP_NAMES) == set(ALB_OP_NAMES) | set(DARTS_OP_NAMES)


@pytest.mark.parametrize('name', DARTS_ONLY)
@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('size', [7, 14])
def test_darts_op_shape_and_gradient(name, stride, size):
    torch.manual_seed(0)
    op = build_alb_op(name, 8, stride)
    x = torch.randn(5, 8, size, size, requires_grad=True)
    x_before = x.detach().clone()
    out = op(x, [2, 3])
    expected = size if stride == 1 else (size + 1) // 2
    assert out.shape == (5, 8, expected, expected)
    assert torch.equal(x.detach(), x_before)  # no in-place ReLU on the input
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad.abs().sum() > 0
    for p in op.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_darts_sep_conv_is_two_stacked_halves():
    """DARTS' SepConv: (ReLU, dw kxk, pw 1x1, BN) twice, stride on the
    first; ours (sep_conv_kxk) is one half."""
    op = build_alb_op('darts_sep_conv_5x5', 4, 2)
    assert isinstance(op, DartsSepConv)
    for half, stride in ((op.half_1, 2), (op.half_2, 1)):
        assert isinstance(half, SepConv)
        dw = half.conv.depthwise_conv
        assert dw.conv.groups == 4 and dw.conv.kernel_size == (5, 5)
        assert dw.conv.stride == (stride, stride)
        assert dw.order == ('act', 'conv', 'norm') and dw.with_activation
        assert half.conv.pointwise_conv.conv.kernel_size == (1, 1)
        assert half.conv.pointwise_conv.with_norm
    ours = build_alb_op('sep_conv_5x5', 4, 1)
    n_ours = sum(p.numel() for p in ours.parameters())
    assert sum(p.numel() for p in op.parameters()) == 2 * n_ours


@pytest.mark.parametrize('kernel', [3, 5])
def test_darts_dil_conv_is_separable_with_dilation_2(kernel):
    op = build_alb_op(f'darts_dil_conv_{kernel}x{kernel}', 4, 1)
    assert isinstance(op, DartsDilConv)
    dw = op.conv.depthwise_conv.conv
    assert dw.groups == 4 and dw.dilation == (2, 2)
    assert dw.kernel_size == (kernel, kernel)
    assert dw.padding == (2 * (kernel // 2), ) * 2
    assert op.conv.depthwise_conv.with_activation  # ReLU first
    assert op.conv.pointwise_conv.with_norm  # BN last


def test_max_pool_3x3():
    x = torch.randn(2, 3, 6, 6)
    out = build_alb_op('max_pool_3x3', 3, 1)(x, None)
    assert isinstance(build_alb_op('max_pool_3x3', 3, 1), MaxPool3x3)
    assert torch.equal(out[:, :, 0, 0], x[:, :, :2, :2].amax((2, 3)))
    # the search (mixed) variant appends an affine-free BN, as DARTS
    op = build_alb_op('max_pool_3x3', 3, 2,
                      pool_norm_cfg=dict(type='BN', affine=False))
    assert isinstance(op.norm, torch.nn.BatchNorm2d) and not op.norm.affine
