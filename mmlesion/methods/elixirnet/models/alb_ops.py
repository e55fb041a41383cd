# Copyright (c) mmlesion contributors. All rights reserved.
"""Candidate operations of the Auto-lesion Block (ElixirNet, "Search Space
for ALB"): the paper's 9 operations (:data:`ALB_OP_NAMES`) and, for its
Table 6 row "ALB w/o our search space", DARTS' set (:data:`DARTS_OP_NAMES`,
Liu, Simonyan and Yang 2019; its four convolutions carry a ``darts_``
prefix because they differ from ElixirNet's of similar names).

Conventions shared by every operation built by :func:`build_alb_op`:

* ``forward(x, num_rois)``: ``x`` is ``(R, C, H, W)``, the RoI features of
  all images of the batch stacked in image order; ``num_rois`` holds the
  number of RoIs of each image. Only ``non_local`` uses it (it may be
  ``None`` for the others).
* Channels are kept. ``stride=1`` keeps the spatial size; ``stride=2`` (the
  cell-input edges of the reduction cell ALBr, DARTS convention) gives
  ``ceil(H / 2) x ceil(W / 2)`` for every operation, odd sizes included.
* Convolutions use the paper's ReLU-Conv-BN order with a **non in-place**
  ReLU: the same input tensor feeds several operations of a cell.
* Depthwise-separable operations follow DARTS' ``SepConv``/``DilConv``
  half (no norm between the two convs). The paper lists the two atrous
  convolutions without "depthwise-separable", so they are dense.
"""
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import (ConvModule, DepthwiseSeparableConvModule,
                      build_norm_layer)
from torch import Tensor

from .nonlocal_graph import NonLocalGraph

#: ElixirNet's search space ("Search Space for ALB", 9 operations).
ALB_OP_NAMES = ('none', 'skip_connect', 'avg_pool_3x3', 'sep_conv_3x3',
                'sep_conv_5x5', 'sep_conv_1x3_3x1', 'dil_conv_3x3_d3',
                'dil_conv_3x3_d5', 'non_local')

#: DARTS' CNN operation set (``PRIMITIVES``, in their order) for ElixirNet's
#: Table 6 "ALB w/o our search space".
DARTS_OP_NAMES = ('none', 'max_pool_3x3', 'avg_pool_3x3', 'skip_connect',
                  'darts_sep_conv_3x3', 'darts_sep_conv_5x5',
                  'darts_dil_conv_3x3', 'darts_dil_conv_5x5')

#: Every operation :func:`build_alb_op` builds: ours, then DARTS-only ones.
KNOWN_OP_NAMES = ALB_OP_NAMES + tuple(
    name for name in DARTS_OP_NAMES if name not in ALB_OP_NAMES)

_RELU = dict(type='ReLU', inplace=False)
_ORDER = ('act', 'conv', 'norm')


def _check_stride(stride: int) -> None:
    if stride not in (1, 2):
        raise ValueError(
            f'ALB operations support stride 1 or 2, got stride={stride}')


class Zero(nn.Module):
    """The ``none`` operation: no connection, a zero tensor.

    Args:
        stride (int): 1 keeps the size, 2 returns ``ceil(H/2) x ceil(W/2)``.
    """

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        _check_stride(stride)
        self.stride = stride

    def forward(self,
                x: Tensor,
                num_rois: Optional[Sequence[int]] = None) -> Tensor:
        """Return zeros shaped like the (strided) input."""
        if self.stride == 1:
            return x.mul(0.)
        return x[:, :, ::self.stride, ::self.stride].mul(0.)


class Identity(nn.Module):
    """The ``skip_connect`` operation with stride 1."""

    def forward(self,
                x: Tensor,
                num_rois: Optional[Sequence[int]] = None) -> Tensor:
        """Return the input unchanged."""
        return x


class FactorizedReduce(nn.Module):
    """``skip_connect`` with stride 2 (DARTS' FactorizedReduce).

    ReLU, then two 1x1 stride-2 convolutions, the second applied to the input
    shifted by one pixel (zero-padded bottom/right so odd sizes work), their
    outputs concatenated to ``channels`` channels, then a norm layer.

    Args:
        channels (int): input and output channels (at least 2).
        norm_cfg (dict, optional): norm layer config. Defaults to BN.
    """

    def __init__(
        self, channels: int,
        norm_cfg: Optional[dict] = dict(type='BN')) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError('FactorizedReduce needs at least 2 channels, got '
                             f'{channels}')
        half = channels // 2
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(channels, half, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(
            channels, channels - half, 1, stride=2, bias=False)
        self.norm = build_norm_layer(norm_cfg, channels)[1] \
            if norm_cfg is not None else nn.Identity()

    def forward(self,
                x: Tensor,
                num_rois: Optional[Sequence[int]] = None) -> Tensor:
        """Halve the resolution, keep the channels."""
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        out = torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1)
        return self.norm(out)


