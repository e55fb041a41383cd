# Copyright (c) mmlesion contributors. All rights reserved.
"""2.5D truncated DenseNet-121 with 3D feature fusion, the backbone of MULAN
(Yan et al., MICCAI 2019) that LENS reuses (Yan et al., TMI 2020,
Sec. IV-A)."""
import re
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.logging import print_log
from mmengine.model import BaseModule, constant_init
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor

from mmlesion.models.backbones.slice_group_resnet import init_centre_identity

# torchvision's ImageNet DenseNet-121 (the configs name this URL; no
# torchvision import is needed to load it).
DENSENET121_IMAGENET = \
    'https://download.pytorch.org/models/densenet121-a639ec97.pth'


class DenseLayer(nn.Sequential):
    """BN-ReLU-Conv1x1-BN-ReLU-Conv3x3 (DenseNet-B); torchvision's names."""

    def __init__(self, in_channels: int, growth_rate: int,
                 bn_size: int) -> None:
        super().__init__()
        mid = bn_size * growth_rate
        self.add_module('norm1', nn.BatchNorm2d(in_channels))
        self.add_module('relu1', nn.ReLU(inplace=True))
        self.add_module('conv1',
                        nn.Conv2d(in_channels, mid, 1, bias=False))
        self.add_module('norm2', nn.BatchNorm2d(mid))
        self.add_module('relu2', nn.ReLU(inplace=True))
        self.add_module('conv2',
                        nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, super().forward(x)], dim=1)


