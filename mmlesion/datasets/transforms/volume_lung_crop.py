# Copyright (c) mmlesion contributors. All rights reserved.
"""Crop a CT scan to its lungs (3D Aggregated Faster R-CNN, Sec. IV-A)."""
import logging
import os.path as osp
from collections import OrderedDict
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log

from mmdet.registry import TRANSFORMS
from ..volumes import CTVolume
from ..volumes.cropping import crop_volume, mask_region
from ..volumes.lung_mask import (LUNA16_LUNG_LABELS, LungMaskSettings,
                                 box_corner_mask, compute_lung_box,
                                 read_lung_mask)
from .volume_boxes import check_volume, keep_boxes_inside


@TRANSFORMS.register_module()
class CropToLungs(BaseTransform):
    """Crop a loaded scan to the bounding box of its lungs plus a margin.

    "We use officially provided segmentation masks to remove unnecessary
    volume from the original 3D scans" (Sec. IV-A): LUNA16's
    ``seg-lungs-LUNA16/<series_uid>.mhd`` in ``mask_dir`` (mapped through
    world coordinates), else the box computed from the HU volume
    (:func:`~mmlesion.datasets.volumes.lung_mask.compute_lung_box`).
    ``margin_mm`` = 10 mm is ours (the paper gives none; its ref. [9] keeps
    5 to 10 mm).

    ``origin_xyz`` becomes the world position of the first kept voxel, so
    predictions map back to world points. Boxes whose centre leaves the
    crop are dropped (warned); a scan without lungs is kept whole (warned).

    Required keys: ``img`` (z, y, x) HU, ``spacing_zyx``, ``origin_xyz``,
    ``direction``, ``img_path`` (and ``series_uid`` with ``mask_dir``).
    Added keys: ``lung_region_zyx`` (``(start, stop)``, or None).

    Args:
        mask_dir (str, optional): folder of official lung masks.
        mask_suffix (str): mask file name = ``series_uid + mask_suffix``.
        mask_labels (Sequence[int]): lung values of the masks.
        margin_mm (float): margin around the lungs' box.
        compute_cfg (dict, optional): the fields of the
            :class:`~mmlesion.datasets.volumes.lung_mask.LungMaskSettings`
            ``compute_lung_box`` takes.
        cache_size (int): scans whose lung box is remembered (0: none).
    """

    def __init__(self,
                 mask_dir: Optional[str] = None,
                 mask_suffix: str = '.mhd',
                 mask_labels: Sequence[int] = LUNA16_LUNG_LABELS,
                 margin_mm: float = 10.,
                 compute_cfg: Optional[dict] = None,
                 cache_size: int = 1024) -> None:
        if margin_mm < 0:
            raise ValueError(f'margin_mm must be >= 0, got {margin_mm}')
        self.mask_dir = mask_dir
        self.mask_suffix = mask_suffix
        self.mask_labels = tuple(int(v) for v in mask_labels)
        self.margin_mm = float(margin_mm)
        self.compute_cfg = dict(compute_cfg or {})
        self.cache_size = int(cache_size)
        self._cache: OrderedDict = OrderedDict()

    def _region(self, results: dict, vol: CTVolume
                ) -> Optional[Tuple[Tuple[int, ...], Tuple[int, ...]]]:
        where = results.get('img_path', '<volume>')
        if self.mask_dir is None:
            # only the mask's box matters: computed without the mask (the
            # same box, see compute_lung_box), given to mask_region as its
            # two corners
            box = compute_lung_box(vol,
                                   LungMaskSettings(**self.compute_cfg))
            mask = CTVolume(
                np.zeros(vol.shape_zyx, bool) if box is None else
                box_corner_mask(vol.shape_zyx, *box), vol.spacing_zyx,
                vol.origin_xyz, vol.direction)
            source = 'the computed lung mask'
        else:
            uid = results.get('series_uid')
            if not uid:
                raise KeyError(f'{where}: no series_uid to name its lung '
                               f'mask in {self.mask_dir}')
            path = osp.join(self.mask_dir, f'{uid}{self.mask_suffix}')
            if not osp.exists(path):
                raise FileNotFoundError(
                    f'{where}: its lung mask {path} is missing (mask_dir='
                    f'{self.mask_dir}; set mask_dir=None to compute masks)')
            mask = read_lung_mask(path, self.mask_labels)
            source = f'lung mask {path} (labels {list(self.mask_labels)})'
            if mask.array.any() and mask_region(mask, vol) is None:
                raise ValueError(f'{path}: the lung mask lies outside the '
                                 f'scan {where} in world coordinates')
        region = mask_region(mask, vol, self.margin_mm)
        if region is None:
            print_log(f'{where}: no lung voxel in {source}; the scan is '
                      f'kept whole', logger='current', level=logging.WARNING)
        return region

    def transform(self, results: dict) -> dict:
        """Crop ``results`` to the lungs (see the class doc)."""
        img = check_volume(results, 'CropToLungs')
        vol = CTVolume(img, results['spacing_zyx'], results['origin_xyz'],
                       results.get('direction', np.eye(3)))
        key = (results.get('img_path'), results.get('series_uid'),
               vol.shape_zyx, vol.spacing_zyx, vol.origin_xyz)
        if key in self._cache:
            region = self._cache[key]
            self._cache.move_to_end(key)
        else:
            region = self._region(results, vol)
            if self.cache_size > 0:
                self._cache[key] = region
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        results['lung_region_zyx'] = region
        if region is None:
            return results
        start, stop = region
        crop = crop_volume(vol, start, stop)
        results['img'] = np.ascontiguousarray(crop.array)
        results['img_shape'] = crop.shape_zyx
        results['origin_xyz'] = crop.origin_xyz
        self._shift_boxes(results, np.asarray(start), crop.shape_zyx)
        return results

    @staticmethod
    def _shift_boxes(results: dict, start_zyx: np.ndarray,
                     shape_zyx: Tuple[int, ...]) -> None:
        if 'gt_bboxes' not in results:
            return
        boxes = np.asarray(results['gt_bboxes'],
                           dtype=np.float32).reshape(-1, 6)
        boxes = boxes - np.tile(start_zyx[::-1], 2).astype(np.float32)
        keep = keep_boxes_inside(results, boxes, shape_zyx)
        if not keep.all():
            print_log(f"{results.get('img_path', '<volume>')}: "
                      f'{int((~keep).sum())} box(es) centred outside the '
                      f'lung crop dropped', logger='current',
                      level=logging.WARNING)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mask_dir={self.mask_dir!r}, '
                f'margin_mm={self.margin_mm}, compute_cfg={self.compute_cfg})')
