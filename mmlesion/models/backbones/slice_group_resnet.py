# Copyright (c) mmlesion contributors. All rights reserved.
"""ResNet that reads 3k CT slices as k three-channel images (3DCE / MULAN)."""
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from .resnet_with_stem import ResNetWithStem


def init_centre_identity(conv: nn.Conv2d, channels: int,
                         num_groups: int) -> None:
    """Set a 1x1 fusion ``conv`` (``num_groups * channels -> channels``) to
    the identity on the central group, zero on the others, zero bias."""
    with torch.no_grad():
        conv.weight.zero_()
        first = (num_groups // 2) * channels
        idx = torch.arange(channels)
        conv.weight[idx, first + idx, 0, 0] = 1.
        conv.bias.zero_()


@MODELS.register_module()
class SliceGroupResNet(ResNetWithStem):
    """mmdet ResNet whose ImageNet stem is applied to groups of 3 slices.

    ElixirNet's 9-slice rows (Table 5) need a 9-channel input. This class
    (the default of the pretrained 9-slice configs) does it the 3DCE / MULAN
    way: the ``3 * num_slice_groups`` slices (in z, key slice in the
    middle) are split into three-channel images, each through the *same*
    pretrained stem (ImageNet weights load unchanged); the groups' stem
    features are concatenated, fused by a 1x1 convolution and a ReLU, then
    max pooling and the residual stages as usual. (The ``*_r50-9ch_*``
    configs use a plain ResNet with ``in_channels=9`` instead.)

    The fusion starts as the identity on the centre group and zero on the
    others (the pretrained 3-slice network on the central slices); it is
    never frozen by ``frozen_stages``.

    Args:
        num_slice_groups (int): number of three-slice groups (3 for 9
            slices). Defaults to 3.
        **kwargs: :class:`mmdet.models.backbones.ResNet` arguments;
            ``in_channels`` must be 3 (per group) and defaults to it.
    """

    def __init__(self, num_slice_groups: int = 3, **kwargs) -> None:
        in_channels = kwargs.setdefault('in_channels', 3)
        if in_channels != 3:
            raise ValueError(
                'SliceGroupResNet: in_channels is the channels of one group '
                f'and must be 3 (the pretrained stem), got {in_channels}; '
                'the input has 3 * num_slice_groups channels')
        if num_slice_groups < 1:
            raise ValueError('SliceGroupResNet: num_slice_groups must be '
                             f'>= 1, got {num_slice_groups}')
        super().__init__(out_stem=False, **kwargs)
        self.num_slice_groups = num_slice_groups
        self.slice_fusion = nn.Conv2d(
            self.stem_channels * num_slice_groups, self.stem_channels, 1)
        self._init_fusion()

    def _init_fusion(self) -> None:
        """Identity on the centre group, zero elsewhere (see class doc)."""
        init_centre_identity(self.slice_fusion, self.stem_channels,
                             self.num_slice_groups)

    def init_weights(self) -> None:
        """ResNet's init (e.g. ImageNet weights), then the fusion's."""
        super().init_weights()
        self._init_fusion()

    def stem_forward(self, x: Tensor) -> Tensor:
        """Shared first layers on each group and the fusion.

        Args:
            x (Tensor): (B, 3 * num_slice_groups, H, W) slices.

        Returns:
            Tensor: (B, stem_channels, H / 2, W / 2) fused stem features,
            before the max pooling.
        """
        b, c, h, w = x.shape
        expected = 3 * self.num_slice_groups
        if c != expected:
            raise ValueError(
                f'SliceGroupResNet with {self.num_slice_groups} groups needs '
                f'{expected} input channels (slices), got {c}')
        x = super().stem_forward(
            x.reshape(b * self.num_slice_groups, 3, h, w))
        x = x.reshape(b, self.num_slice_groups * x.size(1), *x.shape[-2:])
        return self.relu(self.slice_fusion(x))
