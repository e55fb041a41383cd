# Copyright (c) mmlesion contributors. All rights reserved.
"""3D DenseNet building blocks of the 3D Aggregated Faster R-CNN (Table I).

Table I of Zhang et al., "3D Aggregated Faster R-CNN for General Lesion
Detection", uses DenseNet notation: every "conv" is the sequence
BN-ReLU-Conv (pre-activation), a dense layer is a ``1x1x1`` bottleneck conv
to ``4 * growth`` channels followed by a ``3x3x3`` conv to ``growth``
channels whose output is concatenated to its input, and a transition is a
``1x1x1`` conv (optionally followed by pooling).
"""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmdet.utils import OptConfigType

NORM3D = dict(type='BN3d', requires_grad=True)
CONV3D = dict(type='Conv3d')


def preact_conv3d(in_channels: int,
                  out_channels: int,
                  kernel_size: int,
                  norm_cfg: OptConfigType = None) -> ConvModule:
    """BN-ReLU-Conv3d (DenseNet's "conv"), same padding, no conv bias.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): cubic kernel size (odd).
        norm_cfg (dict, optional): norm layer. Defaults to ``BN3d``.

    Returns:
        ConvModule: the module.
    """
    return ConvModule(
        in_channels,
        out_channels,
        kernel_size,
        padding=kernel_size // 2,
        bias=False,
        conv_cfg=CONV3D,
        norm_cfg=norm_cfg or NORM3D,
        act_cfg=dict(type='ReLU'),
        order=('norm', 'act', 'conv'))


class DenseLayer3D(nn.Module):
    """One DenseNet-B layer: BN-ReLU-Conv1 (4g) + BN-ReLU-Conv3 (g), concat.

    Args:
        in_channels (int): input channels.
        growth_rate (int): channels added by the layer (16 in the paper).
        bottleneck_factor (int): the 1x1x1 conv has
            ``bottleneck_factor * growth_rate`` channels (4 in DenseNet).
        norm_cfg (dict, optional): norm layer.
    """

    def __init__(self,
                 in_channels: int,
                 growth_rate: int,
                 bottleneck_factor: int = 4,
                 norm_cfg: OptConfigType = None) -> None:
        super().__init__()
        mid = bottleneck_factor * growth_rate
        self.conv1 = preact_conv3d(in_channels, mid, 1, norm_cfg)
        self.conv2 = preact_conv3d(mid, growth_rate, 3, norm_cfg)
        self.out_channels = in_channels + growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the new features to ``x`` along channels."""
        return torch.cat([x, self.conv2(self.conv1(x))], dim=1)


class DenseBlock3D(nn.Sequential):
    """``num_layers`` dense layers ("[1x1x1 conv, 3x3x3 conv] x 2").

    Args:
        in_channels (int): input channels.
        num_layers (int): dense layers (2 in Table I).
        growth_rate (int): growth rate.
        norm_cfg (dict, optional): norm layer.
    """

    def __init__(self,
                 in_channels: int,
                 num_layers: int,
                 growth_rate: int,
                 norm_cfg: OptConfigType = None) -> None:
        layers = []
        channels = in_channels
        for _ in range(num_layers):
            layer = DenseLayer3D(channels, growth_rate, norm_cfg=norm_cfg)
            layers.append(layer)
            channels = layer.out_channels
        super().__init__(*layers)
        self.out_channels = channels


class Bottleneck3D(BaseModule):
    """Pre-activation bottleneck with an identity shortcut (Table I's
    "Bottle Neck" in the detector heads and in Local Magnification).

    BN-ReLU-Conv1x1x1 (``channels -> mid_channels``), BN-ReLU-Conv3x3x3
    (``mid_channels -> channels``), plus the input. The paper does not give
    the inner width; ``mid_channels`` defaults to ``channels // 2``.

    Args:
        channels (int): input and output channels.
        mid_channels (int, optional): inner channels.
        norm_cfg (dict, optional): norm layer.
        init_cfg (dict, optional): initialisation.
    """

    def __init__(self,
                 channels: int,
                 mid_channels: Optional[int] = None,
                 norm_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        mid = mid_channels or max(channels // 2, 1)
        self.conv1 = preact_conv3d(channels, mid, 1, norm_cfg)
        self.conv2 = preact_conv3d(mid, channels, 3, norm_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual bottleneck."""
        return x + self.conv2(self.conv1(x))
