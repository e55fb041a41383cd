# Copyright (c) mmlesion contributors. All rights reserved.
import torch
from mmdet.structures import DetDataSample
from mmengine.model import ImgDataPreprocessor

from mmlesion.methods.aggregated3d.models import VolumeDataPreprocessor


def test_volume_data_preprocessor_batches_as_mmengine_and_adds_shapes():
    """Same batch as mmengine's ImgDataPreprocessor; pad_shape per sample
    (rounded up to the divisor) and batch_input_shape as mmdet's
    DetDataPreprocessor records them for images."""
    vols = [torch.rand(1, 20, 33, 30), torch.rand(1, 40, 16, 17)]
    kwargs = dict(pad_size_divisor=16, pad_value=-1.)
    ours = VolumeDataPreprocessor(**kwargs)(
        dict(inputs=vols, data_samples=[DetDataSample(),
                                        DetDataSample()]))
    ref = ImgDataPreprocessor(**kwargs)(dict(inputs=vols))
    assert torch.equal(ours['inputs'], ref['inputs'])
    assert ours['inputs'].shape == (2, 1, 48, 48, 32)
    first, second = ours['data_samples']
    assert first.pad_shape == (32, 48, 32)
    assert second.pad_shape == (48, 16, 32)
    assert first.batch_input_shape == second.batch_input_shape == (48, 48,
                                                                   32)
    # without data samples (FLOPs counting, export) it only batches
    out = VolumeDataPreprocessor(**kwargs)(dict(inputs=vols))
    assert torch.equal(out['inputs'], ref['inputs'])
