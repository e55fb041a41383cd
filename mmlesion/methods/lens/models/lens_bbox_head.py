# Copyright (c) mmlesion contributors. All rights reserved.
"""Multi-task detection head of LENS (Yan et al., TMI 2020, Sec. IV-C)."""
from typing import Optional

import torch.nn as nn
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead
from mmdet.registry import MODELS
from torch import Tensor


class ExpertSwitch(nn.Module):
    """``num_experts`` copies of a layer; ``forward`` runs the active one.

    Args:
        layers (nn.ModuleList): one layer per expert (same shapes).
    """

    def __init__(self, layers: nn.ModuleList) -> None:
        super().__init__()
        self.experts = layers
        self.active = 0

    def forward(self, x: Tensor) -> Tensor:
        return self.experts[self.active](x)


@MODELS.register_module()
class LENSBBoxHead(Shared2FCBBoxHead):
    """Two shared FC layers, then dataset-specific classification and box
    layers (LENS Sec. IV-C, Fig. 2).

    ``fc_cls`` and ``fc_reg`` of mmdet's :class:`Shared2FCBBoxHead` become
    :class:`ExpertSwitch` es holding one layer per dataset; the detector
    selects the expert with :meth:`set_expert` before a forward pass, so
    mmdet's loss / predict methods work unchanged. Each expert scores
    lesion vs non-lesion (``num_classes=1``).

    Args:
        num_datasets (int): number of dataset experts ``d``.
        **kwargs: :class:`mmdet.models.Shared2FCBBoxHead` arguments.
    """

    def __init__(self, num_datasets: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_datasets < 1:
            raise ValueError(
                f'LENSBBoxHead: num_datasets must be >= 1, got {num_datasets}')
        self.num_datasets = num_datasets

        def make(layer: nn.Module) -> ExpertSwitch:
            layers = [layer]
            for _ in range(num_datasets - 1):
                new = type(layer)(layer.in_features, layer.out_features)
                layers.append(new)
            return ExpertSwitch(nn.ModuleList(layers))

        if self.with_cls:
            self.fc_cls = make(self.fc_cls)
        if self.with_reg:
            self.fc_reg = make(self.fc_reg)

    @property
    def active_expert(self) -> int:
        """Index of the dataset expert used by the next forward pass."""
        return self.fc_cls.active if self.with_cls else self.fc_reg.active

    def set_expert(self, index: int) -> None:
        """Use dataset expert ``index`` from now on.

        Raises:
            IndexError: for an index outside ``[0, num_datasets)``.
        """
        if not 0 <= int(index) < self.num_datasets:
            raise IndexError(
                f'LENSBBoxHead has {self.num_datasets} dataset experts, got '
                f'expert index {index}')
        for m in (getattr(self, 'fc_cls', None), getattr(self, 'fc_reg',
                                                          None)):
            if isinstance(m, ExpertSwitch):
                m.active = int(index)

    def init_weights(self) -> None:
        """mmdet's init for the shared FCs; every expert's layers as mmdet's
        ``fc_cls`` (normal, std 0.01) and ``fc_reg`` (normal, std 0.001)."""
        super().init_weights()
        for name, std in (('fc_cls', 0.01), ('fc_reg', 0.001)):
            switch: Optional[ExpertSwitch] = getattr(self, name, None)
            if switch is None:
                continue
            for layer in switch.experts:
                nn.init.normal_(layer.weight, 0, std)
                nn.init.constant_(layer.bias, 0)
