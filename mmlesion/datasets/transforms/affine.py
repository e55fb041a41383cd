# Copyright (c) mmlesion contributors. All rights reserved.
"""Random affine augmentation for multi-slice CT inputs."""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from mmdet.datasets.transforms import RandomAffine
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type
from mmdet.structures.mask import BitmapMasks


def warp_perspective_channels(img: np.ndarray,
                              matrix: np.ndarray,
                              dsize: Tuple[int, int],
                              border_value: float,
                              interpolation: int = cv2.INTER_LINEAR
                              ) -> np.ndarray:
    """``cv2.warpPerspective`` for any number of channels: in chunks of at
    most 4 (OpenCV cycles its 4-value ``borderValue`` over more channels),
    each with the same constant border.

    Args:
        img (np.ndarray): (H, W) or (H, W, C) image.
        matrix (np.ndarray): 3 x 3 homography.
        dsize (tuple[int, int]): output ``(width, height)``.
        border_value (float): constant value outside the input.
        interpolation (int): cv2 interpolation flag.

    Returns:
        np.ndarray: the warped image, same number of channels and dtype.
    """
    border = (float(border_value), ) * 4
    if img.ndim == 2:
        return cv2.warpPerspective(
            img, matrix, dsize=dsize, flags=interpolation,
            borderValue=border)
    chunks = []
    for start in range(0, img.shape[2], 4):
        chunk = np.ascontiguousarray(img[..., start:start + 4])
        out = cv2.warpPerspective(
            chunk, matrix, dsize=dsize, flags=interpolation,
            borderValue=border)
        chunks.append(out.reshape(dsize[1], dsize[0], chunk.shape[2]))
    return np.concatenate(chunks, axis=2)


def translation_matrix(tx: float, ty: float) -> np.ndarray:
    """3 x 3 float64 homography of a translation by ``(tx, ty)``."""
    return np.array([[1., 0., tx], [0., 1., ty], [0., 0., 1.]])


def compose_homography(results: dict, matrix: np.ndarray) -> None:
    """Left-multiply ``results['homography_matrix']`` as mmdet does."""
    matrix = matrix.astype(np.float32)
    if results.get('homography_matrix', None) is None:
        results['homography_matrix'] = matrix
    else:
        results['homography_matrix'] = matrix @ results['homography_matrix']


def about_image_centre(matrix: np.ndarray, width: int,
                       height: int) -> np.ndarray:
    """Make the linear part of an affine matrix (mmdet's ``T @ Sh @ R @
    S``, about the top-left corner) act about the image centre ``c``: ``c``
    then goes to ``c + t``.

    Args:
        matrix (np.ndarray): 3 x 3 affine matrix about the origin, in box
            coordinates (mmdet's: pixel ``i`` spans ``[i, i + 1]``).
        width (int): image width.
        height (int): image height.

    Returns:
        np.ndarray: 3 x 3 float64 matrix in box coordinates.
    """
    cx, cy = width / 2.0, height / 2.0
    return translation_matrix(cx, cy) @ np.asarray(
        matrix, np.float64) @ translation_matrix(-cx, -cy)


def box_to_pixel_matrix(matrix: np.ndarray) -> np.ndarray:
    """The OpenCV warp of a box-coordinate matrix ``M``: OpenCV puts pixel
    ``i`` at ``i``, boxes at ``[i, i + 1]``, so images are warped with
    ``T(-0.5) @ M @ T(0.5)`` and move exactly with the boxes.

    Args:
        matrix (np.ndarray): 3 x 3 matrix in box coordinates.

    Returns:
        np.ndarray: 3 x 3 float64 matrix for ``cv2.warpPerspective``.
    """
    return translation_matrix(-0.5, -0.5) @ np.asarray(
        matrix, np.float64) @ translation_matrix(0.5, 0.5)