class _Pool3x3(nn.Module):
    """A 3x3 pooling (:meth:`_pool`), then an optional norm layer."""

    def __init__(self,
                 channels: int,
                 stride: int = 1,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        _check_stride(stride)
        self.pool = self._pool(stride)
        self.norm = build_norm_layer(norm_cfg, channels)[1] \
            if norm_cfg is not None else nn.Identity()

    def forward(self,
                x: Tensor,
                num_rois: Optional[Sequence[int]] = None) -> Tensor:
        """Pool (and normalise)."""
        return self.norm(self.pool(x))


class AvgPool3x3(_Pool3x3):
    """``avg_pool_3x3``: 3x3 average pooling, padding excluded from the mean.

    Args:
        channels (int): channels (only used by the optional norm).
        stride (int): 1 or 2.
        norm_cfg (dict, optional): a norm layer after the pooling (DARTS'
            affine-free BN in mixed operations; None in discrete cells).
    """

    @staticmethod
    def _pool(stride: int) -> nn.Module:
        return nn.AvgPool2d(
            3, stride=stride, padding=1, count_include_pad=False)


class SepConv(nn.Module):
    """``sep_conv_kxk``: ReLU, depthwise kxk conv, pointwise conv, BN.

    Built from mmcv's ``DepthwiseSeparableConvModule`` (the ReLU in the
    depthwise ``ConvModule``, the BN in the pointwise one, ReLU-Conv-BN).

    Args:
        channels (int): input and output channels.
        kernel_size (int): 3 or 5 in the search space.
        stride (int): 1 or 2.
        norm_cfg (dict): norm layer config.
        dilation (int): of the depthwise conv (padding ``dilation * (k //
            2)``); 1 here, 2 in :class:`DartsDilConv`.
    """

    def __init__(self,
                 channels: int,
                 kernel_size: int,
                 stride: int = 1,
                 norm_cfg: dict = dict(type='BN'),
                 dilation: int = 1) -> None:
        super().__init__()
        _check_stride(stride)
        self.conv = DepthwiseSeparableConvModule(
            channels,
            channels,
            kernel_size,
            stride=stride,
            padding=dilation * (kernel_size // 2),
            dilation=dilation,
            bias=False,
            order=_ORDER,
            dw_norm_cfg=None,
            dw_act_cfg=_RELU,
            pw_norm_cfg=norm_cfg,
            pw_act_cfg=None)

    def forward(self,
                x: Tensor,
                num_rois: Optional[Sequence[int]] = None) -> Tensor:
        """Apply the separable convolution."""
        return self.conv(x)


class SepConv1x3And3x1(nn.Module):
    """``sep_conv_1x3_3x1``: ReLU, depthwise 1x3, depthwise 3x1, pointwise,
    BN (the inception-like asymmetric factorisation the paper describes for
    ALBr).

    With stride 2 the 1x3 conv strides along the width and the 3x1 conv along
    the height (DARTS' ``conv_7x1_1x7`` convention).

    Args:
        channels (int): input and output channels.
        stride (int): 1 or 2.
        norm_cfg (dict): norm layer config.
    """

    def __init__(self,
                 channels: int,
                 stride: int = 1,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        _check_stride(stride)
        self.conv_1x3 = ConvModule(
            channels,
            channels, (1, 3),
            stride=(1, stride),
            padding=(0, 1),
            groups=channels,
            bias=False,
            norm_cfg=None,
            act_cfg=_RELU,
            order=_ORDER)
        self.conv_3x1 = ConvModule(
            channels,
            channels, (3, 1),
            stride=(stride, 1),
            padding=(1, 0),
            groups=channels,
            bias=False,
            norm_cfg=None,
            act_cfg=None,
            order=_ORDER)
        self.pointwise_conv = ConvModule(
            channels,
            channels,
            1,
            norm_cfg=norm_cfg,
            act_cfg=None,
            order=_ORDER)

    def forward(self,
                x: Tensor,
                num_rois: Optional[Sequence[int]] = None) -> Tensor:
        """Apply the asymmetric separable convolution."""
        return self.pointwise_conv(self.conv_3x1(self.conv_1x3(x)))


class DilConv(nn.Module):
    """``dil_conv_3x3_dN``: ReLU, 3x3 atrous conv (dilation N), BN.

    A dense (not depthwise) convolution, as the paper lists it; padding equals
    the dilation so stride 1 keeps the size.

    Args:
        channels (int): input and output channels.
        dilation (int): 3 or 5 in the search space.
        stride (int): 1 or 2.
        norm_cfg (dict): norm layer config.
    """

    def __init__(self,
                 channels: int,
                 dilation: int,
                 stride: int = 1,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        _check_stride(stride)
        self.conv = ConvModule(
            channels,
            channels,
            3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            norm_cfg=norm_cfg,
            act_cfg=_RELU,
            order=_ORDER)

    def forward(self,
                x: Tensor,
                num_rois: Optional[Sequence[int]] = None) -> Tensor:
        """Apply the dilated convolution."""
        return self.conv(x)


class MaxPool3x3(_Pool3x3):
    """DARTS' ``max_pool_3x3``: ``MaxPool2d(3, stride, padding=1)``, with
    the arguments of :class:`AvgPool3x3`."""

    @staticmethod
    def _pool(stride: int) -> nn.Module:
        return nn.MaxPool2d(3, stride=stride, padding=1)


class DartsSepConv(nn.Module):
    """DARTS' ``sep_conv_kxk`` (``darts_sep_conv_kxk`` here): two stacked
    :class:`SepConv` halves, the first with the stride; the arguments of
    :class:`SepConv`."""

    def __init__(self,
                 channels: int,
                 kernel_size: int,
                 stride: int = 1,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        self.half_1 = SepConv(channels, kernel_size, stride, norm_cfg)
        self.half_2 = SepConv(channels, kernel_size, 1, norm_cfg)

    def forward(self,
                x: Tensor,
                num_rois: Optional[Sequence[int]] = None) -> Tensor:
        """Apply the two separable halves."""
        return self.half_2(self.half_1(x))


class DartsDilConv(SepConv):
    """DARTS' ``dil_conv_kxk`` (``darts_dil_conv_kxk`` here): a
    :class:`SepConv` half with dilation 2."""

    def __init__(self,
                 channels: int,
                 kernel_size: int,
                 stride: int = 1,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__(channels, kernel_size, stride, norm_cfg, dilation=2)


#: name -> operation of (channels, stride, norm_cfg, pool_norm_cfg)
_OP_FACTORIES: Dict[str, Callable[..., nn.Module]] = {
    'none': lambda c, s, norm, pool_norm: Zero(s),
    'skip_connect': lambda c, s, norm, pool_norm: Identity()
    if s == 1 else FactorizedReduce(c, norm),
    'avg_pool_3x3': lambda c, s, norm, pool_norm: AvgPool3x3(c, s, pool_norm),
    'sep_conv_3x3': lambda c, s, norm, pool_norm: SepConv(c, 3, s, norm),
    'sep_conv_5x5': lambda c, s, norm, pool_norm: SepConv(c, 5, s, norm),
    'sep_conv_1x3_3x1':
    lambda c, s, norm, pool_norm: SepConv1x3And3x1(c, s, norm),
    'dil_conv_3x3_d3': lambda c, s, norm, pool_norm: DilConv(c, 3, s, norm),
    'dil_conv_3x3_d5': lambda c, s, norm, pool_norm: DilConv(c, 5, s, norm),
    'non_local': lambda c, s, norm, pool_norm: NonLocalGraph(
        c, stride=s, norm_cfg=norm),
    # DARTS' operation set (Table 6 "ALB w/o our search space")
    'max_pool_3x3': lambda c, s, norm, pool_norm: MaxPool3x3(c, s, pool_norm),
    'darts_sep_conv_3x3':
    lambda c, s, norm, pool_norm: DartsSepConv(c, 3, s, norm),
    'darts_sep_conv_5x5':
    lambda c, s, norm, pool_norm: DartsSepConv(c, 5, s, norm),
    'darts_dil_conv_3x3':
    lambda c, s, norm, pool_norm: DartsDilConv(c, 3, s, norm),
    'darts_dil_conv_5x5':
    lambda c, s, norm, pool_norm: DartsDilConv(c, 5, s, norm),
}
assert tuple(_OP_FACTORIES) == KNOWN_OP_NAMES


def build_alb_op(name: str,
                 channels: int,
                 stride: int,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 pool_norm_cfg: Optional[dict] = None) -> nn.Module:
    """Build one candidate operation of the ALB search space.

    Args:
        name (str): one of :data:`KNOWN_OP_NAMES` (:data:`ALB_OP_NAMES`,
            the paper's, or :data:`DARTS_OP_NAMES`).
        channels (int): input and output channels.
        stride (int): 1 (ALB, and ALBr edges from earlier branches) or 2
            (ALBr edges from the cell input).
        norm_cfg (dict, optional): norm of the convolutional operations and of
            the Non-local output. Search cells use an affine-free BN (DARTS).
        pool_norm_cfg (dict, optional): norm appended to ``avg_pool_3x3``
            (DARTS does this in mixed operations only). Defaults to None.

    Returns:
        nn.Module: a module with ``forward(x, num_rois)``.
    """
    if name not in _OP_FACTORIES:
        raise ValueError(f'Unknown ALB operation {name!r}; expected one of '
                         f'{KNOWN_OP_NAMES}')
    _check_stride(stride)
    return _OP_FACTORIES[name](channels, stride, norm_cfg, pool_norm_cfg)
