# Copyright (c) mmlesion contributors. All rights reserved.
"""Tiny CT scans with label masks, the input of a conversion in tests."""
from pathlib import Path
from typing import Union

import numpy as np

from mmlesion.testing.volume_files import write_volume


def write_masked_scans(root: Union[str, Path], n: int = 2,
                       shape=(10, 20, 20)) -> None:
    """``root/img/p<i>.nii.gz`` (HU, a row of air, each scan 5 HU brighter
    than the one before) and ``root/lab/p<i>.nii.gz`` (two lesions, labels
    1 and 2) for ``i < n``."""
    root = Path(root)
    for i in range(n):
        img = np.full(shape, -100 + 5 * i, np.int16)
        img[:, 0] = -1000
        write_volume(str(root / 'img' / f'p{i}.nii.gz'), img)
        seg = np.zeros(shape, np.uint8)
        seg[2:4, 3:6, 3:6] = 1
        seg[6:8, 10:14, 10:14] = 2
        write_volume(str(root / 'lab' / f'p{i}.nii.gz'), seg)
