# Copyright (c) mmlesion contributors. All rights reserved.
"""DenseNet U-Net backbone of the 3D Aggregated Faster R-CNN (Table I)."""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmdet.registry import MODELS
from mmdet.utils import OptConfigType, OptMultiConfig
from .dense_block_3d import CONV3D, NORM3D, DenseBlock3D, preact_conv3d


@MODELS.register_module()
class DenseUNet3D(BaseModule):
    """U-Net with DenseNet blocks, Table I / Sec. III-A of Zhang et al.

    For a 128^3 input (1 mm isotropic):

    ==============  ===========================================  ========
    stage           layers                                       output
    ==============  ===========================================  ========
    PreBlock        3x3x3 conv, 3x3x3 conv, 2x2x2 max            64^3
    Encode (k)      [1x1x1 conv, 3x3x3 conv] x 2 (growth 16)     64/32/16
    Transition (k)  1x1x1 conv, 2x2x2 avg                        32/16/8
    Upsample (3)    2x2x2 deconv, concat Encode (3), 1x1x1 conv  16^3
    Decode (2)      [1x1x1 conv, 3x3x3 conv] x 2                 16^3
    Transition (2)  1x1x1 conv                 -> P8 (stride 8)  16^3
    Upsample (2)    2x2x2 deconv, concat Encode (2), 1x1x1 conv  32^3
    Decode (1)      [1x1x1 conv, 3x3x3 conv] x 2                 32^3
    Transition (1)  1x1x1 conv                 -> P4 (stride 4)  32^3
    ==============  ===========================================  ========

    The stride-16 output is the encoder's Transition (3). All pyramid
    outputs have ``out_channels`` (32) channels (Sec. III-A); every conv but
    the PreBlock's (Conv-BN-ReLU) is BN-ReLU-Conv (Table I's caption). The
    PreBlock and transition widths are the paper's open choices.

    Args:
        in_channels (int): image channels. Defaults to 1.
        base_channels (int): PreBlock channels. Defaults to 32.
        growth_rate (int): dense growth rate. Defaults to 16.
        num_dense_layers (int): dense layers per Encode / Decode block.
            Defaults to 2.
        out_channels (int): channels of every transition and pyramid
            output. Defaults to 32.
        out_indices (Sequence[int]): which of (P4, P8, P16) to return.
        norm_cfg (dict, optional): norm layer. Defaults to ``BN3d``.
        init_cfg (dict or list[dict], optional): initialisation.
    """

    strides = (4, 8, 16)

    def __init__(self,
                 in_channels: int = 1,
                 base_channels: int = 32,
                 growth_rate: int = 16,
                 num_dense_layers: int = 2,
                 out_channels: int = 32,
                 out_indices: Sequence[int] = (0, 1, 2),
                 norm_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if min(base_channels, growth_rate, out_channels,
               num_dense_layers) < 1:
            raise ValueError('DenseUNet3D: base_channels, growth_rate, '
                             'out_channels and num_dense_layers must be >= 1')
        if not set(out_indices) <= {0, 1, 2}:
            raise ValueError(f'out_indices must be a subset of (0, 1, 2), '
                             f'got {out_indices}')
        norm_cfg = norm_cfg or NORM3D
        self.out_indices = tuple(out_indices)
        self.out_channels = out_channels

        def conv_bn_relu(cin: int, cout: int) -> ConvModule:
            return ConvModule(
                cin, cout, 3, padding=1, bias=False, conv_cfg=CONV3D,
                norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'))

        self.preblock = nn.Sequential(
            conv_bn_relu(in_channels, base_channels),
            conv_bn_relu(base_channels, base_channels),
            nn.MaxPool3d(2))
        self.encodes = nn.ModuleList()
        self.enc_transitions = nn.ModuleList()
        channels = base_channels
        skip_channels = []
        for _ in range(3):
            block = DenseBlock3D(channels, num_dense_layers, growth_rate,
                                 norm_cfg)
            self.encodes.append(block)
            skip_channels.append(block.out_channels)
            self.enc_transitions.append(
                nn.Sequential(
                    preact_conv3d(block.out_channels, out_channels, 1,
                                  norm_cfg), nn.AvgPool3d(2)))
            channels = out_channels
        # Decoder, deepest first: Upsample (3) -> Decode (2) -> Transition
        # (2) -> Upsample (2) -> Decode (1) -> Transition (1).
        self.upsamples = nn.ModuleList()
        self.up_fuses = nn.ModuleList()
        self.decodes = nn.ModuleList()
        self.dec_transitions = nn.ModuleList()
        for skip in (skip_channels[2], skip_channels[1]):
            self.upsamples.append(
                nn.ConvTranspose3d(out_channels, out_channels, 2, stride=2))
            self.up_fuses.append(
                preact_conv3d(out_channels + skip, out_channels, 1,
                              norm_cfg))
            block = DenseBlock3D(out_channels, num_dense_layers, growth_rate,
                                 norm_cfg)
            self.decodes.append(block)
            self.dec_transitions.append(
                preact_conv3d(block.out_channels, out_channels, 1, norm_cfg))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Compute the pyramid.

        Args:
            x (Tensor): (B, C, D, H, W) with D, H, W divisible by 16.

        Returns:
            tuple[Tensor]: (P4, P8, P16) (or the ``out_indices`` subset),
            each (B, out_channels, D/s, H/s, W/s).
        """
        if x.dim() != 5:
            raise ValueError(f'DenseUNet3D expects (B, C, D, H, W) input, '
                             f'got shape {tuple(x.shape)}')
        if any(s % 16 for s in x.shape[2:]):
            raise ValueError(f'DenseUNet3D needs D, H, W divisible by 16 '
                             f'(stride-16 output), got {tuple(x.shape[2:])}')
        x = self.preblock(x)
        skips = []
        for encode, transition in zip(self.encodes, self.enc_transitions):
            x = encode(x)
            skips.append(x)
            x = transition(x)
        p16 = x
        outs = []
        for i, skip in enumerate((skips[2], skips[1])):
            x = self.upsamples[i](x)
            x = self.up_fuses[i](torch.cat([x, skip], dim=1))
            x = self.dec_transitions[i](self.decodes[i](x))
            outs.append(x)
        pyramid = (outs[1], outs[0], p16)
        return tuple(pyramid[i] for i in self.out_indices)