class DenseBlock(nn.Sequential):
    """``num_layers`` dense layers (``denselayer1`` ...)."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int,
                 bn_size: int) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(
                f'denselayer{i + 1}',
                DenseLayer(in_channels + i * growth_rate, growth_rate,
                           bn_size))


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1 (halving the channels)-AvgPool2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.add_module('norm', nn.BatchNorm2d(in_channels))
        self.add_module('relu', nn.ReLU(inplace=True))
        self.add_module('conv',
                        nn.Conv2d(in_channels, out_channels, 1, bias=False))
        self.add_module('pool', nn.AvgPool2d(2, 2))


class SliceFusion(nn.Module):
    """MULAN's 3D feature-fusion layer (improved 3DCE).

    The ``G`` slice groups of one image go through the DenseNet as a batch;
    this layer concatenates their features along the channels and a 1x1
    convolution (no non-linearity, as MULAN's released ``inter_layer_fuse``
    in rsummers11/CADLab) replaces the *central group's* features with the
    result. It starts as the identity on the central group, so an ImageNet
    backbone starts as the pretrained 2D network on that group.

    Args:
        channels (int): feature channels C.
        num_groups (int): number of slice groups G.
    """

    def __init__(self, channels: int, num_groups: int) -> None:
        super().__init__()
        self.channels = channels
        self.num_groups = num_groups
        self.conv = nn.Conv2d(num_groups * channels, channels, 1)
        self.reset_identity()

    def reset_identity(self) -> None:
        """Weight that copies the central group, zero bias."""
        init_centre_identity(self.conv, self.channels, self.num_groups)

    def forward(self, x: Tensor) -> Tensor:
        """Fuse.

        Args:
            x (Tensor): (N * G, C, H, W), the groups of an image
                consecutive.

        Returns:
            Tensor: same shape; the central group's features replaced by
            the fused ones.
        """
        ng, c, h, w = x.shape
        n = ng // self.num_groups
        fused = self.conv(x.reshape(n, self.num_groups * c, h, w))
        out = x.view(n, self.num_groups, c, h, w).clone()
        out[:, self.num_groups // 2] = fused
        return out.view(ng, c, h, w)


@MODELS.register_module()
class MULANDenseNet(BaseModule):
    """2.5D truncated DenseNet-121 with 3D feature fusion (MULAN, LENS
    Sec. IV-A).

    The input (N, ``num_slices``, H, W) of consecutive CT slices is split
    into groups of ``slices_per_group`` slices (9 in groups of 3 in the
    papers), each a 3-channel image for the shared 2D DenseNet layers.
    Before the dense blocks in ``fusion_before`` a :class:`SliceFusion`
    fuses the groups; the outputs are the central group's features after
    dense blocks 1-3 (strides 4, 8, 16). DenseNet-121 is *truncated*: the
    last transition and dense block 4 are removed (MULAN).

    The layer names are torchvision's ``densenet121``'s, so
    ``init_cfg=dict(type='Pretrained', checkpoint=DENSENET121_IMAGENET)``
    loads ImageNet weights (old-style keys such as ``norm.1`` renamed); the
    fusion layers keep their initialisation, reported in the log.

    Args:
        num_slices (int): input channels (slices). Defaults to 9.
        slices_per_group (int): slices per 2D group. Defaults to 3.
        growth_rate (int): DenseNet growth rate. Defaults to 32.
        block_config (Sequence[int]): layers of the kept dense blocks.
            Defaults to (6, 12, 24) (DenseNet-121 without block 4).
        num_init_features (int): stem channels. Defaults to 64.
        bn_size (int): bottleneck factor. Defaults to 4.
        fusion_before (Sequence[int]): 0-based indices of the dense blocks
            whose input is fused (MULAN's ``FEATURE_FUSION_LEVELS``).
            Defaults to the last kept block only, as MULAN's released
            ``config.yml`` (``[False, False, True]``: fusion after
            transition 2, before dense block 3).
        out_indices (Sequence[int]): dense blocks whose output is returned.
        frozen_stem (bool): freeze the stem (conv0 / norm0).
        norm_eval (bool): keep BN layers in eval mode while training.
        init_cfg (dict, optional): e.g. ``Pretrained`` as above.
    """

    def __init__(self,
                 num_slices: int = 9,
                 slices_per_group: int = 3,
                 growth_rate: int = 32,
                 block_config: Sequence[int] = (6, 12, 24),
                 num_init_features: int = 64,
                 bn_size: int = 4,
                 fusion_before: Optional[Sequence[int]] = None,
                 out_indices: Sequence[int] = (0, 1, 2),
                 frozen_stem: bool = False,
                 norm_eval: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_slices % slices_per_group:
            raise ValueError(
                f'MULANDenseNet: num_slices={num_slices} is not a multiple '
                f'of slices_per_group={slices_per_group}')
        self.num_slices = num_slices
        self.slices_per_group = slices_per_group
        self.num_groups = num_slices // slices_per_group
        self.out_indices = tuple(out_indices)
        if fusion_before is None:
            fusion_before = (len(block_config) - 1, )
        self.fusion_before = tuple(fusion_before)
        self.frozen_stem = frozen_stem
        self.norm_eval = norm_eval
        feats = OrderedDict([
            ('conv0', nn.Conv2d(slices_per_group, num_init_features, 7,
                                stride=2, padding=3, bias=False)),
            ('norm0', nn.BatchNorm2d(num_init_features)),
            ('relu0', nn.ReLU(inplace=True)),
            ('pool0', nn.MaxPool2d(3, stride=2, padding=1)),
        ])
        channels = num_init_features
        self.out_channels: List[int] = []
        for i, n in enumerate(block_config):
            feats[f'denseblock{i + 1}'] = DenseBlock(n, channels, growth_rate,
                                                     bn_size)
            channels += n * growth_rate
            self.out_channels.append(channels)
            if i < len(block_config) - 1:
                feats[f'transition{i + 1}'] = Transition(
                    channels, channels // 2)
                channels //= 2
        self.features = nn.Sequential(feats)
        # channels entering each dense block
        in_channels = [num_init_features] + [c // 2 for c in
                                             self.out_channels[:-1]]
        self.fusions = nn.ModuleDict({
            str(i): SliceFusion(in_channels[i], self.num_groups)
            for i in self.fusion_before if self.num_groups > 1
        })
        self.num_blocks = len(block_config)
        self._freeze_stem()

    def _freeze_stem(self) -> None:
        if self.frozen_stem:
            for name in ('conv0', 'norm0'):
                m = getattr(self.features, name)
                m.eval()
                for p in m.parameters():
                    p.requires_grad = False

    def init_weights(self) -> None:
        """Kaiming convs, unit BN; ImageNet DenseNet weights for a
        ``Pretrained`` init_cfg (torchvision's key names are remapped)."""
        if self.init_cfg is not None and self.init_cfg.get(
                'type') == 'Pretrained':
            ckpt = CheckpointLoader.load_checkpoint(
                self.init_cfg['checkpoint'], map_location='cpu')
            state = ckpt.get('state_dict', ckpt)
            self.load_torchvision_state_dict(state)
            self._is_init = True
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                constant_init(m, 1)
        for f in self.fusions.values():
            f.reset_identity()
        self._is_init = True

    def load_torchvision_state_dict(self, state: dict) -> Tuple[list, list]:
        """Load a torchvision DenseNet state dict into the kept layers.

        Args:
            state (dict): e.g. ``densenet121-a639ec97.pth``.

        Returns:
            tuple: (missing keys, unexpected keys), also logged.
        """
        pattern = re.compile(
            r'^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.'
            r'(?:weight|bias|running_mean|running_var))$')
        own = self.state_dict()
        new_state = {}
        for key, value in state.items():
            m = pattern.match(key)
            if m:
                key = m.group(1) + m.group(2)
            if key in own and own[key].shape == value.shape:
                new_state[key] = value
        missing, unexpected = self.load_state_dict(new_state, strict=False)
        print_log(
            f'MULANDenseNet: loaded {len(new_state)} tensors; kept the '
            f'initialisation of {len(missing)} (3D fusion layers and any '
            'layer absent from the checkpoint)',
            logger='current')
        return missing, unexpected

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Forward.

        Args:
            x (Tensor): (N, num_slices, H, W).

        Returns:
            tuple[Tensor]: central-group features of the ``out_indices``
            dense blocks.
        """
        n, c, h, w = x.shape
        if c != self.num_slices:
            raise ValueError(
                f'MULANDenseNet expects {self.num_slices} slices as channels'
                f', got an input of shape {tuple(x.shape)}')
        x = x.reshape(n * self.num_groups, self.slices_per_group, h, w)
        outs = []
        block = 0
        for name, layer in self.features.named_children():
            if name.startswith('denseblock') and str(block) in self.fusions:
                x = self.fusions[str(block)](x)
            x = layer(x)
            if name.startswith('denseblock'):
                if block in self.out_indices:
                    centre = x.view(n, self.num_groups,
                                    *x.shape[1:])[:, self.num_groups // 2]
                    outs.append(centre.contiguous())
                block += 1
        return tuple(outs)

    def train(self, mode: bool = True) -> 'MULANDenseNet':
        super().train(mode)
        self._freeze_stem()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self
