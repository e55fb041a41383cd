# Copyright (c) mmlesion contributors. All rights reserved.
"""Packing of 3D volumes for 3D detectors."""
import numpy as np
import torch

from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS
from .volume_boxes import check_volume


@TRANSFORMS.register_module()
class PackVolumeDetInputs(PackDetInputs):
    """mmdet's ``PackDetInputs`` for (z, y, x) volumes.

    ``PackDetInputs`` transposes an image as (H, W, C); a volume is packed
    as a (1, D, H, W) tensor instead. Ground truth goes into
    ``gt_instances`` / ``ignored_instances`` exactly as in mmdet (boxes
    (N, 6)). The default meta keys are the volume geometry that 3D
    detectors and ``LUNA16Metric`` need, and the dataset's ``instances``
    (world centres and diameters: ``LUNA16Metric``'s ground truth).

    Args:
        meta_keys (tuple[str]): metainfo keys copied when present.
    """

    def __init__(self,
                 meta_keys=('img_id', 'img_path', 'series_uid', 'ori_shape',
                            'img_shape', 'spacing_zyx', 'origin_xyz',
                            'direction', 'ori_spacing_zyx',
                            'crop_origin_zyx', 'instances')) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack ``inputs`` (1, D, H, W) and ``data_samples``."""
        img = check_volume(results, 'PackVolumeDetInputs')
        del results['img']
        packed = super().transform(results)
        results['img'] = img
        packed['inputs'] = torch.from_numpy(
            np.ascontiguousarray(img, dtype=np.float32)[None])
        return packed
