# Copyright (c) mmlesion contributors. All rights reserved.
"""A tiny 3D Aggregated Faster R-CNN for tests and examples."""
import torch
from mmengine.config import ConfigDict

import mmlesion.methods.aggregated3d  # noqa: F401  (registers its components)
from mmlesion.structures.volume_sample import volume_sample
from mmlesion.utils.configs.lookup import get_config


def tiny_aggregated3d_cfg(window_size: int = 32,
                          overlap: int = 16) -> ConfigDict:
    """The base model config with tiny widths (8 channels, growth 4).

    Args:
        window_size (int): sliding-window size for inference.
        overlap (int): sliding-window overlap (the base config's 40 is for
            128^3 windows).

    Returns:
        ConfigDict: a model config.
    """
    cfg = get_config('_base_/models/aggregated_faster_rcnn_3d.py').model
    cfg.backbone.update(base_channels=8, growth_rate=4, out_channels=8)
    cfg.rpn_head.in_channels = 8
    cfg.fprn_head.update(in_channels=8, fc_channels=16)
    cfg.test_cfg.update(window_size=window_size, overlap=overlap,
                        show_progress=False)
    return cfg


def bright_cube_batch(seed: int, size: int = 32,
                      num_volumes: int = 2) -> dict:
    """Volumes in [-1, 1] with 1, 2, ... bright cuboid "nodules".

    The 3D counterpart of :func:`mmlesion.testing.det_batches.
    bright_box_batch`.

    Args:
        seed (int): random seed (one batch per training step).
        size (int): cube edge in voxels. Defaults to 32.
        num_volumes (int): volumes in the batch; volume ``i`` has ``i + 1``
            nodules of 4 to 11 voxels a side. Defaults to 2.

    Returns:
        dict: ``inputs`` (list of (1, size, size, size) tensors) and
        ``data_samples``, the input of ``model.data_preprocessor``.
    """
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(num_volumes):
        vol = torch.rand(1, size, size, size, generator=gen) * 0.2 - 0.6
        boxes = []
        for _ in range(1 + i):
            d = torch.randint(4, 12, (3, ), generator=gen).tolist()
            x1, y1, z1 = (int(torch.randint(0, size - e, (1, ),
                                            generator=gen)) for e in d)
            vol[:, z1:z1 + d[2], y1:y1 + d[1], x1:x1 + d[0]] += 0.8
            boxes.append([x1, y1, z1, x1 + d[0], y1 + d[1], z1 + d[2]])
        inputs.append(vol)
        samples.append(volume_sample((size, size, size), boxes))
    return dict(inputs=inputs, data_samples=samples)


__all__ = ['tiny_aggregated3d_cfg', 'volume_sample', 'bright_cube_batch']
