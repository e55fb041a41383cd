# Copyright (c) mmlesion contributors. All rights reserved.
"""Helpers shared by the 3D transforms: the volume check and the boxes that
stay in a (cropped, zoomed) volume."""
from typing import Sequence

import numpy as np


def check_volume(results: dict, transform: str) -> np.ndarray:
    """``results['img']``, raising (naming the scan) unless it is 3D.

    Args:
        results (dict): the pipeline results.
        transform (str): the caller's name, for the message.

    Returns:
        np.ndarray: the (z, y, x) volume.
    """
    img = results['img']
    if img.ndim != 3:
        raise ValueError(f"{results.get('img_path', '<volume>')}: "
                         f'{transform} needs a (z, y, x) volume, got shape '
                         f'{img.shape}')
    return img


def keep_boxes_inside(results: dict, boxes: np.ndarray,
                      shape_zyx: Sequence[int]) -> np.ndarray:
    """Store the boxes whose centre lies in the volume, with their labels
    and ignore flags.

    Args:
        results (dict): the pipeline results (``gt_bboxes`` is set,
            ``gt_bboxes_labels`` / ``gt_ignore_flags`` filtered alike).
        boxes (np.ndarray): (N, 6) ``[x1, y1, z1, x2, y2, z2]`` in the
            volume's continuous voxels (voxel ``i`` spans ``i +- 0.5``).
        shape_zyx (Sequence[int]): the volume's shape.

    Returns:
        np.ndarray: (N,) bool, the kept boxes.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 6)
    centres = (boxes[:, :3] + boxes[:, 3:]) / 2
    keep = np.all((centres >= -0.5) &
                  (centres < np.asarray(shape_zyx[::-1]) - 0.5), axis=1)
    results['gt_bboxes'] = boxes[keep]
    for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
        if key in results:
            results[key] = np.asarray(results[key])[keep]
    return keep
