# Copyright (c) mmlesion contributors. All rights reserved.
"""The N channels of a 2.5D input taken from an in-memory CT volume.

Shared by :class:`~mmlesion.datasets.transforms.LoadDeepLesionSlices` (its
volume input) and :class:`~mmlesion.datasets.transforms.LoadVolumeSlices`.
"""
import math
from typing import Optional, Sequence, Tuple

import numpy as np


def slices_from_volume(volume: np.ndarray, key: int,
                       offsets: Sequence[float],
                       hu_clip: Optional[Tuple[float, float]]) -> np.ndarray:
    """The channels at ``key + offsets`` of a (z, y, x) volume.

    Linear interpolation between the two slices around each position;
    positions beyond the first or last slice take that slice.

    Args:
        volume (np.ndarray): (z, y, x) HU.
        key (int): index of the key slice.
        offsets (Sequence[float]): channel positions relative to the key, in
            slice units.
        hu_clip (tuple[float, float], optional): HU range applied.

    Returns:
        np.ndarray: float32 (y, x, len(offsets)).
    """
    depth = volume.shape[0]
    channels = []
    for off in offsets:
        pos = min(max(key + off, 0.), depth - 1.)
        lo = int(math.floor(pos))
        w = pos - lo
        if w < 1e-6 or lo + 1 >= depth:
            img = volume[lo]
        else:
            img = (1. - w) * volume[lo] + w * volume[lo + 1]
        channels.append(img)
    img = np.stack(channels, axis=-1).astype(np.float32)
    if hu_clip is not None:
        np.clip(img, hu_clip[0], hu_clip[1], out=img)
    return img
