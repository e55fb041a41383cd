# Copyright (c) mmlesion contributors. All rights reserved.
"""A small chest phantom for the lung-mask tests."""
from typing import Tuple

import numpy as np

from mmlesion.datasets.volumes import CTVolume


def _ellipsoid(shape, centre, radii) -> np.ndarray:
    zz, yy, xx = np.ogrid[tuple(slice(0, s) for s in shape)]
    return ((zz - centre[0]) / radii[0])**2 + (
        (yy - centre[1]) / radii[1])**2 + ((xx - centre[2]) / radii[2])**2 <= 1


def chest_phantom() -> Tuple[CTVolume, np.ndarray, np.ndarray]:
    """Air, a body on a foam table, two lungs with a vessel, and a gas
    pocket (stomach) larger than either lung below them.

    Returns:
        tuple: the (40, 64, 72) HU volume (2 x 1.5 x 1.5 mm), the lungs'
        mask and the stomach's mask.
    """
    shape = (40, 64, 72)
    img = np.full(shape, -1000., np.float32)
    img[_ellipsoid(shape, (20, 30, 36), (40, 24, 32))] = 40.
    img[:, 56:60, :] = -900.  # table foam, touching the border
    left = _ellipsoid(shape, (24, 28, 22), (12, 12, 9))
    right = _ellipsoid(shape, (24, 28, 50), (12, 12, 9))
    img[left | right] = -850.
    img[24, 26:31, 20:25] = 40.  # a vessel inside the left lung
    stomach = _ellipsoid(shape, (5, 32, 36), (6, 12, 20))
    img[stomach] = -1000.
    return CTVolume(img, (2., 1.5, 1.5), (-50., 20., -300.)), left | right, \
        stomach


__all__ = ['chest_phantom']
