# Copyright (c) mmlesion contributors. All rights reserved.
"""Random flips and axial 90-degree rotations of 3D training crops."""
from typing import List, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS

# box columns of the numpy axes z, y, x in [x1, y1, z1, x2, y2, z2]
_BOX_COL = {0: 2, 1: 1, 2: 0}


def flip_volume_boxes(img: np.ndarray, boxes: np.ndarray,
                      axis: int) -> Tuple[np.ndarray, np.ndarray]:
    """Flip a (z, y, x) volume along a numpy axis, and its boxes.

    Voxel ``i`` goes to ``n - 1 - i``, so a continuous coordinate ``c``
    (the project's convention: voxel ``i`` spans ``[i - 0.5, i + 0.5]``)
    goes to ``n - 1 - c`` and a box's two faces swap.

    Args:
        img (np.ndarray): (z, y, x) volume.
        boxes (np.ndarray): (N, 6) ``[x1, y1, z1, x2, y2, z2]``.
        axis (int): 0 (z), 1 (y) or 2 (x).

    Returns:
        tuple: the flipped volume (a copy) and boxes.
    """
    col = _BOX_COL[axis]
    n = img.shape[axis]
    out = boxes.copy()
    out[:, col] = n - 1 - boxes[:, col + 3]
    out[:, col + 3] = n - 1 - boxes[:, col]
    return np.flip(img, axis).copy(), out


def swap_yx(img: np.ndarray,
            boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Transpose the y and x axes of a volume and its boxes."""
    swapped = boxes[:, [1, 0, 2, 4, 3, 5]]
    return np.ascontiguousarray(img.transpose(0, 2, 1)), swapped


def rot90_axial(img: np.ndarray, boxes: np.ndarray,
                k: int) -> Tuple[np.ndarray, np.ndarray]:
    """``np.rot90(img, k, axes=(1, 2))`` with the boxes rotated alike.

    Built from the same flip and transpose steps as numpy's ``rot90``.

    Args:
        img (np.ndarray): (z, y, x) volume.
        boxes (np.ndarray): (N, 6) boxes.
        k (int): quarter turns (any integer; taken modulo 4).

    Returns:
        tuple: the rotated volume and boxes.
    """
    k = k % 4
    if k == 1:
        img, boxes = flip_volume_boxes(img, boxes, 2)
        return swap_yx(img, boxes)
    if k == 2:
        img, boxes = flip_volume_boxes(img, boxes, 1)
        return flip_volume_boxes(img, boxes, 2)
    if k == 3:
        img, boxes = swap_yx(img, boxes)
        return flip_volume_boxes(img, boxes, 2)
    return img, boxes


def _boxes(results: dict) -> np.ndarray:
    return np.asarray(results.get('gt_bboxes', np.zeros((0, 6))),
                      dtype=np.float32).reshape(-1, 6)


@TRANSFORMS.register_module()
class RandomFlip3D(BaseTransform):
    """Flip a 3D training crop along each axis with probability ``prob``.

    The paper does not describe its augmentation (Sec. IV-A); these flips
    are those of the detectors it builds on (Liao et al. [9], DeepLung).
    Training-time only: the world geometry is not updated.

    Required keys: ``img`` (z, y, x). Added keys: ``flip_axes`` (the
    flipped numpy axes, 0 = z).

    Args:
        prob (float): probability of a flip, per axis.
        axes (Sequence[int]): numpy axes that may flip (0 z, 1 y, 2 x).
    """

    def __init__(self, prob: float = 0.5,
                 axes: Sequence[int] = (0, 1, 2)) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if not set(axes) <= {0, 1, 2}:
            raise ValueError(f'axes must be among 0, 1, 2, got {axes}')
        self.prob = float(prob)
        self.axes = tuple(int(a) for a in axes)

    def transform(self, results: dict) -> dict:
        """Flip ``results`` (see the class doc)."""
        img, boxes = results['img'], _boxes(results)
        flipped: List[int] = []
        for axis in self.axes:
            if np.random.rand() < self.prob:
                img, boxes = flip_volume_boxes(img, boxes, axis)
                flipped.append(axis)
        results['img'], results['gt_bboxes'] = img, boxes
        results['flip_axes'] = tuple(flipped)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob}, axes={self.axes})'


@TRANSFORMS.register_module()
class RandomRot90Axial(BaseTransform):
    """Rotate a 3D training crop by 0, 90, 180 or 270 degrees in the axial
    (y, x) plane, uniformly.

    Ours; a crop whose y and x sizes differ gets 0 or 180 degrees.
    Training-time only. Added keys: ``rot90_k`` (``np.rot90``'s ``k``).
    """

    def transform(self, results: dict) -> dict:
        """Rotate ``results`` (see the class doc)."""
        img = results['img']
        square = img.shape[1] == img.shape[2]
        k = int(np.random.randint(4)) if square else 2 * int(
            np.random.randint(2))
        img, boxes = rot90_axial(img, _boxes(results), k)
        results['img'], results['gt_bboxes'] = img, boxes
        results['img_shape'] = img.shape
        results['rot90_k'] = k
        return results
