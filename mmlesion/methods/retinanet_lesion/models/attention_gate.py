# Copyright (c) mmlesion contributors. All rights reserved.
"""Additive attention gate (Oktay et al. 2018 / Schlemper et al. 2019).

Improved RetinaNet (Zlocha et al. 2019, Sec. 2.3 "Attention Mechanism for
Gated Feature Fusion") filters the feature responses propagated through the
skip connections of its upsampling path with attention gates (AGs): the
gating signal is the feature map upsampled from the coarser scale, the gate
uses 1x1 convolutions only and produces a single attention map, and its
output is the element-wise product of that map and the skip connection.
"""
from functools import partial
from typing import Optional, Tuple

import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor


@MODELS.register_module()
class AttentionGate(BaseModule):
    r"""Additive attention gate with a single attention map.

    .. math::

        \alpha = \sigma\big(\psi^T \mathrm{ReLU}(W_x^T x + W_g^T g + b_g)
        + b_\psi\big), \qquad \hat{x} = \alpha \cdot x

    :math:`W_x`, :math:`W_g` and :math:`\psi` are 1x1 convolutions
    (Improved RetinaNet, Sec. 2.3; Schlemper et al., "Attention gated
    networks", Eq. 1-2); :math:`\alpha` has one channel. A gating signal of
    another spatial size is resized bilinearly after its projection
    (Oktay's grid-attention resampling); the Improved RetinaNet neck passes
    an already upsampled one.

    Args:
        in_channels (int): channels of the skip connection ``x``.
        gating_channels (int): channels of the gating signal ``g``.
        inter_channels (int, optional): channels of the intermediate
            (joint) space. Defaults to ``max(in_channels // 2, 1)``.
        conv_cfg (dict, optional): conv layer config. Defaults to None.
        norm_cfg (dict, optional): norm layer config for the ``W_x`` and
            ``W_g`` projections. Defaults to None (no norm, as in the paper).
        init_cfg (dict or list[dict], optional): initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 gating_channels: int,
                 inter_channels: Optional[int] = None,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels < 1 or gating_channels < 1:
            raise ValueError('AttentionGate: in_channels and gating_channels '
                             f'must be >= 1, got {in_channels} and '
                             f'{gating_channels}')
        if inter_channels is None:
            inter_channels = max(in_channels // 2, 1)
        self.in_channels = in_channels
        self.gating_channels = gating_channels
        self.inter_channels = inter_channels
        conv1x1 = partial(
            ConvModule, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None)
        # W_x has no bias: b_g of W_g is the single additive bias (Eq. 1).
        self.theta_x = conv1x1(
            in_channels, inter_channels, bias=False, norm_cfg=norm_cfg)
        self.phi_g = conv1x1(
            gating_channels, inter_channels, bias=True, norm_cfg=norm_cfg)
        self.psi = conv1x1(inter_channels, 1, bias=True, norm_cfg=None)

    def attention_map(self, x: Tensor, g: Tensor) -> Tensor:
        """Compute the attention coefficients.

        Args:
            x (Tensor): skip connection, shape (B, C_x, H, W).
            g (Tensor): gating signal, shape (B, C_g, H_g, W_g).

        Returns:
            Tensor: attention map in [0, 1], shape (B, 1, H, W).
        """
        if x.dim() != 4 or g.dim() != 4:
            raise ValueError('AttentionGate expects 4D tensors, got x '
                             f'{tuple(x.shape)} and g {tuple(g.shape)}')
        if x.shape[0] != g.shape[0]:
            raise ValueError('AttentionGate: batch sizes of x and g differ: '
                             f'{x.shape[0]} vs {g.shape[0]}')
        theta = self.theta_x(x)
        phi = self.phi_g(g)
        if phi.shape[2:] != theta.shape[2:]:
            phi = F.interpolate(
                phi,
                size=theta.shape[2:],
                mode='bilinear',
                align_corners=False)
        return self.psi(F.relu(theta + phi)).sigmoid()

    def forward(self, x: Tensor, g: Tensor) -> Tuple[Tensor, Tensor]:
        """Gate the skip connection ``x`` with the gating signal ``g``.

        Args:
            x (Tensor): skip connection, shape (B, C_x, H, W).
            g (Tensor): gating signal from the coarser level, shape
                (B, C_g, H_g, W_g).

        Returns:
            tuple[Tensor, Tensor]: the gated skip connection ``x * alpha``
            (B, C_x, H, W) and the attention map ``alpha`` (B, 1, H, W).
        """
        alpha = self.attention_map(x, g)
        return x * alpha, alpha
