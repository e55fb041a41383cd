# Copyright (c) mmlesion contributors. All rights reserved.
"""What a training step of the 3D Aggregated Faster R-CNN takes, for the
step-time engine (:mod:`mmlesion.apps.reproduce.timing`): crops of the config's
``crop_size``, and a synthetic batch of them with two bright nodules each.
"""
from typing import TYPE_CHECKING

from mmlesion.apps.reproduce.timing import TrainingInput, find_in_config

if TYPE_CHECKING:
    from mmengine.config import Config

    from mmlesion.structures.data_batch import DataBatch

#: crop edge of a 3D config without ``crop_size`` (LUNA16's 128^3)
DEFAULT_CROP_SIZE = 128


def crop_input(cfg: 'Config', batch: int) -> TrainingInput:
    """The training input of a 3D config: ``batch`` crops of its
    ``crop_size`` (one edge or ``(z, y, x)``)."""
    size = find_in_config(cfg.get('train_dataloader'),
                          lambda d: d.get('crop_size')) or DEFAULT_CROP_SIZE
    shape = (int(size), ) * 3 if isinstance(size, (int, float)) else \
        tuple(int(s) for s in size)
    return TrainingInput('3d', batch, shape, unit='crop')


def crop_batch(spec: TrainingInput, step: int) -> 'DataBatch':
    """A synthetic batch of crops, two bright cubes (nodules) in each,
    seeded by ``step``."""
    import torch

    from mmlesion.structures.volume_sample import volume_sample
    gen = torch.Generator().manual_seed(step)
    inputs, samples = [], []
    edge = min(spec.shape)
    for _ in range(spec.batch_size):
        vol = torch.rand(1, *spec.shape, generator=gen) * 0.2 - 0.6
        boxes = []
        for _ in range(2):
            d = max(3, edge // 8)
            z, y, x = (int(torch.randint(0, n - d, (1, ), generator=gen))
                       for n in spec.shape)
            vol[:, z:z + d, y:y + d, x:x + d] += 0.8
            boxes.append([x, y, z, x + d, y + d, z + d])
        inputs.append(vol)
        samples.append(volume_sample(spec.shape, boxes))
    return dict(inputs=inputs, data_samples=samples)
