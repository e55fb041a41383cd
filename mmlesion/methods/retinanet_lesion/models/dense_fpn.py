# Copyright (c) mmlesion contributors. All rights reserved.
"""FPN extended to the input resolution (Improved RetinaNet, Sec. 2.2-2.3).

Improved RetinaNet (Zlocha et al. 2019) runs the RetinaNet sub-networks on
P2-P6 ("we shift the sub-network operation [...] to pyramid levels of P2-P6
from P3-P7") and, for dense supervision with the GrabCut masks, adds "two more
upsampling layers (connecting to P2 and P1) and a segmentation prediction
layer [...] Skip connections are employed by fusing features obtained from C1
(via a 1x1 convolution) and input (via two 3x3 convolutions)" (Fig. 1a,
after Retina U-Net). Optional attention gates (Sec. 2.3) filter the skip
connections, gated by the features upsampled from the coarser level.
"""
from typing import List, Optional, Sequence, Tuple, Union

#: Where :class:`DenseFPN` can put attention gates.
GATE_PLACEMENTS: Tuple[str, ...] = ('laterals', 'skips')

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.necks import FPN
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, MultiConfig, OptConfigType
from torch import Tensor

from .attention_gate import AttentionGate


@MODELS.register_module()
class DenseFPN(FPN):
    """FPN (P2..P6) plus an upsampling path to P1 and P0 (input size).

    Inputs are ``(img, C1, C2, ..., C5)``: the network input, the stride-2
    stem output and the backbone stages named by ``in_channels``
    (:class:`~mmlesion.methods.retinanet_lesion.models.ImprovedRetinaNet` prepends
    ``img``; e.g. :class:`ResNetWithStem` or :class:`LesionVGG` return
    C1..C5).

    The FPN part is mmdet's :class:`~mmdet.models.necks.FPN`. The dense path
    continues the top-down pathway from the merged (pre-output) finest FPN
    level, as Retina U-Net does:

    * ``top = reduce(P2_pre)`` (1x1 conv when ``dense_channels`` differs);
    * ``P1_pre = up(top) + gate(conv1x1(C1), up(top))``,
      ``P1 = conv3x3(P1_pre)``;
    * ``P0_pre = up(P1_pre) + gate(conv3x3(relu(conv3x3(img))), up(P1_pre))``,
      ``P0 = conv3x3(P0_pre)``;

    where ``up`` resizes to the skip connection's size and ``gate`` is an
    :class:`AttentionGate` or the identity. Attention gates (Sec. 2.3,
    "features upsampled from coarser scale as the gating signal") go on
    the FPN lateral connections of C2..C4 (``'laterals'``, the Table 1 "+
    attention gate" configs) and/or the two skips of the dense path
    (``'skips'``, which only reach the segmentation head).

    Args:
        in_channels (list[int]): channels of the FPN inputs (C2..C5).
        out_channels (int): channels of P2..P6.
        num_outs (int): number of FPN outputs. Defaults to 5 (P2..P6).
        input_channels (int): channels of the network input (slices).
            Defaults to 3.
        stem_channels (int): channels of C1. Defaults to 64.
        dense_channels (int, optional): channels of P1 and P0. Defaults to
            ``out_channels``; a smaller value keeps the full-resolution
            level cheap.
        attention_gates (bool | str | Sequence[str]): placements of the
            attention gates, a subset of ``('laterals', 'skips')`` (see
            above); ``False``, ``None`` or ``()`` for none. ``True`` is
            refused because it does not say where. Defaults to ``()``.
        gate_inter_channels (int, optional): intermediate channels of the
            gates (default: half of the gated channels).
        dense_norm_cfg (dict, optional): norm of the dense-path convs.
        dense_act_cfg (dict): activation after the first 3x3 conv on the
            input. Defaults to ReLU.
        start_level, end_level, add_extra_convs, relu_before_extra_convs,
        no_norm_on_lateral, conv_cfg, norm_cfg, act_cfg, upsample_cfg,
        init_cfg: as in :class:`mmdet.models.necks.FPN`
            (``add_extra_convs`` defaults to ``'on_input'`` as RetinaNet).

    Returns (forward):
        tuple[Tensor]: ``(P0, P1, P_start, ..., P_last)``: two dense levels
        followed by the ``num_outs`` FPN levels.
    """

    def __init__(
        self,
        in_channels: List[int],
        out_channels: int,
        num_outs: int = 5,
        input_channels: int = 3,
        stem_channels: int = 64,
        dense_channels: Optional[int] = None,
        attention_gates: Union[bool, None, str, Sequence[str]] = (),
        gate_inter_channels: Optional[int] = None,
        dense_norm_cfg: OptConfigType = None,
        dense_act_cfg: ConfigType = dict(type='ReLU'),
        start_level: int = 0,
        end_level: int = -1,
        add_extra_convs: Union[bool, str] = 'on_input',
        relu_before_extra_convs: bool = False,
        no_norm_on_lateral: bool = False,
        conv_cfg: OptConfigType = None,
        norm_cfg: OptConfigType = None,
        act_cfg: OptConfigType = None,
        upsample_cfg: ConfigType = dict(mode='nearest'),
        init_cfg: MultiConfig = dict(
            type='Xavier', layer='Conv2d', distribution='uniform')
    ) -> None:
        super().__init__(
            in_channels=list(in_channels),
            out_channels=out_channels,
            num_outs=num_outs,
            start_level=start_level,
            end_level=end_level,
            add_extra_convs=add_extra_convs,
            relu_before_extra_convs=relu_before_extra_convs,
            no_norm_on_lateral=no_norm_on_lateral,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            upsample_cfg=upsample_cfg,
            init_cfg=init_cfg)
        if 'scale_factor' in self.upsample_cfg:
            raise ValueError(
                'DenseFPN resizes to the size of each skip '
                'connection; do not set upsample_cfg.scale_factor')
        dense_channels = dense_channels or out_channels
        self.input_channels = input_channels
        self.stem_channels = stem_channels
        self.dense_channels = dense_channels
        self.attention_gates = self.parse_gate_placements(attention_gates)

        def conv(cin: int, cout: int, k: int, act: OptConfigType = None):
            return ConvModule(cin, cout, k, padding=k // 2,
                              conv_cfg=conv_cfg, norm_cfg=dense_norm_cfg,
                              act_cfg=act, inplace=False)

        def gates(channels: int, num: int) -> nn.ModuleList:
            return nn.ModuleList([
                AttentionGate(
                    channels, channels, gate_inter_channels, conv_cfg=conv_cfg)
                for _ in range(num)
            ])

        self.dense_reduce = None
        if dense_channels != out_channels:
            self.dense_reduce = conv(out_channels, dense_channels, 1)
        # skip connection from C1: a 1x1 conv
        c1_skip = conv(stem_channels, dense_channels, 1)
        # skip connection from the input: two 3x3 convs
        input_skip = nn.Sequential(
            conv(input_channels, dense_channels, 3, dense_act_cfg),
            conv(dense_channels, dense_channels, 3))
        # ordered from coarse to fine: P1 (C1 skip) then P0 (input skip)
        self.dense_skips = nn.ModuleList([c1_skip, input_skip])
        self.dense_out_convs = nn.ModuleList(
            [conv(dense_channels, dense_channels, 3) for _ in range(2)])
        self.dense_gates = gates(dense_channels, 2) \
            if 'skips' in self.attention_gates else None
        self.fpn_gates = gates(out_channels, len(self.lateral_convs) - 1) \
            if 'laterals' in self.attention_gates else None

    @staticmethod
    def parse_gate_placements(
            attention_gates: Union[bool, None, str, Sequence[str]]
    ) -> Tuple[str, ...]:
        """Normalise ``attention_gates`` to a sorted tuple of placements.

        Raises:
            ValueError: for ``True`` or an unknown placement.
        """
        if attention_gates is None or attention_gates is False:
            return ()
        if attention_gates is True:
            raise ValueError(
                'DenseFPN: attention_gates=True does not say where the gates '
                f'go; use a subset of {GATE_PLACEMENTS}: \'laterals\' (FPN '
                'lateral connections, the Table 1 "+ attention gate" row) '
                'and/or \'skips\' (the C1 / input skip connections of the '
                'upsampling path)')
        if isinstance(attention_gates, str):
            attention_gates = (attention_gates, )
        placements = tuple(sorted(set(attention_gates)))
        unknown = [p for p in placements if p not in GATE_PLACEMENTS]
        if unknown:
            raise ValueError(f'DenseFPN: unknown attention gate placement(s) '
                             f'{unknown}; choose from {GATE_PLACEMENTS}')
        return placements

    @staticmethod
    def _gate(gates: Optional[nn.ModuleList], idx: int, skip: Tensor,
              gating: Tensor) -> Tensor:
        if gates is None:
            return skip
        return gates[idx](skip, gating)[0]

    def _upsample(self, x: Tensor, size: Sequence[int]) -> Tensor:
        return F.interpolate(x, size=tuple(size), **self.upsample_cfg)

    def forward(self, inputs: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        """Forward.

        Args:
            inputs (tuple[Tensor]): ``(img, C1, C2, ..., C5)``.

        Returns:
            tuple[Tensor]: ``(P0, P1, P2, ..., P6)`` for the default
            arguments (P0 at the size of ``img``, P1 at the size of C1).
        """
        if len(inputs) != len(self.in_channels) + 2:
            raise ValueError(
                f'DenseFPN expects {len(self.in_channels) + 2} inputs '
                f'(img, C1 and {len(self.in_channels)} backbone stages), got '
                f'{len(inputs)}. Use a detector that passes the input image '
                '(ImprovedRetinaNet) and a backbone returning C1 '
                '(ResNetWithStem / LesionVGG with out_indices from 0).')
        img, c1 = inputs[0], inputs[1]
        feats = inputs[2:]
        if img.shape[1] != self.input_channels:
            raise ValueError(f'DenseFPN: input has {img.shape[1]} channels, '
                             f'input_channels={self.input_channels}')
        if c1.shape[1] != self.stem_channels:
            raise ValueError(f'DenseFPN: C1 has {c1.shape[1]} channels, '
                             f'stem_channels={self.stem_channels}')

        # FPN laterals and top-down pathway (mmdet FPN, optionally gated)
        laterals = [
            lateral_conv(feats[i + self.start_level])
            for i, lateral_conv in enumerate(self.lateral_convs)
        ]
        used_backbone_levels = len(laterals)
        for i in range(used_backbone_levels - 1, 0, -1):
            up = self._upsample(laterals[i], laterals[i - 1].shape[2:])
            skip = self._gate(self.fpn_gates, i - 1, laterals[i - 1], up)
            laterals[i - 1] = skip + up

        outs = [
            self.fpn_convs[i](laterals[i]) for i in range(used_backbone_levels)
        ]
        if self.num_outs > len(outs):
            if not self.add_extra_convs:
                for i in range(self.num_outs - used_backbone_levels):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                if self.add_extra_convs == 'on_input':
                    extra_source = feats[self.backbone_end_level - 1]
                elif self.add_extra_convs == 'on_lateral':
                    extra_source = laterals[-1]
                else:  # 'on_output'
                    extra_source = outs[-1]
                outs.append(self.fpn_convs[used_backbone_levels](extra_source))
                for i in range(used_backbone_levels + 1, self.num_outs):
                    if self.relu_before_extra_convs:
                        outs.append(self.fpn_convs[i](F.relu(outs[-1])))
                    else:
                        outs.append(self.fpn_convs[i](outs[-1]))

        # dense path: two upsampling steps with skip connections
        top = laterals[0]
        if self.dense_reduce is not None:
            top = self.dense_reduce(top)
        dense_outs = []
        for idx, source in enumerate((c1, img)):
            skip = self.dense_skips[idx](source)
            up = self._upsample(top, skip.shape[2:])
            skip = self._gate(self.dense_gates, idx, skip, up)
            top = skip + up
            dense_outs.append(self.dense_out_convs[idx](top))
        return tuple(dense_outs[::-1]) + tuple(outs)
