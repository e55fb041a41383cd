# Copyright (c) mmlesion contributors. All rights reserved.
"""Lesion-centred and background patches of a 2.5D slice stack (as
nnDetection trains on patches): mmdet's ``RandomCrop`` with its offset
drawn around a lesion with probability ``pos_prob``."""
from typing import Tuple

import numpy as np
from mmcv.transforms.utils import cache_randomness

from mmdet.datasets.transforms import RandomCrop
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LesionPatchCrop(RandomCrop):
    """A ``crop_size`` patch of the (resampled) image: with probability
    ``pos_prob`` it holds a random non-ignored lesion's centre at least
    ``margin`` pixels from its sides (where the patch allows), else it lies
    uniformly in the image (background, or whatever lesion it catches).
    A patch is never larger than the image. Cropping, box clipping and
    dropping boxes left without area are mmdet's ``RandomCrop``'s
    (``allow_negative_crop``: a background patch is kept).

    Required keys: ``img``, ``gt_bboxes``; optional ``gt_ignore_flags``.
    Added key: ``crop_source`` (``'positive'`` or ``'random'``).

    Args:
        crop_size (tuple[int, int]): (width, height) in pixels, as mmdet's
            ``RandomCrop``.
        pos_prob (float): probability of a lesion-centred patch.
        margin (int): least distance (pixels) of the lesion's centre from
            the patch's sides.
    """

    def __init__(self, crop_size: Tuple[int, int], pos_prob: float = 2 / 3,
                 margin: int = 16) -> None:
        super().__init__(crop_size=tuple(crop_size), crop_type='absolute',
                         allow_negative_crop=True)
        if not 0 <= pos_prob <= 1:
            raise ValueError(f'pos_prob must be in [0, 1], got {pos_prob}')
        self.pos_prob = float(pos_prob)
        self.margin = int(margin)
        self._centres = np.zeros((0, 2))
        self._shape = (0, 0)
        self._source = 'random'

    def transform(self, results: dict) -> dict:
        """Crop ``results`` (see the class doc)."""
        boxes = results.get('gt_bboxes')
        boxes = np.zeros((0, 4)) if boxes is None else np.asarray(
            boxes.numpy() if hasattr(boxes, 'numpy') else boxes,
            float).reshape(-1, 4)
        ignore = np.asarray(results.get('gt_ignore_flags',
                                        np.zeros(len(boxes), bool)), bool)
        keep = boxes[~ignore]
        self._centres = np.stack([(keep[:, 1] + keep[:, 3]) / 2,
                                  (keep[:, 0] + keep[:, 2]) / 2], 1)
        self._shape = results['img'].shape[:2]
        results['crop_source'] = 'random'
        out = super().transform(results)
        if out is not None:
            out['crop_source'] = self._source
        return out

    @cache_randomness
    def _rand_offset(self, margin: Tuple[int, int]) -> Tuple[int, int]:
        """The patch's (y, x) offset: around a lesion's centre with
        probability ``pos_prob``, else uniform (``margin``: the image's
        size less the patch's)."""
        self._source = 'random'
        if len(self._centres) and np.random.rand() < self.pos_prob:
            self._source = 'positive'
            centre = self._centres[np.random.randint(len(self._centres))]
            offset = []
            for c, room, size in zip(centre, margin, self._shape):
                crop = size - room
                m = min(self.margin, (crop - 1) // 2)
                lo = max(int(np.ceil(c - (crop - 1 - m))), 0)
                hi = min(int(np.floor(c - m)), room)
                offset.append(np.random.randint(lo, hi + 1) if lo <= hi else
                              int(np.clip(round(c - crop / 2), 0, room)))
            return tuple(offset)
        return tuple(np.random.randint(0, room + 1) for room in margin)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'pos_prob={self.pos_prob}, margin={self.margin})')
