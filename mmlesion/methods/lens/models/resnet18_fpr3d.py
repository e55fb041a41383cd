# Copyright (c) mmlesion contributors. All rights reserved.
"""3D ResNet-18 of LENS's false-positive reduction network (Yan et al., TMI
2020, Sec. IV-D)."""
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.logging import print_log
from mmengine.model import BaseModule, constant_init
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor

# torchvision's ImageNet ResNet-18 (named by the configs).
RESNET18_IMAGENET = 'https://download.pytorch.org/models/resnet18-f37072fd.pth'


class BasicBlock3D(nn.Module):
    """ResNet basic block with 3D convs of kernel ``(kz, 3, 3)``."""

    def __init__(self, in_channels: int, channels: int,
                 stride: Tuple[int, int, int], kz: int) -> None:
        super().__init__()
        pad = (kz // 2, 1, 1)
        self.conv1 = nn.Conv3d(in_channels, channels, (kz, 3, 3), stride,
                               pad, bias=False)
        self.bn1 = nn.BatchNorm3d(channels)
        self.conv2 = nn.Conv3d(channels, channels, (kz, 3, 3), 1, pad,
                               bias=False)
        self.bn2 = nn.BatchNorm3d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != (1, 1, 1) or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, channels, 1, stride, bias=False),
                nn.BatchNorm3d(channels))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@MODELS.register_module()
class ResNet18FPR3D(BaseModule):
    """ResNet-18 with 1x3x3 convs in ResBlocks 1-3 and 3x3x3 in ResBlock 4
    (LENS Sec. IV-D; "better than converting all filters to 3x3x3").

    Stem: a 1x7x7 conv (stride 1, 2, 2), BN, ReLU and a 1x3x3 max pool (no
    pooling across slices). ResBlocks 2 and 3 halve y and x, ResBlock 4
    also z (the paper does not give the strides). Outputs: the features of
    the four ResBlocks. ``init_cfg=dict(type='Pretrained',
    checkpoint=RESNET18_IMAGENET)`` inflates torchvision's ResNet-18 (I3D):
    (out, in, 3, 3) kernels become (out, in, 1, 3, 3) in ResBlocks 1-3 and
    are repeated over z and divided by 3 in ResBlock 4; the stem kernel is
    summed over RGB when ``in_channels=1``.

    Args:
        in_channels (int): input channels (1 for a CT patch).
        base_channels (int): channels of ResBlock 1 (64 for ResNet-18;
            smaller for tests and demos).
        z_kernels (Sequence[int]): z size of the 3x3 convs per ResBlock.
        init_cfg (dict, optional): ``Pretrained`` as above, or None.
    """

    def __init__(self,
                 in_channels: int = 1,
                 base_channels: int = 64,
                 z_kernels: Sequence[int] = (1, 1, 1, 3),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(z_kernels) != 4 or any(k % 2 == 0 for k in z_kernels):
            raise ValueError('ResNet18FPR3D: z_kernels needs 4 odd values, '
                             f'got {z_kernels}')
        self.in_channels = in_channels
        self.z_kernels = tuple(z_kernels)
        c = base_channels
        self.conv1 = nn.Conv3d(in_channels, c, (1, 7, 7), (1, 2, 2),
                               (0, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(c)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        strides = [(1, 1, 1), (1, 2, 2), (1, 2, 2), (2, 2, 2)]
        self.out_channels: List[int] = []
        in_c = c
        for i in range(4):
            out_c = c * 2**i
            layer = nn.Sequential(
                BasicBlock3D(in_c, out_c, strides[i], z_kernels[i]),
                BasicBlock3D(out_c, out_c, (1, 1, 1), z_kernels[i]))
            self.add_module(f'layer{i + 1}', layer)
            self.out_channels.append(out_c)
            in_c = out_c
        self.strides = [(1, 4, 4), (1, 8, 8), (1, 16, 16), (2, 32, 32)]

    def init_weights(self) -> None:
        """Kaiming init, or inflated ImageNet weights (see the class doc)."""
        if self.init_cfg is not None and self.init_cfg.get(
                'type') == 'Pretrained':
            ckpt = CheckpointLoader.load_checkpoint(
                self.init_cfg['checkpoint'], map_location='cpu')
            self.load_inflated(ckpt.get('state_dict', ckpt))
            self._is_init = True
            return
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm3d):
                constant_init(m, 1)
        self._is_init = True

    def load_inflated(self, state: dict) -> List[str]:
        """Inflate a torchvision 2D ResNet-18 state dict into this network.

        Returns:
            list[str]: the keys of this network left at their
            initialisation (also logged).
        """
        own = self.state_dict()
        new = {}
        for key, value in state.items():
            if key not in own:
                continue
            target = own[key].shape
            if value.dim() == 4 and len(target) == 5:
                if key == 'conv1.weight' and target[1] != value.shape[1]:
                    value = value.sum(dim=1, keepdim=True).repeat(
                        1, target[1], 1, 1) / target[1]
                kz = target[2]
                value = value.unsqueeze(2).repeat(1, 1, kz, 1, 1) / kz
            if value.shape == target:
                new[key] = value
        self.load_state_dict(new, strict=False)
        missing = sorted(set(own) - set(new))
        print_log(
            f'ResNet18FPR3D: inflated {len(new)} tensors from 2D; '
            f'{len(missing)} left at their initialisation', logger='current')
        return missing

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(N, C, Z, Y, X) -> features of ResBlocks 1-4."""
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'ResNet18FPR3D expects (N, {self.in_channels}, Z, Y, X) '
                f'patches, got {tuple(x.shape)}')
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for i in range(4):
            x = getattr(self, f'layer{i + 1}')(x)
            outs.append(x)
        return tuple(outs)
