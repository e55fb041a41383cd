# Copyright (c) mmlesion contributors. All rights reserved.
"""A tiny 3D Aggregated Faster R-CNN for tests and examples."""
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet.structures import DetDataSample
from ._utils import get_config


def tiny_aggregated3d_cfg(window_size: int = 32) -> ConfigDict:
    """The base model config with tiny widths (8 channels, growth 4).

    Args:
        window_size (int): sliding-window size for inference.

    Returns:
        ConfigDict: a model config.
    """
    cfg = get_config('_base_/models/aggregated_faster_rcnn_3d.py').model
    cfg.backbone.update(base_channels=8, growth_rate=4, out_channels=8)
    cfg.rpn_head.in_channels = 8
    cfg.fprn_head.update(in_channels=8, fc_channels=16)
    cfg.test_cfg.update(window_size=window_size, show_progress=False)
    return cfg


def volume_sample(shape_zyx, boxes=None) -> DetDataSample:
    """A ``DetDataSample`` for a volume with (n, 6) ground-truth boxes."""
    sample = DetDataSample(
        metainfo=dict(img_shape=tuple(shape_zyx), series_uid='test',
                      spacing_zyx=(1., 1., 1.), origin_xyz=(0., 0., 0.)))
    boxes = torch.zeros(0, 6) if boxes is None else torch.as_tensor(
        boxes, dtype=torch.float32).reshape(-1, 6)
    sample.gt_instances = InstanceData(
        bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long))
    return sample


__all__ = ['tiny_aggregated3d_cfg', 'volume_sample']
