# Copyright (c) mmlesion contributors. All rights reserved.
"""Pixel-spacing resampling and black-border clipping of CT slices.

Both steps come from the LENS paper (Sec. IV-A: "Every axial slice was
resized so that each pixel corresponds to 0.8mm ... The black borders in
images were clipped for computation efficiency"), also used by the 3D
Aggregated Faster R-CNN paper on DeepLesion (Sec. IV-C, "clipping black
borders").
"""
import math
from typing import Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import Resize
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import autocast_box_type

from .affine import compose_homography, translation_matrix


@TRANSFORMS.register_module()
class ResampleToSpacing(BaseTransform):
    """Resize the image so that one pixel covers ``spacing`` mm.

    The current spacing is ``results['spacing'] / scale_factor``;
    ``scale_factor`` is composed (mmdet's ``Resize`` overwrites it), so
    ``rescale=True`` maps predictions back **provided no mmdet Resize comes
    after this transform**. Boxes, ``gt_recists``, ``gt_masks``,
    ``gt_seg_map`` and ``homography_matrix`` follow, as by mmdet's
    ``Resize``.

    Required keys: ``img``, ``spacing`` (mm/px of the original image).
    Added keys: ``scale``, ``scale_factor``, ``keep_ratio``,
    ``homography_matrix``.

    Args:
        spacing (float): target mm per pixel. Defaults to 0.8.
        interpolation (str): image interpolation of :func:`mmcv.imresize`.
            Defaults to 'bilinear'.
        clip_object_border (bool): clip boxes to the image as mmdet's
            ``Resize``. Defaults to True.
    """

    def __init__(self,
                 spacing: float = 0.8,
                 interpolation: str = 'bilinear',
                 clip_object_border: bool = True) -> None:
        if not spacing > 0:
            raise ValueError(f'spacing must be > 0, got {spacing}')
        self.spacing = float(spacing)
        self.interpolation = interpolation
        self.clip_object_border = clip_object_border

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        """Resample ``results`` to ``self.spacing`` mm/px."""
        spacing = results.get('spacing')
        if spacing is None or not (math.isfinite(spacing) and spacing > 0):
            raise ValueError(
                f"{results.get('img_path', '<image>')}: ResampleToSpacing "
                f"needs a positive 'spacing' (mm/px), got {spacing!r}")
        img = results['img']
        h, w = img.shape[:2]
        sf_w, sf_h = results.get('scale_factor', (1.0, 1.0))
        new_w = max(1, int(round(w * spacing / sf_w / self.spacing)))
        new_h = max(1, int(round(h * spacing / sf_h / self.spacing)))
        # mmdet's Resize to that size (image, boxes, masks, seg map,
        # homography), then its factor composed with the one before
        Resize(scale=(new_w, new_h), keep_ratio=False,
               clip_object_border=self.clip_object_border,
               interpolation=self.interpolation).transform(results)
        w_scale, h_scale = results['scale_factor']
        results['scale_factor'] = (sf_w * w_scale, sf_h * h_scale)
        results['keep_ratio'] = True
        if results.get('gt_recists', None) is not None:
            recists = np.asarray(results['gt_recists'], np.float32).copy()
            recists[..., 0] *= w_scale
            recists[..., 1] *= h_scale
            results['gt_recists'] = recists
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(spacing={self.spacing}, '
                f"interpolation='{self.interpolation}', "
                f'clip_object_border={self.clip_object_border})')


