# Copyright (c) mmlesion contributors. All rights reserved.
"""A ``DetDataSample`` for one CT volume, for 3D tests and benchmarks."""
from typing import Optional, Sequence

import torch
from mmengine.structures import InstanceData

from mmdet.structures import DetDataSample


def volume_sample(shape_zyx: Sequence[int],
                  boxes: Optional[object] = None) -> DetDataSample:
    """A ``DetDataSample`` for a volume with (n, 6) ground-truth boxes.

    Args:
        shape_zyx (Sequence[int]): volume shape ``(D, H, W)``.
        boxes (array-like, optional): ``(n, 6)`` boxes ``x1, y1, z1, x2, y2,
            z2`` in voxels; none by default.

    Returns:
        DetDataSample: unit spacing, zero origin, label 0 for every box.
    """
    sample = DetDataSample(
        metainfo=dict(img_shape=tuple(shape_zyx), series_uid='test',
                      spacing_zyx=(1., 1., 1.), origin_xyz=(0., 0., 0.)))
    boxes = torch.zeros(0, 6) if boxes is None else torch.as_tensor(
        boxes, dtype=torch.float32).reshape(-1, 6)
    sample.gt_instances = InstanceData(
        bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long))
    return sample
