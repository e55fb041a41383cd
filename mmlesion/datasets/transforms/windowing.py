# Copyright (c) mmlesion contributors. All rights reserved.
"""HU windowing of CT images."""
from typing import Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS


def window_hu(img: np.ndarray, window: Tuple[float, float],
              out_range: Tuple[float, float]) -> np.ndarray:
    """Clip HU values to ``window`` and map it linearly onto ``out_range``.

    Args:
        img (np.ndarray): image in HU.
        window (tuple[float, float]): ``(low, high)`` HU.
        out_range (tuple[float, float]): values that ``low`` and ``high``
            map to.

    Returns:
        np.ndarray: float32 image in ``out_range``.
    """
    low, high = float(window[0]), float(window[1])
    out_low, out_high = float(out_range[0]), float(out_range[1])
    # one contiguous float32 copy, then the same operations in place (one
    # new array instead of four, and no strided clip of a cropped view)
    img = np.array(img, dtype=np.float32, order='C')
    np.clip(img, low, high, out=img)
    scale = (out_high - out_low) / (high - low)
    img -= np.float32(low)
    img *= np.float32(scale)
    img += np.float32(out_low)
    return img


@TRANSFORMS.register_module()
class WindowHU(BaseTransform):
    """Clip an HU image to a window and rescale it linearly.

    Each paper uses its own single window: Improved RetinaNet Sec. 3.1 clips
    to [-1024, 1050] HU and normalises to [-1, 1] (the default); LENS
    Sec. IV-A maps [-1024, 3071] HU to [0, 255] (``window=(-1024, 3071),
    out_range=(0., 255.)``).

    Added keys: ``hu_window`` and ``hu_out_range`` (read by later HU-based
    steps); a second window is refused.

    Args:
        window (tuple[float, float]): HU range. Defaults to (-1024, 1050).
        out_range (tuple[float, float]): output range. Defaults to (-1, 1).
    """

    def __init__(self,
                 window: Tuple[float, float] = (-1024., 1050.),
                 out_range: Tuple[float, float] = (-1., 1.)) -> None:
        if len(window) != 2 or not window[0] < window[1]:
            raise ValueError(f'window must be (low, high) with low < high, '
                             f'got {window}')
        if len(out_range) != 2 or out_range[0] == out_range[1]:
            raise ValueError(f'out_range must be two different values, got '
                             f'{out_range}')
        self.window = (float(window[0]), float(window[1]))
        self.out_range = (float(out_range[0]), float(out_range[1]))

    def transform(self, results: dict) -> dict:
        """Window ``results['img']`` (HU)."""
        if 'hu_window' in results:
            raise ValueError(
                f"{results.get('img_path', '<image>')}: the image was "
                f"windowed already ({results['hu_window']} -> "
                f"{results['hu_out_range']}); use a single WindowHU")
        results['img'] = window_hu(results['img'], self.window,
                                   self.out_range)
        results['hu_window'] = self.window
        results['hu_out_range'] = self.out_range
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(window={self.window}, '
                f'out_range={self.out_range})')
