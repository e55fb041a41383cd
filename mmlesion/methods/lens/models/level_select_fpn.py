# Copyright (c) mmlesion contributors. All rights reserved.
"""mmdet's FPN that returns only some of its levels (MULAN's single
stride-4 prediction level)."""
from typing import Sequence, Tuple

from mmdet.models.necks import FPN
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class LevelSelectFPN(FPN):
    """mmdet's :class:`~mmdet.models.necks.FPN` whose output keeps only the
    levels ``out_indices``.

    MULAN and LENS (Sec. IV-A) predict on the finest FPN level only; an
    anchor-based RPN (mmdet's ``RPNHead``) needs exactly one feature map
    per anchor stride, so MULAN's baseline uses ``out_indices=(0, )``.

    Args:
        out_indices (Sequence[int]): FPN levels returned, in this order.
            Defaults to ``(0, )``.
        **kwargs: :class:`~mmdet.models.necks.FPN` arguments.

    Raises:
        ValueError: an index outside ``[0, num_outs)``.
    """

    def __init__(self, out_indices: Sequence[int] = (0, ), **kwargs) -> None:
        super().__init__(**kwargs)
        self.out_indices = tuple(int(i) for i in out_indices)
        if not self.out_indices or any(
                not 0 <= i < self.num_outs for i in self.out_indices):
            raise ValueError(
                f'LevelSelectFPN: out_indices {self.out_indices} must be '
                f'non-empty and within [0, num_outs={self.num_outs})')

    def forward(self, inputs: Tuple[Tensor]) -> tuple:
        """The selected FPN levels."""
        outs = super().forward(inputs)
        return tuple(outs[i] for i in self.out_indices)
