# Copyright (c) mmlesion contributors. All rights reserved.
"""Small synthetic detection batches for model tests."""
from typing import List, Sequence

import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from ..structures.data_batch import DataBatch


def det_sample(img_id: int, size: int, boxes: Sequence[Sequence[float]],
               labels: Sequence[int]) -> DetDataSample:
    """A ``DetDataSample`` of a ``size`` x ``size`` image with its boxes.

    Args:
        img_id (int): image id.
        size (int): image height and width (no resize, no padding).
        boxes (Sequence[Sequence[float]]): x1y1x2y2 ground-truth boxes.
        labels (Sequence[int]): class of each box.

    Returns:
        DetDataSample: with metainfo and ``gt_instances``.
    """
    sample = DetDataSample(
        metainfo=dict(
            img_id=img_id,
            img_shape=(size, size),
            ori_shape=(size, size),
            scale_factor=(1.0, 1.0),
            pad_shape=(size, size)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor(list(labels), dtype=torch.long))
    return sample


def bright_box_batch(seed: int,
                     size: int = 64,
                     num_channels: int = 3,
                     num_images: int = 2) -> DataBatch:
    """Images in [-1, 1] with 1, 2, ... bright rectangles ("lesions").

    Args:
        seed (int): random seed (one batch per training step).
        size (int): image size. Defaults to 64.
        num_channels (int): slices per image. Defaults to 3.
        num_images (int): images in the batch; image ``i`` has ``i + 1``
            lesions of 8 to 19 px. Defaults to 2.

    Returns:
        DataBatch: ``inputs`` (list of (C, size, size) tensors) and
        ``data_samples``, the input of ``model.data_preprocessor``.
    """
    gen = torch.Generator().manual_seed(seed)
    inputs: List[torch.Tensor] = []
    samples: List[DetDataSample] = []
    for i in range(num_images):
        img = torch.rand(num_channels, size, size, generator=gen) * 0.2 - 0.6
        boxes = []
        for _ in range(1 + i):
            w, h = torch.randint(8, 20, (2, ), generator=gen).tolist()
            x1 = int(torch.randint(0, size - w, (1, ), generator=gen))
            y1 = int(torch.randint(0, size - h, (1, ), generator=gen))
            img[:, y1:y1 + h, x1:x1 + w] += 0.8
            boxes.append([x1, y1, x1 + w, y1 + h])
        inputs.append(img)
        samples.append(det_sample(i, size, boxes, [0] * len(boxes)))
    return DataBatch(inputs=inputs, data_samples=samples)
