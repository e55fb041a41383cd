# Copyright (c) mmlesion contributors. All rights reserved.
"""Random isotropic scaling of 3D training crops."""
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from scipy import ndimage as ndi

from mmdet.registry import TRANSFORMS
from .volume_boxes import check_volume, keep_boxes_inside


@TRANSFORMS.register_module()
class RandomZoom3D(BaseTransform):
    """Scale a 3D training crop by a random factor and keep its size.

    The jitter (0.9 to 1.1) is ours (Liao et al. [9] use 0.75 to 1.25).
    ``scipy.ndimage.zoom`` (``grid_mode``: a face at ``c`` moves to
    ``f (c + 0.5) - 0.5``), then a centred cut or pad back to the size;
    boxes follow, those whose centre leaves are dropped. Training only.

    Required keys: ``img`` (z, y, x). Added keys: ``zoom_factor``.

    Args:
        scale_range (Sequence[float]): (low, high) of the uniform factor.
        prob (float): probability of zooming at all.
        pad_value (float): value of padded voxels (HU of air before
            windowing).
        order (int): spline order of the interpolation (1: trilinear).
    """

    def __init__(self,
                 scale_range: Sequence[float] = (0.9, 1.1),
                 prob: float = 1.0,
                 pad_value: float = -1024.,
                 order: int = 1) -> None:
        lo, hi = (float(s) for s in scale_range)
        if not 0 < lo <= hi:
            raise ValueError(f'scale_range must be 0 < low <= high, got '
                             f'{scale_range}')
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.scale_range = (lo, hi)
        self.prob = float(prob)
        self.pad_value = float(pad_value)
        self.order = int(order)

    def transform(self, results: dict) -> dict:
        """Zoom ``results`` (see the class doc)."""
        if np.random.rand() >= self.prob:
            results['zoom_factor'] = 1.0
            return results
        scale = float(np.random.uniform(*self.scale_range))
        img = check_volume(results, 'RandomZoom3D')
        shape = np.asarray(img.shape)
        zoomed = ndi.zoom(img, scale, order=self.order, mode='grid-constant',
                          cval=self.pad_value, grid_mode=True)
        new = np.asarray(zoomed.shape)
        # centred crop (offset > 0) or pad (offset < 0) back to ``shape``
        offset = (new - shape) // 2
        out = np.full(img.shape, self.pad_value, dtype=img.dtype)
        src = tuple(slice(max(o, 0), max(o, 0) + min(n, s))
                    for o, n, s in zip(offset, new, shape))
        dst = tuple(slice(max(-o, 0), max(-o, 0) + min(n, s))
                    for o, n, s in zip(offset, new, shape))
        out[dst] = zoomed[src]
        results['img'] = out
        results['zoom_factor'] = scale
        if 'gt_bboxes' not in results:
            return results
        boxes = np.asarray(results['gt_bboxes'],
                           dtype=np.float32).reshape(-1, 6)
        factor = np.tile((new / shape)[::-1], 2)  # x, y, z, x, y, z
        shift = np.tile(offset[::-1], 2)
        keep_boxes_inside(results, (boxes + 0.5) * factor - 0.5 - shift,
                          tuple(shape))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale_range={self.scale_range}, '
                f'prob={self.prob}, pad_value={self.pad_value})')
