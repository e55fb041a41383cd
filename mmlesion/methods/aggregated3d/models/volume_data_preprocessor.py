# Copyright (c) mmlesion contributors. All rights reserved.
"""Batching of CT volumes with mmdet's shape metadata."""
import math
from typing import Optional, Sequence

from mmengine.model import ImgDataPreprocessor
from mmengine.registry import MODELS


# In mmengine's root registry, beside ImgDataPreprocessor: found from the
# mmdet scope (a child) and by models built without a default scope.
@MODELS.register_module()
class VolumeDataPreprocessor(ImgDataPreprocessor):
    """mmengine's ``ImgDataPreprocessor`` for ``(C, D, H, W)`` volumes that
    records, as mmdet's ``DetDataPreprocessor`` does for images,
    ``batch_input_shape`` and ``pad_shape`` in every data sample.

    The batching is mmengine's; the metadata serves mmdet's tools such as
    ``get_flops.py``.

    Args:
        mean (Sequence[float], optional): per-channel mean.
        std (Sequence[float], optional): per-channel std.
        pad_size_divisor (int): padded sizes are multiples of it.
            Defaults to 1.
        pad_value (float): value of the padding. Defaults to 0.
        non_blocking (bool): asynchronous copy to the device.
            Defaults to False.
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 pad_size_divisor: int = 1,
                 pad_value: float = 0,
                 non_blocking: Optional[bool] = False) -> None:
        super().__init__(
            mean=mean,
            std=std,
            pad_size_divisor=pad_size_divisor,
            pad_value=pad_value,
            non_blocking=non_blocking)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Batch the volumes and add the shape metadata.

        Args:
            data (dict): ``inputs`` (list of ``(C, D, H, W)`` tensors or a
                stacked batch) and ``data_samples``.
            training (bool): training mode (unused by the batching).

        Returns:
            dict: ``inputs`` ``(N, C, D', H', W')`` and the data samples.
        """
        inputs = data['inputs']
        shapes = [tuple(t.shape[-3:]) for t in inputs]
        data = super().forward(data, training)
        samples = data.get('data_samples')
        if samples is not None:
            batch_shape = tuple(data['inputs'].shape[-3:])
            div = self.pad_size_divisor
            for sample, shape in zip(samples, shapes):
                sample.set_metainfo(
                    dict(
                        batch_input_shape=batch_shape,
                        pad_shape=tuple(
                            int(math.ceil(s / div)) * div for s in shape)))
        return data
