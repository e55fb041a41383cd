# Copyright (c) mmlesion contributors. All rights reserved.
"""Random 3D crops with positive-biased sampling (3D Aggregated Faster
R-CNN, Sec. III "Divide-and-Conquer" and IV-A)."""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS
from .volume_boxes import check_volume, keep_boxes_inside


@TRANSFORMS.register_module()
class RandomCrop3D(BaseTransform):
    """Crop a fixed-size sub-cube of a volume, biased towards lesions.

    The paper trains on random ``128^3`` crops of 1 mm scans (Sec. IV-A).
    With probability ``pos_prob`` (ours, as DeepLung) the crop contains a
    random non-ignored lesion's centre, at least ``margin`` voxels from its
    faces where it can, else it lies uniformly; smaller volumes are padded
    after their end. Boxes whose centre leaves the crop are dropped.

    Required keys: ``img`` (z, y, x), ``gt_bboxes`` (N, 6). Added keys:
    ``crop_origin_zyx`` (the crop's first voxel), ``crop_source``.

    Args:
        crop_size (int | Sequence[int]): (z, y, x) crop. Defaults to 128.
        pos_prob (float): probability of a lesion-centred crop.
        margin (int): minimum distance (voxels) of a sampled lesion centre
            from the crop faces.
        pad_value (float): value of padded voxels (the HU of air, -1024,
            before windowing).
    """

    def __init__(self,
                 crop_size: Union[int, Sequence[int]] = 128,
                 pos_prob: float = 0.7,
                 margin: int = 8,
                 pad_value: float = -1024.0) -> None:
        self.crop_size = (int(crop_size), ) * 3 if isinstance(
            crop_size, int) else tuple(int(c) for c in crop_size)
        if len(self.crop_size) != 3 or min(self.crop_size) < 1:
            raise ValueError(f'crop_size must be 3 positive ints, got '
                             f'{crop_size}')
        if not 0 <= pos_prob <= 1:
            raise ValueError(f'pos_prob must be in [0, 1], got {pos_prob}')
        self.pos_prob = float(pos_prob)
        self.margin = int(margin)
        self.pad_value = float(pad_value)

    def _sample_origin(self, shape: Tuple[int, ...],
                       centre_zyx: Optional[np.ndarray]) -> np.ndarray:
        origin = np.zeros(3, dtype=np.int64)
        for ax in range(3):
            size, crop = shape[ax], self.crop_size[ax]
            hi = max(size - crop, 0)  # crops stay inside when they fit
            if centre_zyx is None:
                origin[ax] = np.random.randint(0, hi + 1)
                continue
            m = min(self.margin, (crop - 1) // 2)
            lo_o = int(np.ceil(centre_zyx[ax] - (crop - 1 - m)))
            hi_o = int(np.floor(centre_zyx[ax] - m))
            lo_o, hi_o = max(lo_o, 0), min(hi_o, hi)
            origin[ax] = np.random.randint(lo_o, hi_o + 1) \
                if lo_o <= hi_o else int(np.clip(round(
                    centre_zyx[ax] - crop / 2), 0, hi))
        return origin

    def _sample_centre(self, results: dict, centres_zyx: np.ndarray,
                       ignore: np.ndarray) -> Optional[np.ndarray]:
        """The (z, y, x) voxel the crop must contain (None: uniform).

        Sets ``results['crop_source']`` to ``'positive'`` or ``'random'``
        (subclasses, e.g. ``HardRegionRandomCrop3D``, add their own).
        """
        candidates = np.flatnonzero(~ignore)
        if len(candidates) and np.random.rand() < self.pos_prob:
            results['crop_source'] = 'positive'
            return centres_zyx[np.random.choice(candidates)]
        results['crop_source'] = 'random'
        return None

    def transform(self, results: dict) -> dict:
        """Crop ``results`` (see the class doc)."""
        img = check_volume(results, 'RandomCrop3D')
        boxes = np.asarray(results.get('gt_bboxes', np.zeros((0, 6))),
                           dtype=np.float32).reshape(-1, 6)
        ignore = np.asarray(results.get('gt_ignore_flags',
                                        np.zeros(len(boxes), bool)), bool)
        centres_zyx = ((boxes[:, :3] + boxes[:, 3:]) / 2)[:, ::-1]
        centre = self._sample_centre(results, centres_zyx, ignore)
        origin = self._sample_origin(img.shape, centre)
        out = np.full(self.crop_size, self.pad_value, dtype=img.dtype)
        z, y, x = origin
        part = img[z:z + self.crop_size[0], y:y + self.crop_size[1],
                   x:x + self.crop_size[2]]
        out[:part.shape[0], :part.shape[1], :part.shape[2]] = part
        results['img'] = out
        results['img_shape'] = self.crop_size
        results['crop_origin_zyx'] = tuple(int(v) for v in origin)
        shifted = boxes - np.tile(origin[::-1], 2).astype(np.float32)
        keep_boxes_inside(results, shifted, self.crop_size)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(crop_size={self.crop_size}, '
                f'pos_prob={self.pos_prob}, margin={self.margin}, '
                f'pad_value={self.pad_value})')
