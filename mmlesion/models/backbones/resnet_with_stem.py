# Copyright (c) mmlesion contributors. All rights reserved.
"""ResNet that also returns its stem output (C1).

Improved RetinaNet (Zlocha et al. 2019, Sec. 2.2) fuses "features obtained
from C1 (via a 1x1 convolution)" into the upsampling path to P1. mmdet's
:class:`~mmdet.models.backbones.ResNet` returns only its residual stages
(C2..C5); this subclass prepends C1, the stride-2 stem output before the
max pooling.
"""
from typing import Tuple

from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class ResNetWithStem(ResNet):
    """mmdet ResNet returning ``(C1, C2, ..., C5)``.

    C1 is the stem output at stride 2 (before the stem max pooling); the
    rest (arguments, parameter names, ``torchvision://resnet50`` loading)
    is :class:`mmdet.models.backbones.ResNet`'s.

    Args:
        out_stem (bool): prepend the stem output C1. Defaults to True.
        **kwargs: arguments of :class:`mmdet.models.backbones.ResNet`.
    """

    def __init__(self, out_stem: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.out_stem = out_stem

    def stem_forward(self, x: Tensor) -> Tensor:
        """C1: the stem (``conv1 -> norm1 -> relu``, or the deep stem)."""
        if self.deep_stem:
            return self.stem(x)
        return self.relu(self.norm1(self.conv1(x)))

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Forward.

        Args:
            x (Tensor): input images (B, in_channels, H, W).

        Returns:
            tuple[Tensor]: ``(C1, C2, ..., C5)`` (C1 only if ``out_stem``).
        """
        x = self.stem_forward(x)
        outs = [x] if self.out_stem else []
        x = self.maxpool(x)
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