def project_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3 x 3 homography to points of shape (..., 2)."""
    pts = np.asarray(points, dtype=np.float32)
    flat = pts.reshape(-1, 2)
    homog = np.concatenate([flat, np.ones((len(flat), 1), np.float32)], 1)
    out = homog @ np.asarray(matrix, np.float32).T
    out = out[:, :2] / out[:, 2:3]
    return out.reshape(pts.shape).astype(np.float32)


@TRANSFORMS.register_module()
class MultiSliceRandomAffine(RandomAffine):
    """mmdet's ``RandomAffine`` for N-slice float CT images.

    The augmentation of Improved RetinaNet Sec. 3.1 (rotation / shear up to
    0.1 rad, scaling / translation up to 10 %) and of LENS Sec. IV-A
    (scale 0.8-1.2, shift). Unlike mmdet's, it fills with one border value
    on every channel (:func:`warp_perspective_channels`; default the image
    minimum, air), warps ``BitmapMasks`` (nearest), projects
    ``gt_recists``, drops the same instances as the boxes and records
    ``homography_matrix``.

    Rotation, shear and scaling act **about the image centre**
    (:func:`about_image_centre`), as in keras-retinanet, the paper's code
    base; the image is warped with the pixel-centre matrix
    (:func:`box_to_pixel_matrix`), so boxes, RECIST points and masks stay
    aligned.

    Args:
        max_rotate_degree (float): maximum rotation in degrees.
            Defaults to 10.
        max_translate_ratio (float): maximum translation, fraction of the
            image size. Defaults to 0.1.
        scaling_ratio_range (tuple[float, float]): scaling range.
            Defaults to (0.5, 1.5).
        max_shear_degree (float): maximum shear in degrees. Defaults to 2.
        border (tuple[int, int]): as mmdet's ``RandomAffine``.
        border_val (float, optional): fill value outside the image; None
            uses the minimum of each image. Defaults to None.
        bbox_clip_border (bool): clip boxes to the image. Defaults to True.
    """

    def __init__(self,
                 max_rotate_degree: float = 10.0,
                 max_translate_ratio: float = 0.1,
                 scaling_ratio_range: Sequence[float] = (0.5, 1.5),
                 max_shear_degree: float = 2.0,
                 border: Tuple[int, int] = (0, 0),
                 border_val: Optional[float] = None,
                 bbox_clip_border: bool = True) -> None:
        super().__init__(
            max_rotate_degree=max_rotate_degree,
            max_translate_ratio=max_translate_ratio,
            scaling_ratio_range=tuple(scaling_ratio_range),
            max_shear_degree=max_shear_degree,
            border=border,
            bbox_clip_border=bbox_clip_border)
        if border_val is not None and not np.isscalar(border_val):
            raise TypeError('border_val must be one number (used for every '
                            f'channel) or None, got {border_val!r}')
        self.border_val = border_val

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        """Warp image and annotations with one random affine matrix."""
        img = results['img']
        height = img.shape[0] + self.border[1] * 2
        width = img.shape[1] + self.border[0] * 2
        # box coordinates, about the centre; pixel-centre version for cv2
        matrix = about_image_centre(
            self._get_random_homography_matrix(height, width), width, height)
        pixel_matrix = box_to_pixel_matrix(matrix)
        fill = float(img.min()) if self.border_val is None else float(
            self.border_val)
        results['img'] = warp_perspective_channels(img, pixel_matrix,
                                                   (width, height), fill)
        results['img_shape'] = results['img'].shape[:2]

        masks = results.get('gt_masks', None)
        if masks is not None:
            if not isinstance(masks, BitmapMasks):
                raise TypeError(
                    f'{self.__class__.__name__} supports BitmapMasks, got '
                    f'{type(masks).__name__}')
            warped = np.stack([
                warp_perspective_channels(
                    m, pixel_matrix, (width, height), 0,
                    interpolation=cv2.INTER_NEAREST) for m in masks.masks
            ]) if len(masks) else np.zeros((0, height, width), np.uint8)
            results['gt_masks'] = BitmapMasks(warped, height, width)
        if results.get('gt_recists', None) is not None:
            results['gt_recists'] = project_points(results['gt_recists'],
                                                   matrix)

        bboxes = results.get('gt_bboxes', None)
        if bboxes is not None and len(bboxes):
            bboxes.project_(matrix.astype(np.float32))
            if self.bbox_clip_border:
                bboxes.clip_([height, width])
            valid = bboxes.is_inside([height, width]).numpy()
            results['gt_bboxes'] = bboxes[valid]
            for key in ('gt_bboxes_labels', 'gt_ignore_flags', 'gt_recists'):
                if results.get(key, None) is not None:
                    results[key] = results[key][valid]
            if results.get('gt_masks', None) is not None:
                results['gt_masks'] = results['gt_masks'][np.flatnonzero(
                    valid)]

        compose_homography(results, matrix)
        return results
