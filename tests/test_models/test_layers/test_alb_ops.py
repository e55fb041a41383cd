# Copyright (c) mmlesion contributors. All rights reserved.
import pytest
import torch

from mmlesion.models.layers import ALB_OP_NAMES, build_alb_op
from mmlesion.models.layers.alb_ops import FactorizedReduce

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
    x = torch.randn(3, 4, 6, 6)
    assert torch.equal(build_alb_op('skip_connect', 4, 1)(x, None), x)
    pooled = build_alb_op('avg_pool_3x3', 4, 1)(x, None)
    # 3x3 mean excluding padding at the top-left corner (2x2 valid taps)
    assert torch.allclose(pooled[:, :, 0, 0], x[:, :, :2, :2].mean((2, 3)))


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
        build_alb_op('max_pool_3x3', 4, 1)
    with pytest.raises(ValueError, match='stride'):
        build_alb_op('sep_conv_3x3', 4, 3)
