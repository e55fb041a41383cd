# Copyright (c) mmlesion contributors. All rights reserved.
"""LENS's datasets: several sets as one, one-set batches, mined lesions,
the FPR network's 3D patches."""
from .batch_sampler import LENSDatasetBatchSampler
from .fpr_patches import LENSFPRPatchDataset
from .mined_dataset import DeepLesionMinedDataset
from .multi_dataset import LENSMultiDataset

__all__ = [
    'DeepLesionMinedDataset', 'LENSDatasetBatchSampler',
    'LENSFPRPatchDataset', 'LENSMultiDataset'
]
