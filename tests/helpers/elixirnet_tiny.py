# Copyright (c) mmlesion contributors. All rights reserved.
"""Options that shrink a full-size 2D DeepLesion (or KiTS19 2D) ElixirNet
config to seconds on a CPU: appended as ``--cfg-options`` to a training or
a test, never edited into the configs."""
from typing import List

#: ResNet-18 instead of -50, no loader workers, the synthetic slices' own
#: 256 px instead of the configs' 512 (a quarter of the pixels; every 2D
#: DeepLesion config resizes at step 3): the part a test run needs too.
_MODEL = ['model.backbone.depth=18', 'model.backbone.init_cfg=None',
          'model.neck.in_channels=[64,128,256,512]']


def _loader(split: str, images: int) -> List[str]:
    return [f'{split}_dataloader.dataset.indices={images}',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
            f'{split}_dataloader.dataset.pipeline.3.scale=(256,256)']


def tiny_options(train: int = 2, val: int = 1, test: int = 2,
                 train_cfg: bool = True) -> List[str]:
    """The options: ``train`` / ``val`` / ``test`` images of each split
    (0: leave the split alone, e.g. a config without a val loader), one
    epoch unless ``train_cfg`` is False (a test alone)."""
    out = ['train_cfg.max_epochs=1'] if train_cfg else []
    out += _MODEL
    for split, images in (('train', train), ('val', val), ('test', test)):
        if images:
            out += _loader(split, images)
    return out


#: fewer sampled RoIs and test proposals (the RoI heads' cost on a CPU)
ROIS = ['model.train_cfg.rcnn.sampler.num=32',
        'model.test_cfg.rpn.max_per_img=100']


def deformable(options: List[str]) -> List[str]:
    """``options`` for the Deformv2 configs: mmdet's deformable convolutions
    need ResNet's bottleneck blocks, so ResNet-50 stays, at an eighth of
    its width (8 base channels: stages of 32 to 256 channels)."""
    return [o for o in options if not o.startswith((
        'model.backbone.depth=', 'model.neck.in_channels='))] + [
            'model.backbone.base_channels=8',
            'model.neck.in_channels=[32,64,128,256]']


#: One epoch of 2 training images, 1 val and 2 test images.
TINY = tiny_options()
#: :data:`TINY` with the slices at 128 px (the convolutions a quarter) and
#: no validation (``val_begin`` after the one epoch: its forward, FROC plot
#: and best checkpoint), for the rows that test ``@last`` and check no
#: learning.
TINY_LAST = [o.replace('(256,256)', '(128,128)')
             for o in TINY] + ['train_cfg.val_begin=2']
#: :data:`TINY` for configs without a val loader (KiTS19's 2D export has no
#: val split; the ALB searches validate on nothing).
TINY_NO_VAL = tiny_options(val=0)
#: Table 6 (FPN baseline, a search, the + ALB training, its test): the ALB
#: searches have no val loader, so no val options, and no validation at all
#: (``val_begin`` after the one epoch; the table tests ``@last``); 32 sampled
#: RoIs instead of 512 and 100 test proposals instead of 1000, for the ALB
#: head's cost on a CPU; the slices at 128 px (three searches, their
#: trainings and tests: the convolutions were most of their cost).
TINY_TABLE6 = [o.replace('(256,256)', '(128,128)') for o in TINY_NO_VAL] + [
    'train_cfg.val_begin=2', 'model.train_cfg.rcnn.sampler.num=32',
    'model.test_cfg.rpn.max_per_img=100'
]
