# Copyright (c) mmlesion contributors. All rights reserved.
"""What a training step of LENS's 3D false-positive reduction network
takes, for the step-time engine (:mod:`mmlesion.apps.reproduce.timing`), and
how many patches its epoch has (:mod:`mmlesion.apps.reproduce.estimate`)."""
from typing import TYPE_CHECKING, Optional

from mmlesion.apps.reproduce.estimate import count_training_images
from mmlesion.apps.reproduce.timing import TrainingInput, find_in_config

if TYPE_CHECKING:
    from mmengine.config import Config

    from mmlesion.structures.data_batch import DataBatch

#: FPR patches per annotated training lesion (TP : FP = 1 : 2)
FPR_PATCHES_PER_LESION = 3
#: an epoch of the FPR network is every TP proposal and twice as many FPs
#: (Sec. VI-B); about one TP per annotated training lesion of the official
#: split (32,735 lesions less 4,889 val and 4,927 test = 22,919), mined
#: lesions not counted
PAPER_FPR_PATCHES = FPR_PATCHES_PER_LESION * 22919


def fpr_patches(data_root: Optional[str]) -> int:
    """Training patches per epoch of the FPR network (``deeplesion-fpr``):
    :data:`FPR_PATCHES_PER_LESION` per annotated training lesion of the
    release at ``data_root``, else :data:`PAPER_FPR_PATCHES`."""
    lesions = count_training_images(data_root, lesions=True)
    return FPR_PATCHES_PER_LESION * lesions if lesions else PAPER_FPR_PATCHES


def patch_input(cfg: 'Config', batch: int) -> TrainingInput:
    """The training input of an FPR config: ``batch`` patches of its
    ``patch_size``.

    Raises:
        ValueError: no ``patch_size`` in its ``train_dataloader``.
    """
    size = find_in_config(cfg.get('train_dataloader'),
                          lambda d: d.get('patch_size'))
    if not size:
        raise ValueError('LENSFPR config without a patch_size in its '
                         'train_dataloader')
    return TrainingInput('patch', batch, tuple(int(s) for s in size),
                         unit='patch')


def patch_batch(spec: TrainingInput, step: int) -> 'DataBatch':
    """A synthetic batch of patches, TP : FP = 1 : 2, seeded by ``step``."""
    import torch
    gen = torch.Generator().manual_seed(step)
    z, y, x = spec.shape
    box = [x // 4, y // 4, z // 4, 3 * x // 4, 3 * y // 4, 3 * z // 4]
    return dict(
        inputs=torch.rand(spec.batch_size, 1, z, y, x, generator=gen) * 2 -
        1,
        data_samples=[
            dict(bbox_3d=box, label=int(i % 3 == 0), lens_score=0.5)
            for i in range(spec.batch_size)
        ])