@TRANSFORMS.register_module()
class ClipBlackBorder(BaseTransform):
    """Crop the image to the body, removing the black (air) border.

    The body mask is the key (middle) channel above ``threshold_hu`` (mapped
    through the window after :class:`WindowHU`), opened with an
    ``opening_size`` square that removes thin structures such as the table,
    as in the public 3DCE / MULAN code (-768 HU, 7 x 7). The crop is the
    mask's bounding box grown by ``margin`` pixels and, with
    ``keep_annotations``, by every box and RECIST point. An empty mask
    leaves the image as is. Boxes, ``gt_recists``, ``gt_masks`` and
    ``gt_seg_map`` are shifted alongside.

    ``crop_offset = (dx, dy)`` records the offset **in pixels of the
    original image** (added to any earlier one), which
    :func:`~mmlesion.models.detectors.uncropped.to_uncropped` adds back
    (``'crop_offset'`` in ``PackDetInputs``' ``meta_keys``);
    ``homography_matrix`` gets the translation.

    Args:
        threshold_hu (float): body/air threshold in HU. Defaults to -768.
        opening_size (int): side of the square structuring element of the
            opening; 0 or 1 disables it. Defaults to 7.
        margin (int): pixels kept around the body. Defaults to 0.
        keep_annotations (bool): grow the crop to contain all boxes and
            RECIST points. Defaults to True.
        clip_object_border (bool): clip boxes to the cropped image.
            Defaults to True.
    """

    def __init__(self,
                 threshold_hu: float = -768.,
                 opening_size: int = 7,
                 margin: int = 0,
                 keep_annotations: bool = True,
                 clip_object_border: bool = True) -> None:
        if opening_size < 0 or margin < 0:
            raise ValueError('opening_size and margin must be >= 0, got '
                             f'{opening_size} and {margin}')
        self.threshold_hu = float(threshold_hu)
        self.opening_size = int(opening_size)
        self.margin = int(margin)
        self.keep_annotations = keep_annotations
        self.clip_object_border = clip_object_border

    def _body_mask(self, results: dict) -> np.ndarray:
        img = results['img']
        key = img[..., img.shape[2] // 2] if img.ndim == 3 else img
        thr = self.threshold_hu
        if results.get('hu_window') is not None:
            (lo, hi), (out_lo, out_hi) = results['hu_window'], results.get(
                'hu_out_range', (0., 1.))
            thr = min(max(thr, lo), hi)
            thr = (thr - lo) / (hi - lo) * (out_hi - out_lo) + out_lo
            mask = key > thr if out_hi > out_lo else key < thr
        else:
            mask = key > thr
        mask = mask.astype(np.uint8)
        if self.opening_size > 1:
            kernel = np.ones((self.opening_size, self.opening_size),
                             np.uint8)
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        return mask.astype(bool)

    def _crop_box(self, results: dict) -> Tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``, end exclusive; an empty mask: the image."""
        h, w = results['img'].shape[:2]
        mask = self._body_mask(results)
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return 0, 0, w, h
        x0, x1 = cols[0] - self.margin, cols[-1] + 1 + self.margin
        y0, y1 = rows[0] - self.margin, rows[-1] + 1 + self.margin
        if self.keep_annotations:
            pts = []
            boxes = results.get('gt_bboxes', None)
            if boxes is not None and len(boxes):
                arr = np.asarray(boxes.numpy() if hasattr(boxes, 'numpy')
                                 else boxes).reshape(-1, 4)
                pts.append(arr[:, :2])
                pts.append(arr[:, 2:])
            recists = results.get('gt_recists', None)
            if recists is not None and len(recists):
                pts.append(np.asarray(recists).reshape(-1, 2))
            if pts:
                pts = np.concatenate(pts)
                x0 = min(x0, int(math.floor(pts[:, 0].min())))
                y0 = min(y0, int(math.floor(pts[:, 1].min())))
                x1 = max(x1, int(math.ceil(pts[:, 0].max())) + 1)
                y1 = max(y1, int(math.ceil(pts[:, 1].max())) + 1)
        x0, y0 = max(int(x0), 0), max(int(y0), 0)
        x1, y1 = min(int(x1), w), min(int(y1), h)
        return x0, y0, x1, y1

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        """Crop ``results`` to the body (see the class doc)."""
        x0, y0, x1, y1 = self._crop_box(results)
        results['img'] = np.ascontiguousarray(results['img'][y0:y1, x0:x1])
        results['img_shape'] = results['img'].shape[:2]
        if results.get('gt_bboxes', None) is not None:
            results['gt_bboxes'].translate_([-x0, -y0])
            if self.clip_object_border:
                results['gt_bboxes'].clip_(results['img_shape'])
        if results.get('gt_recists', None) is not None:
            recists = np.asarray(results['gt_recists'], np.float32).copy()
            recists[..., 0] -= x0
            recists[..., 1] -= y0
            results['gt_recists'] = recists
        if results.get('gt_masks', None) is not None:
            results['gt_masks'] = results['gt_masks'].crop(
                np.array([x0, y0, x1, y1]))
        if results.get('gt_seg_map', None) is not None:
            results['gt_seg_map'] = results['gt_seg_map'][y0:y1, x0:x1]
        sf_w, sf_h = results.get('scale_factor', (1.0, 1.0))
        old_dx, old_dy = results.get('crop_offset', (0.0, 0.0))
        results['crop_offset'] = (old_dx + x0 / sf_w, old_dy + y0 / sf_h)
        compose_homography(results, translation_matrix(-x0, -y0))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(threshold_hu='
                f'{self.threshold_hu}, opening_size={self.opening_size}, '
                f'margin={self.margin}, '
                f'keep_annotations={self.keep_annotations}, '
                f'clip_object_border={self.clip_object_border})')
