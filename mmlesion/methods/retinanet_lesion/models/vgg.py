# Copyright (c) mmlesion contributors. All rights reserved.
"""VGG backbone giving C1..C5 for the Improved RetinaNet pyramid.

Improved RetinaNet (Zlocha et al. 2019, Sec. 2.1) follows VGG-19.
:class:`mmcv.cnn.VGG` with ``in_channels``, ``base_channels`` and mmengine
``init_cfg``; with the defaults the parameter names are torchvision's
``vgg19().features``, so its ImageNet weights load with
``init_cfg=dict(type='Pretrained',
checkpoint='https://download.pytorch.org/models/vgg19-dcbb9e9d.pth')``.
"""
from typing import Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import VGG
from mmcv.cnn.vgg import make_vgg_layer
from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor


@MODELS.register_module()
class LesionVGG(VGG, BaseModule):
    """VGG backbone returning the outputs of its pooled stages.

    Stage ``i`` (0-based) ends with a 2x2 max pooling, so the stage outputs
    (strides 2 .. 32, channels ``base * 2 ** min(i, 3)``) are C1..C5, as the
    Improved RetinaNet neck needs.

    Args:
        depth (int): 11, 13, 16 or 19. Defaults to 19.
        in_channels (int): input channels (slices). Defaults to 3.
        base_channels (int): channels of the first stage; stage ``i`` has
            ``base_channels * 2 ** min(i, 3)``. Defaults to 64 (VGG).
        with_bn (bool): add BatchNorm after every conv. Defaults to False.
        num_stages (int): number of stages, 1..5. Defaults to 5.
        dilations (Sequence[int]): dilation of each stage.
        out_indices (Sequence[int]): stages to output. Defaults to
            (0, 1, 2, 3, 4).
        frozen_stages (int): stages to freeze (-1: none). Defaults to -1.
        bn_eval (bool): keep BatchNorm in eval mode. Defaults to True.
        bn_frozen (bool): freeze BatchNorm parameters. Defaults to False.
        ceil_mode (bool): ceil mode of the max poolings. Defaults to False.
        init_cfg (dict or list[dict], optional): mmengine init config; None
            gives mmcv's Kaiming initialisation.
    """

    def __init__(self,
                 depth: int = 19,
                 in_channels: int = 3,
                 base_channels: int = 64,
                 with_bn: bool = False,
                 num_stages: int = 5,
                 dilations: Sequence[int] = (1, 1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3, 4),
                 frozen_stages: int = -1,
                 bn_eval: bool = True,
                 bn_frozen: bool = False,
                 ceil_mode: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        BaseModule.__init__(self, init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise ValueError(f'LesionVGG: invalid depth {depth}, choose one '
                             f'of {sorted(self.arch_settings)}')
        if not 1 <= num_stages <= 5:
            raise ValueError(
                f'LesionVGG: num_stages must be in 1..5, got {num_stages}')
        dilations = tuple(dilations)[:num_stages]
        if len(dilations) != num_stages:
            raise ValueError(f'LesionVGG: need {num_stages} dilations, got '
                             f'{len(dilations)}')
        if not out_indices or min(out_indices) < 0 \
                or max(out_indices) >= num_stages:
            raise ValueError(f'LesionVGG: out_indices {tuple(out_indices)} '
                             f'must lie in 0..{num_stages - 1}')
        self.stage_blocks = self.arch_settings[depth][:num_stages]
        self.num_classes = -1
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.bn_eval = bn_eval
        self.bn_frozen = bn_frozen
        self.in_channels = in_channels
        self.base_channels = base_channels

        inplanes = in_channels
        start_idx = 0
        vgg_layers = []
        self.range_sub_modules = []
        self.stage_channels = []
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = base_channels * 2**min(i, 3)
            vgg_layers.extend(
                make_vgg_layer(
                    inplanes,
                    planes,
                    num_blocks,
                    dilation=dilations[i],
                    with_bn=with_bn,
                    ceil_mode=ceil_mode))
            end_idx = start_idx + num_blocks * (2 + with_bn) + 1
            self.range_sub_modules.append([start_idx, end_idx])
            self.stage_channels.append(planes)
            start_idx = end_idx
            inplanes = planes
        self.module_name = 'features'
        self.add_module(self.module_name, nn.Sequential(*vgg_layers))

    def init_weights(self) -> None:
        """Kaiming init (mmcv VGG) without ``init_cfg``; else mmengine's."""
        if self.init_cfg is None:
            VGG.init_weights(self, pretrained=None)
            self._is_init = True
        else:
            BaseModule.init_weights(self)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Forward.

        Args:
            x (Tensor): input (B, in_channels, H, W).

        Returns:
            tuple[Tensor]: outputs of the stages in ``out_indices``.
        """
        outs = VGG.forward(self, x)
        return outs if isinstance(outs, tuple) else (outs, )
